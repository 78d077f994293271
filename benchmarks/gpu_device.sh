#!/usr/bin/env bash
# Issue 4's GPU checks as one prepared command for a lent H200 (see benchmarks/README.md, "GPU"):
# the CUDA-marked tests, then benchmarks/gpu.py. Everything it writes lands in $OUT.
#
#   bash benchmarks/gpu_device.sh            # on the device machine, from the repository root
#   bash benchmarks/gpu_device.sh --smoke    # anywhere, CPU too: checks the script itself (CUDA tests skip)
#
# The device image has its own torch and transformers and no network. To run against the pinned transformers,
# put its wheel in .whl/ (ignored by git) and carry it: pip download --no-deps transformers==<pin> -d .whl
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/selfsup-site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/selfsup-site
fi
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
{
    date -u
    nvidia-smi 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
} 2>&1 | tee "$OUT/env.txt"
timeout 150 "$PY" -m pytest -m cuda -p no:cacheprovider -q \
    tests/test_layers.py tests/test_gpt.py tests/test_seq2seq.py tests/test_train.py tests/test_ddp.py 2>&1 \
    | tee "$OUT/cuda_tests.log"
tests_rc=${PIPESTATUS[0]}
timeout 360 "$PY" benchmarks/gpu.py --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
bench_rc=${PIPESTATUS[0]}
echo "cuda tests rc=$tests_rc, gpu.py rc=$bench_rc" | tee -a "$OUT/env.txt"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
