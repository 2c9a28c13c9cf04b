#!/usr/bin/env bash
# The GPU measurements, in one go (about 10 minutes on one recent NVIDIA GPU): the training-step
# table, time to quality, and the paper profile of the fresh-images suite for SIREN on two of the
# reporting images. Run from the repository root with ../shared/data beside it:
#     bash benchmarks/gpu.sh
# Writes results/speed_training_gpu.json, results/time_to_quality_gpu.json and grid records under
# results/suites/fresh-images-paper/records; prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import specfit.cli.main" || { echo "error: install specfit first (make setup)"; exit 2; }
timeout 150 $PY benchmarks/speed.py --device cuda --sizes 64 128 256 512 --repeats 3 --out speed_training_gpu
timeout 240 $PY benchmarks/time_to_quality.py --device cuda --sizes 256 512 --repeats 3 --max-seconds 60 \
    --out time_to_quality_gpu
timeout 180 $PY benchmarks/paper_grid.py --model siren --images kodak/kodim06.png kodak/kodim07.png
