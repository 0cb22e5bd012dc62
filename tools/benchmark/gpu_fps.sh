#!/usr/bin/env bash
# End-to-end tracking FPS (model + post-processing + tracker, batch 1) at
# 1088x608 with fp16 on a GPU machine that has torch and torchvision but no
# mmcv, mmengine or mmdet and no network access.
#
# 1. Installs the wheels brought along in $WHL_DIR (default .whl) into
#    $SITE (default /tmp/site): mmengine 0.10.7, mmdet 3.3.0, mmcv 2.1.0
#    built WITHOUT its compiled ops (MMCV_WITH_OPS=0, a pure-Python wheel
#    named mmcv-lite) and what they import (addict, yapf, platformdirs,
#    termcolor, terminaltables, pycocotools, shapely, lap, motmetrics,
#    xmltodict, trackeval; cp312 wheels for the compiled ones).
# 2. Copies tools/benchmark/gpu_shim/mmcv_ext.py there as mmcv/_ext.py (only
#    when mmcv has no compiled _ext): nms through torchvision.ops.nms, every
#    other mmcv op raises NotImplementedError naming it. CSTrack's
#    post-processing (mmcv.ops.batched_nms) and our tracker then run
#    unchanged.
# 3. Runs tools/benchmark/fps.py with CSTrack-L (configs/cstrack/
#    cstrack_yolov5l_mot17.py), CSTrack-S (cstrack_yolov5s_mot17.py) and the
#    KD student ($KD_CONFIG, $KD_CKPT; skipped when missing) interleaved:
#    fp16 on the default clip, fp16 with 30 people in view, and fp32
#    (RUNS="fp16 fp16_30people fp32" selects). More runs: fp16_graph and
#    fp32_graph time every model plain and with its network replayed from a
#    CUDA graph, interleaved (--cuda-graph both); fp32_graph_tracker1 does
#    the same with one torch thread during the tracker (--tracker-threads
#    1), fp32_tracker1 without the graphs. A run named twice is run twice
#    (the second one's files end in _2, and so on: the spread between
#    processes).
#    L and S have random weights (no MOT17 checkpoints here): they detect
#    nothing, so their tracker time is that of an empty frame.
#
# Writes $OUT_DIR/fps_gpu_*.json, the merged $OUT_DIR/fps_gpu.json and the
# log $OUT_DIR/gpu_fps.log (OUT_DIR defaults to $OUT, else
# work_dirs/gpu_fps). Without a CUDA device it runs the same on the CPU
# (DEVICE=cpu, or automatically) with FRAMES/WARMUP as given, as a dry run.
#
# Example (device machine):  bash tools/benchmark/gpu_fps.sh
# Example (CUDA graphs, 100 timed frames):
#     RUNS="fp16_graph fp32_graph fp32_graph_tracker1 fp16_graph fp32_graph" \
#     FRAMES=120 WARMUP=20 bash tools/benchmark/gpu_fps.sh
# Example (dry run here):    DEVICE=cpu FRAMES=4 WARMUP=1 SIZE="128 96" \
#     PYTHON=.venv/bin/python bash tools/benchmark/gpu_fps.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
PY=${PYTHON:-python3}
WHL_DIR=${WHL_DIR:-.whl}
SITE=${SITE:-/tmp/site}
OUT_DIR=${OUT_DIR:-${OUT:-work_dirs/gpu_fps}}
DEVICE=${DEVICE:-cuda}
FRAMES=${FRAMES:-230}
WARMUP=${WARMUP:-30}
SIZE=${SIZE:-1088 608}
KD_CONFIG=${KD_CONFIG:-.gpu/kd_student.py}
KD_CKPT=${KD_CKPT:-.gpu/kd_student.pth}
L=configs/cstrack/cstrack_yolov5l_mot17.py
S=configs/cstrack/cstrack_yolov5s_mot17.py
mkdir -p "$OUT_DIR"
LOG=$OUT_DIR/gpu_fps.log
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
t_start=$(date +%s)
echo "== gpu_fps.sh $(date -u +%FT%TZ) python: $($PY --version 2>&1)"

# ---------------------------------------------------------------- 1. wheels
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    if ! ls "$WHL_DIR"/*.whl >/dev/null 2>&1; then
        echo "gpu_fps: no wheels in $WHL_DIR (see the header)"; exit 3
    fi
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" "$WHL_DIR"/*.whl || {
        echo "gpu_fps: installing the wheels failed"; exit 3; }
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"

# --------------------------------------------------- 2. mmcv without its ops
MMCV_DIR=$($PY -c "import importlib.util as u; \
print(u.find_spec('mmcv').submodule_search_locations[0])") || {
    echo "gpu_fps: mmcv is not importable"; exit 3; }
if ls "$MMCV_DIR"/_ext*.so >/dev/null 2>&1; then
    echo "mmcv: compiled ops found in $MMCV_DIR, no shim"
else
    cp tools/benchmark/gpu_shim/mmcv_ext.py "$MMCV_DIR/_ext.py"
    echo "mmcv: no compiled ops; shim installed as $MMCV_DIR/_ext.py"
fi
$PY - <<'PY' || { echo "gpu_fps: the stack does not import"; exit 3; }
import mmcv, mmcv.ops, mmdet, mmengine, numpy, torch
import mmtrack_kd
try:
    import torchvision
    tv = torchvision.__version__
except ImportError:
    tv = 'missing'
from mmcv.ops import batched_nms
ext = __import__('mmcv._ext', fromlist=['nms'])
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}), torchvision '
      f'{tv}, numpy {numpy.__version__}, mmcv '
      f'{mmcv.__version__} from {mmcv.__file__}, mmengine '
      f'{mmengine.__version__}, mmdet {mmdet.__version__}; nms: '
      f'{getattr(ext, "NMS_BACKEND", "mmcv compiled ops")}')
if torch.cuda.is_available():
    print('GPU:', torch.cuda.get_device_name(0))
# batched_nms through the shim: two overlapping boxes, one kept
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.]],
                     device=dev)
scores = torch.tensor([0.9, 0.8, 0.7], device=dev)
_, keep = batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long,
                      device=dev), dict(type='nms', iou_threshold=0.5))
assert keep.tolist() == [0, 2], keep
print('batched_nms check: ok')
PY
if [ "$DEVICE" != cpu ] && ! $PY -c "import torch,sys; \
sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_fps: no CUDA device seen; running on the CPU instead"
    DEVICE=cpu
fi

# ---------------------------------------------------------------- 3. timing
KD=()
if [ -f "$KD_CONFIG" ] && [ -f "$KD_CKPT" ]; then
    KD=(--compare "$KD_CONFIG" "$KD_CKPT")
else
    echo "gpu_fps: KD student ($KD_CONFIG, $KD_CKPT) not found: skipped"
fi
declare -A SEEN=()
run() {  # NAME EXTRA_ARGS...
    local name=$1; shift
    SEEN[$name]=$(( ${SEEN[$name]:-0} + 1 ))
    [ "${SEEN[$name]}" -gt 1 ] && name=${name}_${SEEN[$name]}
    echo "== $name"
    $PY tools/benchmark/fps.py $L none --input-size $SIZE \
        --frames "$FRAMES" --warmup "$WARMUP" --device "$DEVICE" \
        --compare $S none "${KD[@]}" "$@" --out "$OUT_DIR/fps_gpu_$name.json"
}
for r in ${RUNS:-fp16 fp16_30people fp32}; do
    case $r in
        fp16) run fp16 --fp16 ;;
        fp16_30people) run fp16_30people --fp16 --people 30 30 ;;
        fp32) run fp32 ;;
        fp16_graph) run fp16_graph --fp16 --cuda-graph both ;;
        fp32_graph) run fp32_graph --cuda-graph both ;;
        fp32_graph_tracker1)
            run fp32_graph_tracker1 --cuda-graph both --tracker-threads 1 ;;
        fp32_tracker1) run fp32_tracker1 --tracker-threads 1 ;;
        *) echo "gpu_fps: unknown run $r (fp16, fp16_30people, fp32," \
               "fp16_graph, fp32_graph, fp32_graph_tracker1," \
               "fp32_tracker1)"; exit 2 ;;
    esac || echo "gpu_fps: run $r failed"
done
$PY - "$OUT_DIR" <<'PY'
import glob, json, os.path as osp, sys
out = sys.argv[1]
runs = {}
for path in sorted(glob.glob(osp.join(out, 'fps_gpu_*.json'))):
    doc = json.load(open(path))
    first = doc['models'][0]['fps']
    doc['fps_over_L'] = {m['name']: m['fps'] / first for m in doc['models']}
    graphed = [m for m in doc['models'] if m['name'].endswith('[cuda graph]')]
    if graphed:  # each graphed model over graphed L
        doc['fps_over_L_graph'] = {m['name']: m['fps'] / graphed[0]['fps']
                                   for m in graphed}
    runs[osp.basename(path)[len('fps_gpu_'):-len('.json')]] = doc
if runs:
    json.dump(dict(runs=runs), open(osp.join(out, 'fps_gpu.json'), 'w'),
              indent=2)
    for name, doc in runs.items():
        print(name, {m['name']: round(m['fps'], 1) for m in doc['models']},
              {k: round(v, 2) for k, v in doc['fps_over_L'].items()})
        if graphed := doc.get('fps_over_L_graph'):
            print(name, 'graphed over graphed L:',
                  {k: round(v, 2) for k, v in graphed.items()})
        if 'graph_speedup' in doc:
            print(name, 'cuda graph / plain:',
                  {k: round(v, 2) for k, v in doc['graph_speedup'].items()})
PY
echo "== done in $(( $(date +%s) - t_start )) s"
