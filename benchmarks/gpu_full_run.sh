#!/usr/bin/env bash
# The GPU tests, then the perf suite, one experiment at a time, inside a
# wall-clock budget. Each experiment writes its own benchmark JSON, so a budget
# that runs out costs only the experiments not yet started.
#
#   benchmarks/gpu_full_run.sh OUT_DIR [BUDGET_SECONDS] [ROUNDS] [EXPERIMENTS...]
#   SCALE=study benchmarks/gpu_full_run.sh OUT_DIR 600 3 precision workers
#
# The budget (default 720 s: the full scale's target on one H100 is 12 minutes)
# covers everything after the GPU unit tests (capped at 180 s). Experiments run
# in the order given; by default the step experiment first (what the other
# experiments' fastest honest step rests on), then the ones the study leaned
# on: step precision loader workers optimizer batch_size profiler pose
# dataparallel ddp. ROUNDS defaults to 3, what the regression gate is
# calibrated for. SCALE (default full) is --perf-scale; PERF_STEP=eager turns
# the graphed step off (--perf-step eager).
set -u
out=${1:?usage: gpu_full_run.sh OUT_DIR [BUDGET_SECONDS] [ROUNDS] [EXPERIMENTS...]}
budget=${2:-720}
rounds=${3:-3}
scale=${SCALE:-full}
perf_step=${PERF_STEP:-auto}
shift $(( $# < 3 ? $# : 3 ))
experiments=("$@")
(( ${#experiments[@]} )) || experiments=(step precision loader workers optimizer batch_size profiler pose dataparallel ddp)
mkdir -p "$out"
log="$out/run.log"
start=$(date +%s)
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

{
  echo "== $(date -u +%FT%TZ) budget ${budget}s rounds ${rounds} scale ${scale} step ${perf_step}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda)"
  echo "== GPU unit tests"
  timeout 180 python3 -m pytest unit_tests -m gpu -q -p no:cacheprovider -rs 2>&1 | tail -15
  echo "== fer's step vs a bare timm loop (benchmarks/peer_timm.py)"
  for mode in "fp32" "fp32 --cuda-graph" "amp_bf16 --cuda-graph"; do
    set -- $mode
    timeout 120 python3 benchmarks/peer_timm.py --device cuda --precision "$@" \
        --out "$out/peer_${1}${2:+_graph}.json" 2>&1 | tail -2
  done
} >"$log" 2>&1
start=$(date +%s)  # the budget is the perf suite's

for experiment in "${experiments[@]}"; do
  if [[ ! -f "perf_tests/test_${experiment}.py" ]]; then
    echo "== $experiment: no perf_tests/test_${experiment}.py" >>"$log"
    continue
  fi
  left=$(( budget - ($(date +%s) - start) ))
  if (( left < 60 )); then
    echo "== $experiment: not started, ${left}s of the budget left" >>"$log"
    continue
  fi
  echo "== $experiment (${left}s left)" >>"$log"
  t0=$(date +%s)
  timeout -s INT -k 30 "$left" python3 -m pytest "perf_tests/test_${experiment}.py" --perf-scale "$scale" \
      --perf-step "$perf_step" --perf-rounds "$rounds" --benchmark-json "$out/${experiment}.json" \
      --benchmark-columns=median,iqr,rounds -q -p no:cacheprovider -rs >>"$log" 2>&1
  echo "== $experiment: exit $? in $(( $(date +%s) - t0 ))s" >>"$log"
done
echo "== done in $(( $(date +%s) - start ))s" >>"$log"
