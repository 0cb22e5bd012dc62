"""The JSON reports of the speed tools (tools/benchmark/fps.py and
kd_step_overhead.py, over mmtrack_kd.apis.speed)."""
import contextlib
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmtrack_kd.apis.speed import fps_json, step_overhead_json, write_json


def run_tool(repo_root, name, args):
    """Run tools/benchmark/NAME.py as a user would, in a subprocess."""
    proc = subprocess.run(
        [sys.executable, osp.join('tools', 'benchmark', name + '.py')] +
        [str(a) for a in args], cwd=repo_root, capture_output=True,
        text=True, env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=900)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def fps_result():
    stat = dict(frames=4, fps=10.0, model_ms=80.0, tracker_ms=20.0,
                model_fps=12.5)
    return dict(names=['a.py', 'b.py'],
                stats=[stat, dict(stat, fps=25.0, model_fps=40.0,
                                  model_ms=25.0, tracker_ms=15.0)],
                threads=1, input_size=(128, 96), warmup=1, compare=True,
                onnx=None)


def test_fps_json_has_speedup_date_and_command():
    doc = fps_json(fps_result(), ['python', 'tools/benchmark/fps.py', 'a b'])
    assert [m['name'] for m in doc['models']] == ['a.py', 'b.py']
    assert doc['models'][1]['tracker_ms'] == 15.0
    assert doc['speedup'] == pytest.approx(2.5)
    assert doc['model_speedup'] == pytest.approx(3.2)
    assert doc['command'] == "python tools/benchmark/fps.py 'a b'"
    assert doc['torch_threads'] == 1 and doc['input_size'] == [128, 96]
    assert doc['date'].endswith('+00:00')
    assert len(doc['load_average']) == 3 and doc['cpu_count'] >= 1
    one = dict(fps_result(), names=['a.py'], stats=fps_result()['stats'][:1])
    assert 'speedup' not in fps_json(one)


def test_step_overhead_json_fractions():
    result = dict(
        config='kd.py', median=dict(student=0.1, kd=0.25, teacher=0.14),
        times={}, overhead_beyond_teacher=0.1, threads=1,
        batch_shape=(4, 1, 3, 64, 96), iters=3,
        components={'loss.x.forward': [0.002, 0.004, 0.003]})
    doc = step_overhead_json(result, ['python', 'tool.py'])
    assert doc['overhead_beyond_teacher'] == 0.1
    assert doc['median_ms'] == pytest.approx(
        dict(student=100., kd=250., teacher=140.))
    assert doc['ratios']['kd_over_student'] == pytest.approx(2.5)
    part = doc['components']['loss.x.forward']
    assert part['median_ms'] == pytest.approx(3.)
    assert part['share_of_student'] == pytest.approx(0.03)
    assert doc['torch_threads'] == 1 and doc['command'] == 'python tool.py'


def test_paired_overhead_is_the_median_of_each_iterations_own():
    from mmtrack_kd.apis.speed import paired_overhead

    # a slow spell in iteration 2 moves its three steps together: the
    # medians of the steps mix iterations, the paired figure does not
    times = dict(student=[0.100, 0.100, 0.150],
                 kd=[0.170, 0.172, 0.255],
                 teacher=[0.060, 0.060, 0.090])
    assert paired_overhead(times) == pytest.approx(0.1)
    med = {k: sorted(v)[1] for k, v in times.items()}
    assert (med['kd'] - med['teacher'] - med['student']) / \
        med['student'] == pytest.approx(0.12)


def test_write_json_is_atomic(tmp_path):
    path = tmp_path / 'sub' / 'r.json'
    write_json({'a': 1}, str(path))
    assert json.loads(path.read_text()) == {'a': 1}
    with pytest.raises(TypeError):
        write_json({'a': object()}, str(path))
    assert json.loads(path.read_text()) == {'a': 1}  # left untouched
    assert [p.name for p in path.parent.iterdir()] == ['r.json']


def test_fps_tool_writes_json(repo_root, tmp_path):
    out = tmp_path / 'fps.json'
    run_tool(repo_root, 'fps', [
        osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py'),
        'none', '--input-size', '128', '96', '--frames', '3', '--warmup', '1',
        '--threads', '1', '--compare',
        osp.join(repo_root, 'configs/cstrack/cstrack_yolov5s_synthmot.py'),
        'none', '--out', out])
    doc = json.loads(out.read_text())
    assert [m['name'] for m in doc['models']] == [
        'cstrack_yolov5n_synthmot.py', 'cstrack_yolov5s_synthmot.py']
    for m in doc['models']:
        assert m['fps'] == pytest.approx(
            1e3 / (m['model_ms'] + m['tracker_ms']), rel=1e-6)
    assert doc['speedup'] == pytest.approx(
        doc['models'][1]['fps'] / doc['models'][0]['fps'])
    assert doc['command'].startswith('python tools/benchmark/fps.py ')
    assert '--out' in doc['command'] and doc['torch_threads'] == 1


TINY = """
data_root = '{data}/'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
"""


def test_kd_step_overhead_tool_writes_json(repo_root, tiny_synthmot,
                                           tmp_path):
    from mmdet.registry import MODELS

    from mmtrack_kd.utils.config import load_config, resolve_num_ids
    tiny = TINY.format(data=tiny_synthmot.rstrip('/'))
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(
        f"_base_ = ['{repo_root}/configs/cstrack/cstrack_yolov5s_synthmot"
        ".py']\n" + tiny + "model = dict(backbone=dict(widen_factor=0.125),"
        " neck=dict(out_channels=32), id_head=dict(embed_channels=32))\n")
    cfg = load_config(str(teacher_cfg))
    resolve_num_ids(cfg)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)
    kd_cfg = tmp_path / 'kd.py'
    kd_cfg.write_text(
        f"_base_ = ['{repo_root}/configs/kd/cstrack_s2n_kd_synthmot.py']\n"
        + tiny + f"model = dict(teacher='{teacher_cfg}', "
        f"teacher_ckpt='{ckpt}', student=dict("
        "backbone=dict(widen_factor=0.0625), neck=dict(out_channels=16), "
        "id_head=dict(embed_channels=16)))\n")
    out = tmp_path / 'kd.json'
    run_tool(repo_root, 'kd_step_overhead', [
        kd_cfg, '--iters', '1', '--threads', '1', '--clock', 'cpu', '--out',
        out])
    doc = json.loads(out.read_text())
    med = doc['median_ms']
    assert doc['overhead_beyond_teacher'] == pytest.approx(
        (med['kd'] - med['teacher'] - med['student']) / med['student'])
    # one timed iteration: its own overhead is the medians' (rounding)
    assert len(doc['times_ms']['kd']) == 1
    assert doc['overhead_paired'] == pytest.approx(
        doc['overhead_beyond_teacher'], abs=1e-4)
    for loss in ('kd_id', 'kd_feat', 'kd_resp'):
        for part in ('forward', 'backward'):
            assert f'loss.{loss}.{part}' in doc['components']
    for c in ('neck_c0', 'neck_c1', 'neck_c2'):
        assert f'connector.{c}.forward' in doc['components']
    assert {'recorders.student', 'recorders.teacher', 'teacher_forward',
            'batch_data'} <= set(doc['components'])
    # the parts timed inside KD steps (no balancer in this config)
    assert {'forward', 'backward', 'other', 'backward_extra',
            'loss.kd_feat'} <= set(doc['in_step'])
    assert 'balancer' not in doc
    assert isinstance(doc['retain_freed_memory'], bool)
    assert doc['torch_threads'] == 1 and doc['iters'] == 1
    assert doc['clock'] == 'cpu' and doc['steady_state'] is True
    assert doc['date'] and '--out' in doc['command']


def test_random_teacher_checkpoint_fits_the_distiller(repo_root,
                                                      tiny_synthmot,
                                                      tmp_path,
                                                      overhead_tool):
    """--random-teacher: the checkpoint written for a config whose teacher
    is not trained loads strictly into its distiller (num_ids counted from
    the training annotations), and a config without a teacher is named."""
    from mmtrack_kd.apis.speed import build_distiller_batch
    tool = overhead_tool
    tiny = TINY.format(data=tiny_synthmot.rstrip('/'))
    kd_cfg = tmp_path / 'kd.py'
    kd_cfg.write_text(
        f"_base_ = ['{repo_root}/configs/kd/cstrack_s2n_kd_synthmot.py']\n"
        + tiny + "model = dict(teacher_ckpt='never/trained.pth')\n")
    assert tool.parse_args([str(kd_cfg), '--warmup-phase']).warmup_phase
    assert not tool.parse_args([str(kd_cfg)]).warmup_phase
    ckpt = tool.random_teacher(str(kd_cfg), None, str(tmp_path / 't.pth'))
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta'] == dict(random_teacher=True)
    model, inputs, _ = build_distiller_batch(
        str(kd_cfg), {'model.teacher_ckpt': ckpt})
    assert inputs.shape[0] == 2
    # the steps timed are those after the connectors' warm-up
    conns = [c for c in model.connectors.values() if c.detach_iters]
    assert conns and all(
        int(c.warmup_calls) == c.detach_iters for c in conns)
    model, _, _ = build_distiller_batch(
        str(kd_cfg), {'model.teacher_ckpt': ckpt}, steady=False)
    assert all(int(c.warmup_calls) == 0 for c in model.connectors.values()
               if c.detach_iters)
    assert model.teacher.id_head.num_ids == model.student.id_head.num_ids
    plain = tmp_path / 'plain.py'
    plain.write_text(f"_base_ = ['{repo_root}/configs/cstrack/"
                     "cstrack_yolov5s_synthmot.py']\n" + tiny)
    with pytest.raises(ValueError, match='model.teacher is not set'):
        tool.random_teacher(str(plain), None, str(tmp_path / 'x.pth'))


def test_process_intervals_and_the_target(overhead_tool):
    tool = overhead_tool
    runs = [dict(overhead_beyond_teacher=v, overhead_paired=v - 0.01)
            for v in (0.08, 0.09, 0.10, 0.09)]
    got = tool.process_intervals(runs)
    # the amortised reading is missing from the runs: left out
    assert set(got) == {'overhead_beyond_teacher', 'overhead_paired'}
    t = got['overhead_beyond_teacher']
    assert t['n'] == 4 and t['mean'] == pytest.approx(0.09)
    # sd 0.00816, t(0.975, 3) = 3.182: half-width 0.01299
    assert t['low'] == pytest.approx(0.09 - 0.012990, abs=1e-5)
    assert t['high'] == pytest.approx(0.09 + 0.012990, abs=1e-5)
    lines = tool.format_intervals(got, 0.10).splitlines()
    # paired 0.067-0.093: below; beyond the teacher 0.077-0.103: across
    assert 'overhead_paired' in lines[2] and 'below the target +0.100' \
        in lines[2]
    assert 'not resolved from the target +0.100' in lines[1]
    assert 'above the target' in tool.format_intervals(got, 0.05)
    assert 'target' not in tool.format_intervals(got, None)
    # one process: the limits are nan, never 'below'
    one = tool.process_intervals(runs[:1])['overhead_paired']
    assert one['n'] == 1 and one['low'] != one['low']
    assert 'not resolved' in tool.format_intervals(
        dict(overhead_paired=one), 1.0)
    assert tool.main(['x.py', '--target', '0.1']) == 2  # needs processes


def test_unknown_clock_is_refused():
    from mmtrack_kd.apis.speed import CLOCKS, measure_kd_step_overhead
    assert set(CLOCKS) == {'wall', 'cpu'}
    with pytest.raises(ValueError, match='clock'):
        measure_kd_step_overhead('nonexistent.py', clock='gpu')


def test_fps_tool_times_several_onnx_files(repo_root, tmp_path):
    """fp32 and int8 graphs side by side (here two copies of one graph),
    a crowded clip, and the per-part times."""
    import shutil

    from mmtrack_kd.apis import export_onnx, init_tracker
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(
        f"_base_ = ['{repo_root}/configs/cstrack/cstrack_yolov5n_synthmot"
        ".py']\nmodel = dict(backbone=dict(widen_factor=0.125), "
        "neck=dict(out_channels=32), id_head=dict(embed_channels=32, "
        "num_ids=4, saan=dict(mid_channels=32)), "
        "test_cfg=dict(score_thr=0.005), tracker=dict(obj_score_thr=0.005,"
        " init_track_thr=0.005))\n")  # random weights: low objectness
    torch.manual_seed(0)
    model = init_tracker(str(cfg))
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    a, b = tmp_path / 'a.onnx', tmp_path / 'b.onnx'
    export_onnx(model, str(a), (320, 192))
    shutil.copy(a, b)
    out = tmp_path / 'fps.json'
    proc = run_tool(repo_root, 'fps', [
        cfg, ckpt, '--input-size', '320', '192', '--frames', '4', '--warmup',
        '1', '--threads', '1', '--onnx', a, b, '--people', '5', '6',
        '--out', out])
    doc = json.loads(out.read_text())
    names = [m['name'] for m in doc['models']]
    assert names == ['tiny.py', 'tiny.py (onnxruntime: a.onnx)',
                     'tiny.py (onnxruntime: b.onnx)']
    assert list(doc['onnx_speedup']) == [names[2]]
    assert doc['onnx_speedup'][names[2]] == pytest.approx(
        doc['models'][2]['fps'] / doc['models'][1]['fps'])
    assert doc['people'] == [5, 6] and doc['onnx'] == [str(a), str(b)]
    for m in doc['models']:
        assert m['network_ms'] + m['postprocess_ms'] == pytest.approx(
            m['model_ms'])
        assert m['tracker_share'] == pytest.approx(
            m['tracker_ms'] / (m['model_ms'] + m['tracker_ms']))
        assert m['dets_per_frame'] > 0 and m['tracks_per_frame'] > 0
    # the same graph twice: the same detections
    assert doc['models'][1]['dets_per_frame'] == \
        doc['models'][2]['dets_per_frame']
    assert 'a.onnx) / tiny.py (onnxruntime: b.onnx' not in proc.stdout
    assert 'ratio FPS tiny.py (onnxruntime: b.onnx) / tiny.py ' \
        '(onnxruntime: a.onnx)' in proc.stdout
    assert 'tracks per frame' in proc.stdout


def test_fps_tool_rejects_bad_people(repo_root, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark/fps.py',
         'configs/cstrack/cstrack_yolov5n_synthmot.py', 'none',
         '--input-size', '128', '96', '--people', '9', '3'],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert '--people 9 3' in proc.stderr


def test_fps_tool_compares_several_models_in_fp16(repo_root, tmp_path):
    """--compare given twice: three models interleaved, each compared with
    the first; --fp16 runs the networks in half precision (here on the
    CPU, which only checks the code path)."""
    out = tmp_path / 'fps.json'
    n = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py')
    s = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5s_synthmot.py')
    m = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5m_synthmot.py')
    proc = run_tool(repo_root, 'fps', [
        n, 'none', '--input-size', '64', '64', '--frames', '3', '--warmup',
        '1', '--threads', '1', '--fp16', '--compare', s, 'none',
        '--compare', m, 'none', '--out', out])
    doc = json.loads(out.read_text())
    names = [x['name'] for x in doc['models']]
    assert names == [osp.basename(p) for p in (n, s, m)]
    assert set(doc['speedup']) == set(names[1:])
    for name, x in zip(names[1:], doc['models'][1:]):
        assert doc['speedup'][name] == pytest.approx(
            x['fps'] / doc['models'][0]['fps'])
    assert doc['device'] == 'cpu' and doc['fp16'] is True
    assert 'gpu' not in doc
    assert 'device: cpu, fp16' in proc.stdout
    for name in names[1:]:
        assert f'ratio FPS {names[0]} / {name}:' in proc.stdout


def test_fps_json_keeps_the_gpu_fields():
    result = dict(fps_result(), device='cuda', fp16=True, gpu='Some GPU',
                  cuda_version='13.0', cudnn_version=91000,
                  cudnn_benchmark=True)
    doc = fps_json(result)
    assert doc['device'] == 'cuda' and doc['fp16'] is True
    assert doc['gpu'] == 'Some GPU' and doc['cuda_version'] == '13.0'
    plain = fps_json(fps_result())
    assert plain['device'] == 'cpu' and plain['fp16'] is False
    assert 'gpu' not in plain


def test_device_checks_and_timer_sync():
    from mmtrack_kd.apis.speed import _synchronizer, check_device
    assert check_device('cpu') is None
    assert 'not a torch device' in check_device('gpu0')
    assert 'only cpu and cuda' in check_device('meta')
    if torch.cuda.is_available():
        assert check_device('cuda') is None
        assert _synchronizer('cuda:0') is torch.cuda.synchronize
    else:
        assert 'sees no CUDA device' in check_device('cuda')
    assert _synchronizer('cpu')() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU-only '
                    'machine')
def test_fps_tool_refuses_cuda_without_a_gpu(repo_root):
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark/fps.py',
         'configs/cstrack/cstrack_yolov5n_synthmot.py', 'none',
         '--input-size', '64', '64', '--device', 'cuda'],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert 'sees no CUDA device' in proc.stderr


def test_fps_tool_refuses_missing_checkpoint_and_onnx_on_gpu(
        repo_root, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'fps_tool', osp.join(repo_root, 'tools', 'benchmark', 'fps.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py')
    args = tool.parse_args([cfg, 'missing.pth', '--input-size', '64', '64'])
    assert tool.check_args(args) == 'checkpoint not found: missing.pth'
    monkeypatch.setattr('mmtrack_kd.apis.speed.check_device',
                        lambda device: None)  # as if a GPU were there
    args = tool.parse_args([cfg, 'none', '--input-size', '64', '64',
                            '--device', 'cuda', '--onnx'])
    assert '--onnx runs ONNX Runtime on the CPU' in tool.check_args(args)


# --------------------------------------------------------------- CUDA graphs
class FakeCUDA:
    """Stands in for torch.cuda in GraphedForward on a CPU-only machine:
    records the calls; a graph's replay runs its ``replay_fn`` (set by the
    test: what the captured kernels would recompute)."""

    class Stream:
        def wait_stream(self, other):
            pass

    class CUDAGraph:
        def __init__(self):
            self.replays = 0
            self.replay_fn = None

        def replay(self):
            self.replays += 1
            if self.replay_fn is not None:
                self.replay_fn()

    def __init__(self):
        self.log = []

    def current_stream(self):
        return self.Stream()

    @contextlib.contextmanager
    def stream(self, s):
        self.log.append('warmup_begin')
        yield
        self.log.append('warmup_end')

    @contextlib.contextmanager
    def graph(self, g):
        self.log.append('capture_begin')
        yield
        self.log.append('capture_end')


def _copy_into(dst, src):
    """Copy a nested dict/list of tensors into the same structure."""
    if isinstance(dst, dict):
        for k in dst:
            _copy_into(dst[k], src[k])
    elif isinstance(dst, (list, tuple)):
        for d, s in zip(dst, src):
            _copy_into(d, s)
    else:
        dst.copy_(src)


def test_graphed_forward_copies_into_the_static_input_and_replays():
    from mmtrack_kd.apis.speed import GraphedForward
    calls = []

    def forward(x):
        calls.append(x)
        return dict(a=[x * 2], b=x.sum(1))

    fake = FakeCUDA()
    example = torch.arange(6.).view(1, 2, 3)
    graphed = GraphedForward(forward, example, warmup=2, cuda=fake)
    assert fake.log == ['warmup_begin', 'warmup_end', 'capture_begin',
                        'capture_end']
    assert len(calls) == 3 and all(c is graphed.static_input for c in calls)
    assert graphed.static_input is not example  # a copy, not the frame
    graphed.graph.replay_fn = lambda: _copy_into(
        graphed.static_output, forward(graphed.static_input))
    calls.clear()
    for seed in (1, 2):
        x = torch.randn(1, 2, 3, generator=torch.Generator().manual_seed(seed))
        out = graphed(x)
        assert out is graphed.static_output
        assert torch.equal(graphed.static_input, x)
        assert torch.equal(out['a'][0], x * 2)
        assert torch.equal(out['b'], x.sum(1))
    assert graphed.graph.replays == 2
    with pytest.raises(ValueError, match=r'captured for \(1, 2, 3\)'):
        graphed(torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match='torch.float64'):
        graphed(torch.zeros(1, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match='warmup must be >= 1'):
        GraphedForward(forward, example, warmup=0, cuda=fake)


def test_graphed_forward_refuses_cpu_tensors():
    from mmtrack_kd.apis.speed import GraphedForward
    with pytest.raises(ValueError, match='CUDA graphs need a CUDA device'):
        GraphedForward(lambda x: x, torch.zeros(1, 3, 8, 8))


@pytest.fixture(scope='module')
def tiny_model_and_clip(repo_root):
    from mmtrack_kd.apis.speed import build_model, render_clip
    torch.manual_seed(0)
    model = build_model(
        osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py'),
        'none')
    return model, render_clip(64, 64, 4)


def test_timed_cuda_graph_path_tracks_like_the_plain_forward(
        tiny_model_and_clip):
    """The graphed path (fake graph: replay recomputes the forward into
    the static outputs) gives the same detections and tracks as the plain
    one, and the network runs once per frame through the replay."""
    import copy

    from mmtrack_kd.apis.speed import GraphedForward, Timed
    model, clip = tiny_model_and_clip
    model.test_cfg['score_thr'] = 0.0  # random weights: keep boxes
    plain = Timed(copy.deepcopy(model), clip)
    graphed = Timed(copy.deepcopy(model), clip, cuda_graph=True,
                    graph_api=FakeCUDA())
    assert isinstance(graphed.network, GraphedForward)
    assert not isinstance(plain.network, GraphedForward)
    g = graphed.network
    forwards = []

    def replay():
        forwards.append(1)
        _copy_into(g.static_output, graphed._network(g.static_input))

    g.graph.replay_fn = replay
    for i in range(len(clip)):
        plain.step(i, record=True)
        graphed.step(i, record=True)
    assert g.graph.replays == len(clip) == len(forwards)
    assert graphed.dets == plain.dets and graphed.tracks == plain.tracks
    assert sum(plain.dets) > 0


def test_timed_tracker_threads_apply_during_the_tracker_only(
        tiny_model_and_clip):
    import copy

    from mmtrack_kd.apis.speed import Timed
    model, clip = tiny_model_and_clip
    model = copy.deepcopy(model)
    seen = []
    track = model.tracker.track

    def counting_track(sample):
        seen.append(torch.get_num_threads())
        return track(sample)

    model.tracker.track = counting_track
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        timed = Timed(model, clip, tracker_threads=1)
        timed.step(0, record=True)
        assert seen == [1] and torch.get_num_threads() == 2
        timed.tracker_threads = None
        timed.step(1, record=True)
        assert seen == [1, 2]
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match='tracker_threads must be >= 1'):
        Timed(model, clip, tracker_threads=0)


def test_cuda_graph_needs_a_cuda_device(repo_root):
    from mmtrack_kd.apis.speed import measure_tracking_fps
    cfg = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py')
    with pytest.raises(ValueError, match='CUDA graphs need a CUDA device'):
        measure_tracking_fps(cfg, 'none', (64, 64), cuda_graph=True)
    with pytest.raises(ValueError, match="True, False or 'both'"):
        measure_tracking_fps(cfg, 'none', (64, 64), cuda_graph='on')
    with pytest.raises(ValueError, match='tracker_threads must be >= 1'):
        measure_tracking_fps(cfg, 'none', (64, 64), tracker_threads=0)


def test_fps_tool_checks_cuda_graph_and_tracker_threads(repo_root,
                                                         monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'fps_tool', osp.join(repo_root, 'tools', 'benchmark', 'fps.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = osp.join(repo_root, 'configs/cstrack/cstrack_yolov5n_synthmot.py')
    base = [cfg, 'none', '--input-size', '64', '64']
    args = tool.parse_args(base + ['--cuda-graph'])
    assert args.cuda_graph == 'on'
    assert '--cuda-graph needs --device cuda' in tool.check_args(args)
    assert tool.parse_args(base + ['--cuda-graph', 'both']).cuda_graph == \
        'both'
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--cuda-graph', 'always'])
    args = tool.parse_args(base + ['--tracker-threads', '0'])
    assert tool.check_args(args) == \
        '--tracker-threads 0: expected a positive count'
    assert tool.check_args(tool.parse_args(base + ['--tracker-threads',
                                                   '1'])) is None
    monkeypatch.setattr('mmtrack_kd.apis.speed.check_device',
                        lambda device: None)  # as if a GPU were there
    args = tool.parse_args(base + ['--device', 'cuda', '--cuda-graph'])
    assert tool.check_args(args) is None


def test_fps_report_and_json_of_plain_and_graphed_models():
    from mmtrack_kd.apis.speed import format_fps_report
    stat = dict(frames=4, fps=10.0, model_ms=80.0, tracker_ms=20.0,
                model_fps=12.5, network_ms=70.0, postprocess_ms=10.0,
                tracker_share=0.2, dets_per_frame=1.0, tracks_per_frame=1.0)
    result = dict(
        names=['a.py', 'b.py', 'a.py [cuda graph]', 'b.py [cuda graph]'],
        stats=[stat, dict(stat, fps=20.0, model_fps=25.0),
               dict(stat, fps=30.0, model_fps=50.0, network_ms=10.0),
               dict(stat, fps=25.0, model_fps=40.0, network_ms=5.0)],
        threads=16, input_size=(64, 64), warmup=1, compare=True,
        n_compare=1, onnx=None, device='cuda', fp16=True, gpu='Some GPU',
        cuda_graph='both', tracker_threads=1)
    doc = fps_json(result)
    assert doc['cuda_graph'] == 'both' and doc['tracker_threads'] == 1
    assert doc['graph_speedup'] == {'a.py': 3.0, 'b.py': 1.25}
    assert doc['graph_model_speedup'] == {'a.py': 4.0, 'b.py': 1.6}
    assert doc['speedup']['a.py [cuda graph]'] == 3.0
    text = format_fps_report(result)
    assert 'device: cuda (Some GPU), fp16, plain and CUDA graph' in text
    assert 'torch threads during the tracker: 1' in text
    assert ('ratio FPS a.py [cuda graph] / a.py: 3.000 (model alone 4.000; '
            'network 10.0 against 70.0 ms)') in text
    assert 'ratio FPS b.py [cuda graph] / b.py: 1.250' in text
    plain = fps_json(fps_result())
    assert plain['cuda_graph'] is False and 'graph_speedup' not in plain


@pytest.mark.parametrize('config', [
    'configs/cstrack/cstrack_yolov5n_synthmot.py',
    'configs/fairmot/fairmot_r18_synthmot.py',
    'configs/bytetrack/bytetrack_yolox_tiny_synthmot.py'])
def test_timed_tracks_every_family(repo_root, config):
    """fps.py's timing runs CSTrack, FairMOT and mmdet's ByteTrack (whose
    network is its detector's): every frame is timed and tracked."""
    from mmtrack_kd.apis.speed import Timed, build_model, render_clip
    torch.manual_seed(0)
    model = build_model(osp.join(repo_root, config), 'none')
    timed = Timed(model, render_clip(64, 64, 3))
    for i in range(3):
        timed.step(i, record=True)
    rep = timed.report()
    assert rep['frames'] == 3 and rep['fps'] > 0
    assert len(timed.dets) == len(timed.tracks) == 3


def test_timed_bytetrack_detects_as_its_detector(repo_root):
    """For mmdet's ByteTrack the timed model part (its frame split) gives
    the boxes of the detector's own ``predict`` (same threshold and
    NMS)."""
    from mmdet.structures import DetDataSample

    from mmtrack_kd.apis.speed import Timed, build_model, render_clip
    torch.manual_seed(0)
    model = build_model(osp.join(
        repo_root, 'configs/bytetrack/bytetrack_yolox_tiny_synthmot.py'),
        'none')
    model.detector.test_cfg['score_thr'] = 0.0  # random weights
    timed = Timed(model, render_clip(96, 64, 2))
    x = timed.inputs[0]
    meta = dict(img_shape=(64, 96), ori_shape=(64, 96), pad_shape=(64, 96),
                batch_input_shape=(64, 96), scale_factor=(1., 1.))
    with torch.no_grad():
        ref = model.detector.predict(
            x, [DetDataSample(metainfo=meta)], rescale=False)[0]
        sample = DetDataSample(metainfo=meta)
        timed.split.detect(timed.network(x), x, sample, timed.test_cfg,
                           rescale=False)
    ours = sample.pred_instances
    assert len(ours) == len(ref.pred_instances) > 0
    assert torch.allclose(ours.bboxes, ref.pred_instances.bboxes)
    assert torch.allclose(ours.scores, ref.pred_instances.scores)
