#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a lent GPU machine, which reaches no network and has
# Python 3.12 + torch (CUDA) + onnx + onnxruntime (CPU) + opencv, but not PyAV, lap or filterpy.
# Run here (pip and ../shared reachable), from the repository root:
#     benchmarks/gpu_prepare.sh
# It fills the git-ignored folder .gpu/ (about 42 MB: the device tool carries at most 64 MiB):
#   .gpu/wheels/  av (PyAV: decodes the clip there), lap (tracker), filterpy (smoother): cp312 manylinux
#   .gpu/shared/  media/pose2sim_multiperson_cam01.mp4 and models/yolox_nano_coco.onnx from ../shared
# Why wheels and not decoded frames: 2,000 decoded 1088x1920 frames are ~12 GB; even the 100-frame clip
# as JPEGs would be ~30 MB of re-encoded pixels. PyAV (36 MB) decodes the real file there, and the
# check loops it to 2,000+ frames by remuxing packets (no re-encode), so the graph runs as it does here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
SHARED="${POSESTREAM_SHARED:-../shared}"
rm -rf .gpu/wheels .gpu/shared
mkdir -p .gpu/wheels .gpu/shared/media .gpu/shared/models
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .gpu/wheels av==18.1.0 lap==0.5.13 filterpy==2.0.0
cp "$SHARED/media/pose2sim_multiperson_cam01.mp4" .gpu/shared/media/
cp "$SHARED/models/yolox_nano_coco.onnx" .gpu/shared/models/
du -sh .gpu .gpu/* | sed 's/^/  /'
echo "ready: on the device tool, run 'bash benchmarks/gpu_check.sh' with carry ['.gpu'] (results in \$OUT)"
