"""tools/deploy/quantize_int8.py and tools/deploy/int8_accuracy.py as a
user runs them: an int8 graph that the ONNX backend tracks with, a
report of its accuracy, and errors that name the option."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmtrack_kd.apis import init_tracker
from mmtrack_kd.apis.demo import track_video
from mmtrack_kd.datasets.mot_io import read_mot_txt

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'deploy')
CONFIG = osp.join(ROOT, 'configs', 'cstrack', 'cstrack_yolov5n_synthmot.py')
TINY = {
    'model.backbone.widen_factor': 0.125,
    'model.neck.out_channels': 32,
    'model.id_head.embed_channels': 32,
    'model.id_head.saan.mid_channels': 32,
}


def run_tool(name, args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, osp.join(TOOLS, name)] + [str(a) for a in args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def cfg_args(extra=None):
    opts = dict(TINY, **(extra or {}))
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


@pytest.fixture(scope='module')
def assets(tmp_path_factory):
    """A random tiny CSTrack checkpoint and its fp32 export."""
    tmp = tmp_path_factory.mktemp('quantize_tool')
    torch.manual_seed(0)
    model = init_tracker(CONFIG, None, cfg_options=dict(
        TINY, **{'model.id_head.num_ids': 5}))
    ckpt = tmp / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    from mmtrack_kd.apis import export_onnx
    fp32 = tmp / 'fp32.onnx'
    export_onnx(model, str(fp32), (320, 192))
    return dict(ckpt=str(ckpt), fp32=str(fp32), tmp=tmp)


@pytest.fixture(scope='module')
def int8(assets, tiny_synthmot):
    out = assets['tmp'] / 'deploy' / 'int8.onnx'
    proc = run_tool('quantize_int8.py', [
        CONFIG, assets['ckpt'], '--onnx', assets['fp32'], '--calib-data',
        tiny_synthmot, '--calib-frames', '5', '--out', out] + cfg_args())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'int8 QDQ, per-channel weights' in proc.stdout
    assert 'on 5 frames of' in proc.stdout
    assert 'max |int8 - fp32| / max |fp32|' in proc.stdout
    assert os.listdir(out.parent) == ['int8.onnx']  # no temporary left
    return str(out)


def test_int8_tracks_through_track_video(int8, assets, tiny_synthmot,
                                         tmp_path):
    test_root = osp.join(tiny_synthmot, 'test')
    seq = osp.join(test_root, sorted(os.listdir(test_root))[0], 'img1')
    txt = tmp_path / 'int8.txt'
    result = track_video(seq, CONFIG, None, str(tmp_path / 'int8.mp4'),
                         txt=str(txt), backend='onnx', onnx=int8,
                         score_thr=0.3, show_progress=False,
                         cfg_options=TINY)
    assert result['frames'] == len(os.listdir(seq))
    rows = read_mot_txt(str(txt))
    assert len(rows) >= 6 and len(set(rows[:, 1])) >= 2


def test_without_onnx_the_tool_exports_first(assets, tiny_synthmot,
                                             tmp_path):
    out = tmp_path / 'int8.onnx'
    proc = run_tool('quantize_int8.py', [
        CONFIG, assets['ckpt'], '--calib-data', tiny_synthmot,
        '--calib-frames', '3', '--per-tensor', '--no-verify', '--out', out]
        + cfg_args())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'per-tensor weights' in proc.stdout
    assert 'max |int8' not in proc.stdout
    graph = onnx.load(str(out))
    assert [o.name for o in graph.graph.output] == [
        'det_p3', 'det_p4', 'det_p5', 'id_map']
    assert os.listdir(tmp_path) == ['int8.onnx']


@pytest.mark.parametrize('case', ['onnx', 'calib_data', 'empty_calib',
                                  'calib_frames', 'checkpoint'])
def test_bad_input_names_the_option(assets, tiny_synthmot, tmp_path, case):
    out = tmp_path / 'int8.onnx'
    ckpt, args = assets['ckpt'], ['--calib-data', tiny_synthmot]
    if case == 'onnx':
        args += ['--onnx', tmp_path / 'missing.onnx']
        named = '--onnx: file not found'
    elif case == 'calib_data':
        args = ['--calib-data', tmp_path / 'nodata']
        named = '--calib-data: folder not found'
    elif case == 'empty_calib':
        (tmp_path / 'empty').mkdir()
        args = ['--calib-data', tmp_path / 'empty']
        named = '--calib-data: no frames in'
    elif case == 'calib_frames':
        args += ['--calib-frames', '0']
        named = '--calib-frames must be >= 1'
    else:
        ckpt = tmp_path / 'missing.pth'
        named = 'checkpoint file not found'
    proc = run_tool('quantize_int8.py', [CONFIG, ckpt, '--out', out] + args
                    + cfg_args(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert named in proc.stderr
    assert proc.stderr.startswith('usage:')
    assert 'Traceback' not in proc.stderr
    assert not out.exists()


def test_accuracy_tool_reports_both_graphs(int8, assets, tiny_synthmot,
                                           tmp_path):
    root = tiny_synthmot.rstrip('/') + '/'
    out = tmp_path / 'acc.json'
    proc = run_tool('int8_accuracy.py', [
        CONFIG, assets['ckpt'], '--fp32', assets['fp32'], '--int8', int8,
        '--name', 'tiny__seed0', '--out', out, '--work-dir',
        tmp_path / 'work'] + cfg_args({
            'model.test_cfg.score_thr': 0.3, 'model.id_head.num_ids': 5,
            'test_dataloader.dataset.data_root': root,
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False}))
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    run = doc['runs']['tiny__seed0']
    for kind in ('fp32', 'int8'):
        assert set(run[kind]) >= {'IDF1', 'MOTA', 'HOTA', 'IDs', 'FPS'}
    assert run['fp32']['MOTA'] < 100 and run['fp32']['FPS'] > 0
    assert run['delta']['IDF1'] == pytest.approx(
        run['int8']['IDF1'] - run['fp32']['IDF1'])
    assert run['cfg_options']['model.test_cfg.score_thr'] == 0.3
    assert run['command'].startswith('python tools/deploy/int8_accuracy.py')
    assert doc['summary']['tiny']['runs'] == 1
    assert 'tiny__seed0: IDF1 fp32' in proc.stdout
