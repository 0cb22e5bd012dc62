# The MOT17 KD config (CSTrack-L into CSTrack-S, 1088x608, batch 2, random
# teacher): the KD step's overhead beyond the teacher's forward, the code
# before session 24 (a git worktree at 69bfe75: ConvBN connectors in the
# key-feature fragment) and this code, one process each, back to back.
#   git worktree add --detach /work/wt24 69bfe75
#   bash docs/results/kd_step_overhead_mot17_s24.sh
set -e
BASE=${BASE:-/work/wt24}
NEW=${NEW:-/work/main}
OUT=${OUT:-/work/main/docs/results}
run() {  # tree out
  (cd "$1" && PYTHONPATH="$1" OMP_NUM_THREADS=1 /work/main/.venv/bin/python \
    tools/benchmark/kd_step_overhead.py configs/kd/cstrack_yolov5s_kd.py \
    --random-teacher --iters 10 --threads 1 --clock cpu --out "$2" \
    --cfg-options train_dataloader.batch_size=2 \
    train_dataloader.dataset.data_root=/work/main/outputs/data/synthmot_bench/ \
    train_dataloader.dataset.ann_file=annotations/train_cocoformat.json \
    'train_dataloader.dataset.pipeline.1.transforms.2.ratio_range=(1.2,1.2)' \
    | grep -E "overhead beyond|^ +(student|kd|teacher):")
}
run "$NEW" "$OUT/kd_step_overhead_mot17_s24.json"
run "$BASE" "$OUT/kd_step_overhead_mot17_s24_before.json"
