# the 30-people fps run with the tracker before (worktree at 20588a9) and after (HEAD), alternated
D=/work/main/outputs/s22/dep
CFG=/work/main/outputs/e8_s22/configs/student__seed5.py
run() {  # tree tag
  (cd $1 && PYTHONPATH=$1 OMP_NUM_THREADS=1 taskset -c 1 /work/main/.venv/bin/python tools/benchmark/fps.py $CFG $D/ours_s5.pth --input-size 576 320 --threads 1 --frames 200 \
    --onnx $D/ours_s5.onnx $D/ours_s5_int8.onnx --people 30 30 --out /work/main/outputs/s22/fps30_$2.json 2>&1 | grep -E "^student" | sed "s/^/$2 /")
}
run /tmp/wt_old before5; run /work/main after5; run /work/main after6; run /tmp/wt_old before6
