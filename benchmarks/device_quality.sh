#!/usr/bin/env bash
# Quality sweep on a lent GPU in one command: several Stage I variants in parallel on one synthetic shot
# (benchmarks/stage1_sweep.py: per-part IoU), then Stage II + prior + edits on each variant's labels
# (benchmarks/stage2_acceptance.py: held-out SSIM, eye_open 0 / teeth 0 vs the what-if frames).
#
#   OUT=/tmp/q BUDGET=540 bash benchmarks/device_quality.sh 'k128 num_codes=128 vq_rgb_weight=12' 'k200 ...'
#
# Each argument is one variant: a name, then Stage I KEY=VALUE overrides on the cpu preset. STAGE2_SETS
# (space-separated KEY=VALUE) applies to every Stage II run. Runs with the machine's python3 (torch with
# CUDA); OpenImageIO, pyzmq and lpips come as wheels from .whl/ when present. Results land in $OUT:
# quality.log, stage1.jsonl (one IoU row per variant), stage2.jsonl (one acceptance summary per variant)
# and runs.tgz (logs and contact sheets). Few files on purpose: a lent machine returns only a handful.
set -u
DEVICE=${DEVICE:-cuda}
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/vqedit_quality}
WORK=${WORK:-/tmp/vqedit_quality_work}
BUDGET=${BUDGET:-540}
STAGE2_SETS=${STAGE2_SETS:-}
mkdir -p "$OUT" "$WORK/logs" "$WORK/sheets"
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
log() { echo "$*" | tee -a "$OUT/quality.log"; }

if [ -z "${NO_WHEELS:-}" ] && compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { log "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/quality.log"

log "== prepare ($(date +%T))"
timeout "$(left)" python3 benchmarks/stage1_sweep.py --work "$WORK/s1" --prepare-only >"$WORK/logs/prepare.log" 2>&1 \
    || { log "prepare failed"; tail -5 "$WORK/logs/prepare.log" | tee -a "$OUT/quality.log"; exit 1; }

variant() {  # variant NAME KEY=VALUE...: Stage I, IoU, then Stage II acceptance on its labels
    local name=$1; shift
    local sets1=() sets2=()
    for kv in "$@"; do sets1+=(--set "$kv"); done
    for kv in $STAGE2_SETS; do sets2+=(--set2 "$kv"); done
    timeout "$(left)" python3 benchmarks/stage1_sweep.py --work "$WORK/s1" --name "$name" --device "$DEVICE" --threads 2 \
        --roi-weights 1 --json "$WORK/stage1_$name.jsonl" "${sets1[@]}" >"$WORK/logs/s1_$name.log" 2>&1
    echo "rc=$? stage1 $name ($(date +%T))" >>"$OUT/quality.log"
    local acc="$WORK/acc_$name"
    mkdir -p "$acc"
    ln -sfn "$WORK/s1/synth" "$acc/synth"
    rm -rf "$acc/shot" && cp -r "$WORK/s1/runs/$name" "$acc/shot" && rm -rf "$acc/shot/stage2" "$acc/shot/prior.json"
    timeout "$(left)" python3 benchmarks/stage2_acceptance.py --out "$acc" --reuse --device "$DEVICE" --threads 2 \
        --figure "$WORK/sheets/$name.png" "${sets2[@]}" >"$WORK/logs/s2_$name.log" 2>&1
    echo "rc=$? stage2 $name ($(date +%T))" >>"$OUT/quality.log"
    python3 - "$name" "$acc/acceptance.json" >>"$WORK/stage2.jsonl" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except OSError:
    print(json.dumps({"name": name, "error": "no acceptance.json"}))
    sys.exit(0)
e = r["edits"]
print(json.dumps({"name": name, "ssim": r["reconstruction"]["ssim"],
                  **{k: e.get(k, {}).get("psnr_edit_db") for k in ("eyes_closed", "no_teeth", "mouth_closed")},
                  "programs": {k: e.get(k, {}).get("program") for k in ("eyes_closed", "no_teeth")},
                  "stage2_min": r["stage2"]["minutes"], "checks": r["checks"]}))
EOF
}

log "== variants in parallel ($(date +%T)): $*"
for spec in "$@"; do
    # shellcheck disable=SC2086
    variant $spec &
done
wait
log "== done ($(date +%T), $(( $(date +%s) - start ))s)"
cat "$WORK"/stage1_*.jsonl >"$OUT/stage1.jsonl" 2>/dev/null
cp "$WORK/stage2.jsonl" "$OUT/" 2>/dev/null
cat "$OUT/stage1.jsonl" "$OUT/stage2.jsonl" 2>/dev/null | cut -c1-600 | tee -a "$OUT/quality.log"
tar czf "$OUT/runs.tgz" -C "$WORK" logs sheets $(cd "$WORK" && ls -d acc_*/acceptance.json 2>/dev/null) 2>/dev/null
exit 0
