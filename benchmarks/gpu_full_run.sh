#!/usr/bin/env bash
# The GPU tests, then the full-scale perf suite, one experiment at a time,
# inside a wall-clock budget. Each experiment writes its own benchmark JSON, so
# a budget that runs out costs only the experiments not yet started.
#
#   benchmarks/gpu_full_run.sh OUT_DIR [BUDGET_SECONDS] [ROUNDS] [EXPERIMENTS...]
#
# Experiments run in the order given, by default (the ones the study leaned on
# first): precision loader workers optimizer batch_size dataparallel ddp profiler.
set -u
out=${1:?usage: gpu_full_run.sh OUT_DIR [BUDGET_SECONDS] [ROUNDS]}
budget=${2:-1200}
rounds=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
experiments=("$@")
(( ${#experiments[@]} )) || experiments=(precision loader workers optimizer batch_size dataparallel ddp profiler)
mkdir -p "$out"
log="$out/run.log"
start=$(date +%s)
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

{
  echo "== $(date -u +%FT%TZ) budget ${budget}s rounds ${rounds}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cuda', torch.version.cuda)"
  echo "== GPU unit tests"
  timeout 240 python3 -m pytest unit_tests -m gpu -q -p no:cacheprovider -rs 2>&1 | tail -15
} >"$log" 2>&1

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
  timeout -s INT -k 30 "$left" python3 -m pytest "perf_tests/test_${experiment}.py" --perf-scale full \
      --perf-rounds "$rounds" --benchmark-json "$out/${experiment}.json" \
      --benchmark-columns=median,iqr,rounds -q -p no:cacheprovider -rs >>"$log" 2>&1
  echo "== $experiment: exit $? in $(( $(date +%s) - t0 ))s" >>"$log"
done
echo "== done in $(( $(date +%s) - start ))s" >>"$log"
