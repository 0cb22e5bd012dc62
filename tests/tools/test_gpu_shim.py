"""tools/benchmark/gpu_shim/mmcv_ext.py (mmcv's _ext without compiled ops)
and tools/benchmark/gpu_fps.sh."""
import importlib.util
import json
import os
import os.path as osp
import subprocess

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHIM = osp.join(ROOT, 'tools', 'benchmark', 'gpu_shim', 'mmcv_ext.py')


def load_shim():
    spec = importlib.util.spec_from_file_location('mmcv_ext_shim', SHIM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize('offset', [0, 1])
@pytest.mark.parametrize('backend', ['default', 'torch'])
def test_shim_nms_matches_mmcv(offset, backend, monkeypatch):
    ext = pytest.importorskip('mmcv._ext')  # the compiled reference
    shim = load_shim()
    if backend == 'torch':
        monkeypatch.setattr(shim, '_tv_nms', None)
    for seed in range(3):
        boxes, scores = random_boxes(200, seed)
        want = ext.nms(boxes, scores, iou_threshold=0.5, offset=offset)
        got = shim.nms(boxes, scores, iou_threshold=0.5, offset=offset)
        assert got.tolist() == want.tolist()
        assert 5 < len(got) < 200  # some kept, some suppressed


def test_shim_nms_takes_half_and_empty_inputs():
    shim = load_shim()
    boxes, scores = random_boxes(50, 0)
    keep32 = shim.nms(boxes, scores, 0.6)
    keep16 = shim.nms(boxes.half(), scores.half(), 0.6)
    assert keep16.dtype == torch.long and len(keep16) > 0
    # fp16 rounding may flip a borderline pair, not the whole result
    assert len(set(keep16.tolist()) ^ set(keep32.tolist())) <= 2
    empty = shim.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.shape == (0, ) and empty.dtype == torch.long


def test_shim_other_ops_raise_naming_the_op():
    shim = load_shim()
    # mmcv's ext_loader checks hasattr for every op a module declares
    for name in ('roi_align_forward', 'deform_conv_forward', 'softnms'):
        assert hasattr(shim, name)
    with pytest.raises(NotImplementedError, match="'roi_align_forward'"):
        shim.roi_align_forward(torch.zeros(1))
    assert not hasattr(shim, '__path__')  # not mistaken for a package


def test_mmcv_ops_import_and_batched_nms_through_the_shim(tmp_path):
    """mmcv's Python package with the shim as its _ext (no compiled ops)
    imports mmcv.ops and runs batched_nms like the compiled one."""
    import shutil

    import mmcv
    from mmcv.ops import batched_nms as compiled_batched_nms
    lite = tmp_path / 'mmcv'
    shutil.copytree(osp.dirname(mmcv.__file__), lite,
                    ignore=shutil.ignore_patterns('_ext*.so', '__pycache__'))
    shutil.copy(SHIM, lite / '_ext.py')
    boxes, scores = random_boxes(300, 1)
    labels = (scores * 3).long()
    torch.save(dict(boxes=boxes, scores=scores, labels=labels),
               tmp_path / 'in.pt')
    code = (
        'import torch, mmcv, mmcv.ops, mmcv._ext as e\n'
        'assert mmcv.__file__.startswith(%r), mmcv.__file__\n'
        'd = torch.load(%r)\n'
        'dets, keep = mmcv.ops.batched_nms(d["boxes"], d["scores"], '
        'd["labels"], dict(type="nms", iou_threshold=0.5))\n'
        'print(keep.tolist())\n' % (str(tmp_path), str(tmp_path / 'in.pt')))
    proc = subprocess.run(
        [os.sys.executable, '-c', code], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, want = compiled_batched_nms(boxes, scores, labels,
                                   dict(type='nms', iou_threshold=0.5))
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == want.tolist()


def test_gpu_fps_script_dry_run_on_cpu(tmp_path):
    """The script end to end without a GPU and without installing: one
    fp32 run of CSTrack-L and -S on a tiny clip, its JSON merged."""
    out = tmp_path / 'out'
    env = dict(os.environ, DEVICE='cpu', FRAMES='2', WARMUP='1',
               SIZE='64 64', RUNS='fp32', SKIP_INSTALL='1',
               PYTHON=os.sys.executable, OUT_DIR=str(out),
               KD_CONFIG=str(tmp_path / 'missing.py'), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'benchmark', 'gpu_fps.sh')],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'KD student' in proc.stdout and 'skipped' in proc.stdout
    assert 'batched_nms check: ok' in proc.stdout
    doc = json.loads((out / 'fps_gpu.json').read_text())
    run = doc['runs']['fp32']
    assert [m['name'] for m in run['models']] == [
        'cstrack_yolov5l_mot17.py', 'cstrack_yolov5s_mot17.py']
    assert run['device'] == 'cpu' and run['fp16'] is False
    assert run['fps_over_L']['cstrack_yolov5s_mot17.py'] == pytest.approx(
        run['models'][1]['fps'] / run['models'][0]['fps'])
    assert (out / 'gpu_fps.log').read_text().count('== fp32') == 1


def test_gpu_fps_script_rejects_unknown_run(tmp_path):
    env = dict(os.environ, DEVICE='cpu', RUNS='fp8', SKIP_INSTALL='1',
               PYTHON=os.sys.executable, OUT_DIR=str(tmp_path))
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'benchmark', 'gpu_fps.sh')],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2
    assert 'unknown run fp8' in proc.stdout


def test_gpu_fps_script_repeats_runs_and_refuses_graphs_on_cpu(tmp_path):
    """A run named twice is run twice (files _2); --tracker-threads reaches
    fps.py; the CUDA-graph runs stop with fps.py's message on the CPU and
    the script goes on."""
    out = tmp_path / 'out'
    env = dict(os.environ, DEVICE='cpu', FRAMES='2', WARMUP='1',
               SIZE='64 64', RUNS='fp32_tracker1 fp32_graph fp32_tracker1',
               SKIP_INSTALL='1', PYTHON=os.sys.executable,
               OUT_DIR=str(out), KD_CONFIG=str(tmp_path / 'missing.py'),
               OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'benchmark', 'gpu_fps.sh')],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert '--cuda-graph needs --device cuda' in proc.stdout
    assert 'gpu_fps: run fp32_graph failed' in proc.stdout
    doc = json.loads((out / 'fps_gpu.json').read_text())
    assert sorted(doc['runs']) == ['fp32_tracker1', 'fp32_tracker1_2']
    for run in doc['runs'].values():
        assert run['tracker_threads'] == 1 and run['cuda_graph'] is False
        assert '--tracker-threads 1' in run['command']
