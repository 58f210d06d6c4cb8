#!/usr/bin/env bash
# The CUDA checks of a lent GPU machine, in one run (see DEVELOPERS.md): the cuda-marked
# tests, the step benchmark and the whole-trainer benchmark on the GPU, then the full
# test suite on a machine where train.device "auto" resolves to CUDA.
# Usage (repository root; python3 with torch+CUDA; wheels of the audio packages in .whl/
# when the machine has none): bash benchmarks/cuda_check.sh [OUTDIR]
set -u
out=${1:-${OUT:-/tmp/cuda_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, numpy, pyworld, pysptk, soundfile, librosa; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'numpy', numpy.__version__, 'cpus', __import__('os').cpu_count())" | tee -a "$out/gpu.txt"
echo "== pytest -m cuda"
timeout 150 python3 -m pytest -m cuda -q -p no:cacheprovider -rs tests 2>&1 | tee "$out/pytest_cuda.log" | tail -25
echo "== bench_train --device cuda"
timeout 150 python3 benchmarks/bench_train.py --device cuda --steps 30 --rounds 3 2>&1 | tee "$out/bench_train_cuda.log"
echo "== bench_fit --device cuda"
timeout 150 python3 benchmarks/bench_fit.py --device cuda --vae-steps 2000 --critic-steps 200 --gan-steps 400 2>&1 | tee "$out/bench_fit_cuda.log"
echo "== full test suite (device auto = cuda)"
timeout 240 python3 -m pytest -q -p no:cacheprovider -n 8 tests > "$out/pytest_all.log" 2>&1
echo "rc $?"; tail -40 "$out/pytest_all.log"
