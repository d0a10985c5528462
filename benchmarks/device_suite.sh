#!/usr/bin/env bash
# One GPU session in one command: CUDA benchmarks first (sequential, on a quiet GPU), then quality runs
# in parallel (a Stage I knob sweep, benchmarks/stage1_sweep.py), all under a wall-clock budget.
#
#   OUT=/tmp/gpu BUDGET=480 bash benchmarks/device_suite.sh
#
# Runs with the machine's own python3 (torch with CUDA); packages it lacks (OpenImageIO, pyzmq, lpips)
# come as wheels from .whl/ when present. Everything lands in $OUT: suite.log (what ran, exit codes and
# each job's last lines), results.jsonl (Stage I sweep rows) and
# logs.tgz (every log). Few files on purpose: a lent machine returns at most eight.
set -u
DEVICE=${DEVICE:-cuda}
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/vqedit_device}
WORK=${WORK:-/tmp/vqedit_device_work}
BUDGET=${BUDGET:-480}
SWEEP_ITERS=${SWEEP_ITERS:-3000}
mkdir -p "$OUT" "$WORK/logs"
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
log() { echo "$*" | tee -a "$OUT/suite.log"; }

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { log "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/suite.log"
python3 -c "import torch, OpenImageIO, zmq, cv2, vq_models; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    2>&1 | tee -a "$OUT/suite.log"

job() {  # job NAME SECONDS CMD... (foreground)
    local name=$1 t=$2; shift 2
    local cap; cap=$(left)
    ((t > cap)) && t=$cap
    if ((t < 5)); then log "== $name skipped (budget)"; return; fi
    log "== $name (limit ${t}s, $(date +%T))"
    timeout "$t" "$@" >"$WORK/logs/$name.log" 2>&1
    log "   rc=$? $name"
    tail -n 4 "$WORK/logs/$name.log" | cut -c1-400 | tee -a "$OUT/suite.log"
}

# --- 1. benchmarks on a quiet GPU ---------------------------------------------------------------
job s1_speed_cpu 60 python3 benchmarks/stage1_speed.py --preset cpu --device "$DEVICE" --steps 150 --threads 2
job s1_speed_cpu_noise 60 python3 benchmarks/stage1_speed.py --preset cpu --device "$DEVICE" --steps 150 --threads 2 \
    --set encoder_noise_maps=true
job s1_speed_paper 120 python3 benchmarks/stage1_speed.py --preset paper --device "$DEVICE" --steps 30 --frames 8 \
    --crop 256 --threads 2 --paper-random-weights
job s2_speed_cpu 60 python3 benchmarks/stage2_speed.py --preset cpu --device "$DEVICE" --iterations 200 --threads 2 \
    label_embed=32
job s2_speed_paper 90 python3 benchmarks/stage2_speed.py --preset paper --device "$DEVICE" --iterations 30 --frames 12 \
    --label-size 256 --threads 2
job render_speed_paper 90 python3 benchmarks/render_speed.py --device "$DEVICE" --arch paper --codes 128 --label-size 256 \
    --sizes 256,512,1024 --frames 20 --threads 2

# --- 2. quality runs in parallel ---------------------------------------------------------------
job prepare 60 python3 benchmarks/stage1_sweep.py --work "$WORK/s1" --prepare-only --threads 4
T=$(($(left) - 15))
sweep() {  # sweep NAME KEY=VALUE...
    local name=$1; shift
    local sets=()
    for kv in "$@"; do sets+=(--set "$kv"); done
    timeout "$T" python3 benchmarks/stage1_sweep.py --work "$WORK/s1" --name "$name" --device "$DEVICE" --threads 2 \
        --roi-weights 1,3 --json "$WORK/results.jsonl" --set "iterations=$SWEEP_ITERS" "${sets[@]}" \
        >"$WORK/logs/sweep_$name.log" 2>&1
    echo "rc=$? sweep $name" >>"$OUT/suite.log"
}
log "== Stage I sweeps in parallel (limit ${T}s, $(date +%T))"
R256=(image_size=256 input_size=256 label_size=256 "vq_resolutions=[64,128,256]")
sweep noise encoder_noise_maps=true &
sweep noise_fine encoder_noise_maps=true "vq_scale_weights=[0.25,1.0,8.0]" &
sweep r256_1000 encoder_noise_maps=true "${R256[@]}" iterations=1000 &
sweep r256_1500 encoder_noise_maps=true "${R256[@]}" iterations=1500 &
sweep r256_2000_b2 encoder_noise_maps=true "${R256[@]}" iterations=2000 batch_size=2 &
sweep r256_1000_fine encoder_noise_maps=true "${R256[@]}" iterations=1000 "vq_scale_weights=[0.25,1.0,8.0]" &
wait
log "   parallel phase done ($(date +%T))"
cp "$WORK/results.jsonl" "$OUT/" 2>/dev/null
tar czf "$OUT/logs.tgz" -C "$WORK" logs 2>/dev/null
log "suite finished in $(($(date +%s) - start)) s"
