# The 8-epoch benchmark's `ours` config (seed 5; random-weight teacher) after
# the connectors' warm-up (kd_step_overhead_e8_s25_config.py: the shipped
# config with detach_iters=0, the state after the 120 warm-up iterations;
# the code before session 25 does not end the warm-up itself): the KD
# step's overhead beyond the teacher's forward, the code at the end of
# session 24 (a git worktree at 97bf830) against session 25's, one process
# each, alternated, ROUNDS rounds; then kd_step_overhead_e8_s25.py gathers
# them into kd_step_overhead_e8_s25.json.
#   git worktree add --detach /work/wt25 97bf830
#   git worktree add --detach /work/wt25m <commit measured>
#   ROUNDS=5 bash docs/results/kd_step_overhead_e8_s25.sh
# With other trees (BASE, NEW) set RESULT to another file: the gatherer
# otherwise rewrites kd_step_overhead_e8_s25.json, labelled as this A/B.
set -e
BASE=${BASE:-/work/wt25}
NEW=${NEW:-/work/wt25m}
OUT=${OUT:-/work/main/outputs/s25/ab}
CFG=${CFG:-/work/main/docs/results/kd_step_overhead_e8_s25_config.py}
mkdir -p "$OUT"
run() {  # tree tag
  (cd "$1" && PYTHONPATH="$1" OMP_NUM_THREADS=1 /work/main/.venv/bin/python \
    tools/benchmark/kd_step_overhead.py "$CFG" --random-teacher --iters 30 \
    --threads 1 --clock cpu --out "$OUT/$2.json" > "$OUT/$2.log" 2>&1)
  grep -E "overhead beyond the teacher forward: " "$OUT/$2.log" | sed "s/^/$2 /"
}
for i in $(seq 1 "${ROUNDS:-5}"); do
  if [ $((i % 2)) = 1 ]; then
    run "$BASE" "base$i"; run "$NEW" "new$i"
  else
    run "$NEW" "new$i"; run "$BASE" "base$i"
  fi
done
/work/main/.venv/bin/python /work/main/docs/results/kd_step_overhead_e8_s25.py "$OUT" ${RESULT:+"$RESULT"}
