#!/usr/bin/env bash
# Run bench_jets.py --device cuda on the lent GPU machine (issue 6's measurements).
#
# The machine (/work/.library/device) has python3.12 with torch, triton, jax[cuda] and
# rich, but neither xdsl, lark nor folx, and no network: they travel as wheels.
#
# 1. HERE, once, in the repository root (pure-Python wheels, ~4.6 MB):
#      mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#        -d .whl xdsl==0.74.0 'immutabledict<4.3.2' ordered-set==4.1 lark folx==0.2.30
# 2. First the GPU correctness tests: run(command="bash benchmarks/device_run.sh --tests",
#    carry=[".whl"], timeout_s=300). They run tests/gpu (the kernels compiled for the GPU
#    against torch on the GPU; an estimate, not yet measured: 2 to 4 minutes, most of it
#    Triton compiling), print pytest's
#    report and write it to $OUT/gpu-tests.log, and exit with pytest's status.
# 3. Through the device tool: run(command="bash benchmarks/device_run.sh", carry=[".whl"],
#    timeout_s=600). It installs the wheels and geomir into /tmp/site, prints the GPU, runs
#    setting A (or the --size given) in one process and writes $OUT/bench_jets-cuda.json (fetch it to
#    benchmarks/results/, then write the README table from it).
#
# Budget (H100, 2026-11-24): about 4.7 min per setting, most of it JAX's first-call
# compilation (10-30 s per method) and Triton's autotuning; each method is timed in
# interleaved rounds capped by --budget seconds per task. A and B together run past one
# call's 10 minutes: run A, then `bash benchmarks/device_run.sh --size B` in a second call
# (a later --size replaces the default), each with timeout_s about 420. A session has 15
# minutes of device time in all, the machine's start included: the tests and A fit; run B
# only if 6 minutes are left, and give the machine back after the last call. The JSON is
# rewritten after each setting.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# --upgrade: on a warm machine a second call must install this call's geomir, not keep the first's
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/site .
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch, triton, jax; print('torch', torch.__version__, 'triton', triton.__version__, 'jax', jax.__version__, jax.devices())"
if [ "${1:-}" = "--tests" ]; then
  # -P: not the repository root first on sys.path; its geomir/ lacks backends/, frontends/ and
  # passes/ (pyproject maps them in), the installed one in /tmp/site has them
  python3 -P -m pytest -p no:cacheprovider -q -rfE tests/gpu 2>&1 | tee "$OUT/gpu-tests.log"
  exit "${PIPESTATUS[0]}"
fi
python3 benchmarks/bench_jets.py --device cuda --size A --repeats 30 --warmup 3 --budget 4 \
  --triton-precision ieee tf32x3 \
  --out "$OUT/bench_jets-cuda.json" "$@"
