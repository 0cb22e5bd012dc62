# The MOT17 KD config (CSTrack-L into CSTrack-S, 1088x608, batch 2, random
# teacher) after the connectors' warm-up: the KD step's overhead beyond the
# teacher's forward, session 25's code (which ends the warm-up itself)
# against the code at the end of session 24 (a git worktree at 97bf830,
# given detach_iters=0, the state after the warm-up), one process each,
# back to back.
#   git worktree add --detach /work/wt25 97bf830
#   bash docs/results/kd_step_overhead_mot17_s25.sh
set -e
BASE=${BASE:-/work/wt25}
NEW=${NEW:-/work/main}
OUT=${OUT:-/work/main/docs/results}
run() {  # tree out [options]
  tree=$1; out=$2; shift 2
  (cd "$tree" && PYTHONPATH="$tree" OMP_NUM_THREADS=1 \
    /work/main/.venv/bin/python tools/benchmark/kd_step_overhead.py \
    configs/kd/cstrack_yolov5s_kd.py \
    --random-teacher --iters 10 --threads 1 --clock cpu --out "$out" \
    --cfg-options train_dataloader.batch_size=2 \
    train_dataloader.dataset.data_root=/work/main/outputs/data/synthmot_bench/ \
    train_dataloader.dataset.ann_file=annotations/train_cocoformat.json \
    'train_dataloader.dataset.pipeline.1.transforms.2.ratio_range=(1.2,1.2)' \
    "$@" | grep -E "overhead beyond|^ +(student|kd|teacher):")
}
run "$NEW" "$OUT/kd_step_overhead_mot17.json"
run "$BASE" "$OUT/kd_step_overhead_mot17_s25_before.json" \
  model.distill_cfgs.1.connectors.neck_c0.detach_iters=0 \
  model.distill_cfgs.1.connectors.neck_c1.detach_iters=0 \
  model.distill_cfgs.1.connectors.neck_c2.detach_iters=0
