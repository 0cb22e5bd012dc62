# The 30-people fps runs of docs/results/fps_tracker_30people_s23.json: the tracker before (git worktree at 008b65f in /tmp/wt_s22) and after
# (the working tree: runs 1-3 at 73f8fbe, runs 4-6 at a11cbba), alternated. D holds the 8-epoch KD student's deploy files (docs/deploy.md steps).
D=/work/main/outputs/s22/dep
CFG=/work/main/outputs/e8_s22/configs/student__seed5.py
run() {  # tree tag
  (cd $1 && PYTHONPATH=$1 OMP_NUM_THREADS=1 taskset -c 1 /work/main/.venv/bin/python tools/benchmark/fps.py $CFG $D/ours_s5.pth --input-size 576 320 --threads 1 --frames 200 \
    --onnx $D/ours_s5.onnx $D/ours_s5_int8.onnx --people 30 30 --out /work/main/outputs/s23/fps30_$2.json 2>&1 | grep -E "^student" | sed "s/^/$2 /")
}
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) = 1 ]; then run /tmp/wt_s22 before$i; run /work/main after$i; else run /work/main after$i; run /tmp/wt_s22 before$i; fi
done
echo ALLDONE
