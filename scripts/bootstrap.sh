#!/usr/bin/env bash
# Create and fill .venv/ on first use (idempotent). torch must come from the pinned CPU build:
# nothing here may let pip resolve torch upwards, and torchvision is never installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.vqedit-installed"
want="$(cat pyproject.toml constraints.txt scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
echo "[bootstrap] installing torch 2.13.0 (CPU build) into $VENV ..."
"${PIP[@]}" install "torch==2.13.0"
echo "[bootstrap] installing vqedit and its dependencies ..."
"${PIP[@]}" install -c constraints.txt -e ".[dev]"
# lpips: only its calibrated linear-layer weights are used; --no-deps keeps torchvision out.
"${PIP[@]}" install --no-deps "lpips==0.1.4"
# MediaPipe's legacy face-mesh ships its models in the wheel (0.10.x line). Its metadata pins numpy<2
# and opencv-contrib; we install it without deps and add what the face_mesh/selfie solutions import.
"${PIP[@]}" install -c constraints.txt absl-py attrs flatbuffers "protobuf>=4.25.3,<5" matplotlib
"${PIP[@]}" install --no-deps "mediapipe==0.10.21"
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
import torch
assert importlib.util.find_spec("torchvision") is None, "torchvision must not be installed"
assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"[bootstrap] torch {torch.__version__} ok")
PY
echo "$want" > "$STAMP"
