#!/usr/bin/env bash
# The GPU measurements of bench/README.md in one run, most important first, for one device session:
#   bash bench/gpu.sh [BEFORE_DIR]
# BEFORE_DIR: an older checkout (e.g. `git archive REV | tar -x -C DIR`) whose benchmarks run beside this
# checkout's on the same machine, for before/after numbers. Output goes to stdout and ${OUT:-.}/bench-gpu.log.
# PYTHON selects the interpreter (default python3). Each command has a time limit, so one hang costs little.
set -u
before=${1:-}
python=${PYTHON:-python3}
log=${OUT:-.}/bench-gpu.log
export PYTHONUNBUFFERED=1

run() {  # run DIR LIMIT ARGS...: python -m ARGS in DIR, within LIMIT seconds
    local dir=$1 limit=$2
    shift 2
    echo "=== [$(date +%T)] ${dir}: python -m $*" | tee -a "$log"
    (cd "$dir" && timeout "$limit" "$python" -m "$@") 2>&1 | grep -v "^WARNING\|^I0000\|^W0000" | tee -a "$log"
}

nvidia-smi -L 2>&1 | tee -a "$log"
train_step() { run "$1" 180 bench.train_step --preset paper --seconds 1 "${@:2}"; }
train_step . --dtype bfloat16 --draw-ahead 1
[ -n "$before" ] && train_step "$before" --dtype bfloat16
train_step . --dtype float32 --draw-ahead 1
run . 60 bench.profile --preset paper --dtype bfloat16 --steps 3 --top 12
train_step . --dtype float32 --draw-ahead 16
train_step . --dtype bfloat16 --draw-ahead 16
run . 120 bench.seeds --preset paper --seeds 8 --draw-ahead 16 --seconds 1
[ -n "$before" ] && train_step "$before" --dtype float32
[ -n "$before" ] && run "$before" 120 bench.seeds --preset paper --seeds 8 --seconds 1
run . 240 bench.eval --preset paper --self-query-only --chunks 256,2048
run . 300 bench.members --preset paper --steps 300
run . 150 bench.gen --seconds 1
run . 200 bench.scaling --sizes 16,32,64,128,256 --plot "${OUT:-$PWD}/scaling-gpu.png"
