# The 8-epoch benchmark's `ours` config (seed 5; random-weight teacher): the
# KD step's overhead beyond the teacher's forward, the code before session 24
# (a git worktree at 69bfe75, whose key-feature fragment had ConvBN
# connectors) against this code (ConvConnector, the fused standardised error
# of KeyFeatureLoss, the ID loss on the padded layout), one process each,
# alternated, ROUNDS rounds; then docs/results/kd_step_overhead_e8_s24.py
# gathers them into kd_step_overhead_e8_s24.json.
#   git worktree add --detach /work/wt24 69bfe75
#   ROUNDS=5 bash docs/results/kd_step_overhead_e8_s24.sh
set -e
BASE=${BASE:-/work/wt24}
NEW=${NEW:-/work/main}
OUT=${OUT:-/work/main/outputs/s24/ab}
CFG_BASE=${CFG_BASE:-/work/main/outputs/e8_rep/configs/ours__seed5.py}
CFG_NEW=${CFG_NEW:-/work/main/outputs/s24/ours_conv.py}  # the same with ConvConnector
mkdir -p "$OUT"
run() {  # tree config tag
  (cd "$1" && PYTHONPATH="$1" OMP_NUM_THREADS=1 /work/main/.venv/bin/python \
    tools/benchmark/kd_step_overhead.py "$2" --random-teacher --iters 30 \
    --threads 1 --clock cpu --out "$OUT/$3.json" > "$OUT/$3.log" 2>&1)
  grep -E "overhead beyond the teacher forward: " "$OUT/$3.log" | sed "s/^/$3 /"
}
for i in $(seq 1 "${ROUNDS:-5}"); do
  if [ $((i % 2)) = 1 ]; then
    run "$BASE" "$CFG_BASE" "base$i"; run "$NEW" "$CFG_NEW" "new$i"
  else
    run "$NEW" "$CFG_NEW" "new$i"; run "$BASE" "$CFG_BASE" "base$i"
  fi
done
/work/main/.venv/bin/python /work/main/docs/results/kd_step_overhead_e8_s24.py "$OUT"
