# one 8-epoch `ours` training of the s22 setup (teacher seed 0 of outputs/e8_s22) at seed $2 with the code tree $1 (tag $3),
# val sweep over s22's grid, test at the val-picked threshold (best val IDF1, MOTA breaks ties)
TREE=$1; SEED=$2; TAG=$3
D=/work/main/outputs/s24/ab_train/$TAG
mkdir -p $D
PY=/work/main/.venv/bin/python
export PYTHONPATH=$TREE OMP_NUM_THREADS=1
CFG=$D/ours_seed$SEED.py
if [ "$TREE" = /work/main ]; then CONN=ConvConnector; else CONN=ConvBNConnector; fi
sed -e "s/'seed': 5/'seed': $SEED/" -e "s/'ConvBNConnector'/'$CONN'/g" -e "/^load_from/d" /work/main/outputs/e8_s22/configs/ours__seed5.py > $CFG
cd $TREE
$PY tools/train.py $CFG --work-dir $D/work > $D/train.log 2>&1
$PY tools/extract_student.py $D/work/epoch_8.pth $D/work/student.pth > $D/extract.log 2>&1
$PY tools/test.py /work/main/outputs/e8_s22/configs/student__seed5.py $D/work/student.pth --split val --sweep /work/main/outputs/e8_s22/work/ours__seed5/test/val_sweep.json --out $D/val.t{i}.json --work-dir $D/val > $D/val.log 2>&1
THR=$($PY - <<PYEOF
import json
best = None
for i in range(13):
    m = json.load(open(f'$D/val.t{i}.json')); m = m.get('metrics', m)
    idf1 = [v for k, v in m.items() if k.endswith('IDF1')][0]; mota = [v for k, v in m.items() if k.endswith('MOTA')][0]
    if best is None or (idf1, mota) > best[:2]: best = (idf1, mota, i)
print(round(0.4 + 0.025 * best[2], 3))
PYEOF
)
$PY tools/test.py /work/main/outputs/e8_s22/configs/student__seed5.py $D/work/student.pth --split test --out $D/test.json --work-dir $D/test --cfg-options model.test_cfg.score_thr=$THR model.tracker.obj_score_thr=$THR model.tracker.init_track_thr=$THR > $D/test.log 2>&1
echo "$TAG seed $SEED thr $THR $(grep -o 'mot/IDF1: [0-9.]*\|mot/MOTA: [0-9.]*\|mot/HOTA: [0-9.]*' $D/test.log | tail -3 | tr '\n' ' ')"
