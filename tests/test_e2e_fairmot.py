"""End to end: train the FairMOT SynthMOT student with tools/train.py for
one short epoch on tiny SynthMOT, then track and score it with
tools/test.py."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MOT_KEYS = ('MOTA', 'IDF1', 'HOTA', 'MT', 'ML', 'IDs', 'FPS')
CFG = 'configs/fairmot/fairmot_r18_synthmot.py'
# narrower than the config's half-width ResNet-18: seconds per iteration
TINY = [
    'model.backbone.base_channels=16', 'model.neck.in_channels=128',
    'model.neck.num_deconv_filters=[32,32,32]', 'model.bbox_head.head_conv=32',
    'model.id_head.head_conv=32', 'model.id_head.embed_channels=32',
    'model.test_cfg.score_thr=0.1'
]
LOADERS = [
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False'
]


def data_opts(data_root):
    root = data_root.rstrip('/') + '/'
    return [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def run_tool(args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f'{" ".join(args)} failed:\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-5000:]}')
    return proc


def test_train_then_test_fairmot(tiny_synthmot, tmp_path):
    work = tmp_path / 'work'
    run_tool([
        'tools/train.py', CFG, '--work-dir', str(work), '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=2'
    ] + LOADERS + data_opts(tiny_synthmot) + TINY)
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()

    out = tmp_path / 'metrics.json'
    results = tmp_path / 'results'
    run_tool([
        'tools/test.py', CFG, str(ckpt), '--work-dir', str(work), '--out',
        str(out), '--results-dir', str(results), '--cfg-options'
    ] + LOADERS + data_opts(tiny_synthmot) + TINY)
    metrics = json.loads(out.read_text())
    for key in MOT_KEYS:
        assert any(k == key or k.endswith('/' + key) for k in metrics), (
            key, sorted(metrics))
    for seq in os.listdir(osp.join(tiny_synthmot, 'test')):
        assert (results / f'{seq}.txt').is_file()
