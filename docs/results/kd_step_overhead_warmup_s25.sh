# The same code (a worktree at fbec409, T), the 8-epoch config: the KD step timed
# during the connectors' warm-up (--warmup-phase) and after it, one process
# each, alternated, 3 rounds (session 25). Logs and JSONs in OUT.
set -e
T=/work/wt25f
cd $T
run() {  # tag extra...
  tag=$1; shift
  PYTHONPATH=$T OMP_NUM_THREADS=1 /work/main/.venv/bin/python tools/benchmark/kd_step_overhead.py \
    docs/results/kd_step_overhead_e8_config.py --random-teacher --iters 30 --threads 1 --clock cpu \
    --out /work/main/docs/results/kd_step_overhead_warmup_s25/$tag.json "$@" > /work/main/docs/results/kd_step_overhead_warmup_s25/$tag.log 2>&1
  grep -E "overhead beyond the teacher forward: " /work/main/docs/results/kd_step_overhead_warmup_s25/$tag.log | sed "s/^/$tag /"
}
mkdir -p /work/main/docs/results/kd_step_overhead_warmup_s25
for i in 1 2 3; do
  if [ $((i % 2)) = 1 ]; then run warm$i --warmup-phase; run steady$i; else run steady$i; run warm$i --warmup-phase; fi
done
