"""tools/test.py --sweep: every candidate's metrics on one network pass
equal those of its own tools/test.py --cfg-options run, for CSTrack,
FairMOT and mmdet's ByteTrack; keys the network reads are refused."""
import json
import os
import os.path as osp
import runpy

import cv2
import pytest
import torch

from mmtrack_kd.benchmark import thresholds as thr
from mmtrack_kd.benchmark.plan import load_benchmark_data
from mmtrack_kd.evaluation import load_sweep, sweep_out_paths
from mmtrack_kd.evaluation.sweep import check_sweep, unsweepable_keys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TINY_DATA = """
data_root = '{data}/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
"""


def _yolox(widen):
    c = [int(x * widen) for x in (256, 512, 1024)]
    return dict(backbone=dict(widen_factor=widen),
                neck=dict(in_channels=c, out_channels=c[0]),
                bbox_head=dict(in_channels=c[0], feat_channels=c[0]))


def _score_convs(model):
    """(1x1 conv, output rows) that give a family's detection score
    logits."""
    head = getattr(model, 'detector', model).bbox_head
    if hasattr(head, 'multi_level_conv_obj'):  # YOLOX
        for conv in head.multi_level_conv_cls:
            conv.bias.data.fill_(6.0)  # class probability ~1
        return [(conv, [0]) for conv in head.multi_level_conv_obj]
    if hasattr(head, 'heatmap_head'):  # FairMOT
        return [(head.heatmap_head[-1], [0])]
    rows = [a * head.num_outputs + 4 for a in range(head.num_anchors)]
    return [(conv, rows) for conv in head.convs]  # CSTrack objectness


def _spread_scores(model, img, mean=-3.0, std=1.5):
    """Rescale every score logit of a random model so that, over the
    positions of ``img`` (1, 3, H, W), it has ``mean`` and ``std``: a stub
    detector whose scores follow the image, a few percent of positions
    above each threshold of the grid (0.4: z > 1.7, 0.7: z > 2.6)."""
    from mmtrack_kd.models.mot.split import frame_split
    convs = _score_convs(model)
    seen = {}
    hooks = [conv.register_forward_hook(
        lambda mod, args, out, i=i: seen.__setitem__(i, args[0]))
        for i, (conv, _) in enumerate(convs)]
    with torch.no_grad():
        frame_split(model).network(img)
        for hook in hooks:
            hook.remove()
        for i, (conv, rows) in enumerate(convs):
            feats = seen[i].flatten(2)[0]  # (C, positions)
            for r in rows:
                w = conv.weight.data[r].view(-1)
                p = w @ feats
                conv.weight.data[r] *= std / p.std()
                conv.bias.data[r] = mean - std * p.mean() / p.std()


# family -> (base config, tiny model overrides, candidates)
FAMILIES = {
    'cstrack': (
        'configs/cstrack/cstrack_yolov5n_synthmot.py',
        dict(backbone=dict(widen_factor=0.125), neck=dict(out_channels=32),
             id_head=dict(embed_channels=32, saan=dict(mid_channels=32))),
        thr.candidates(thr.grid_spec(load_benchmark_data()))),
    'fairmot': (
        'configs/fairmot/fairmot_r18_synthmot.py',
        dict(backbone=dict(base_channels=8),
             neck=dict(in_channels=64, num_deconv_filters=(16, 16, 16)),
             bbox_head=dict(head_conv=16),
             id_head=dict(head_conv=16, embed_channels=16)),
        {f't={t}': {'model.test_cfg.score_thr': t,
                    'model.tracker.obj_score_thr': t,
                    'model.tracker.init_track_thr': t}
         for t in (0.4, 0.6)}),
    'bytetrack': (
        'configs/bytetrack/bytetrack_yolox_n_synthmot.py',
        dict(detector=_yolox(0.0625)),
        {f't={t}': {'model.tracker.obj_score_thrs.high': t,
                    'model.tracker.init_track_thr': t,
                    'model.detector.test_cfg.score_thr': t / 4}
         for t in (0.4, 0.6)}),
}


@pytest.fixture(scope='module')
def family_model(request, tiny_synthmot, tmp_path_factory):
    """A tiny random model of the family with its score logits spread
    (a stub detector that finds boxes at every threshold of the grid),
    saved with its config."""
    from mmtrack_kd.apis import init_tracker
    name = request.param
    base, model, cands = FAMILIES[name]
    tmp = tmp_path_factory.mktemp(f'sweep_{name}')
    cfg = tmp / f'{name}.py'
    cfg.write_text(f"_base_ = ['{ROOT}/{base}']\n"
                   + TINY_DATA.format(data=tiny_synthmot.rstrip('/'))
                   + f'model = dict(**{model!r})\n')
    torch.manual_seed(0)
    net = init_tracker(str(cfg), None)
    seq = osp.join(tiny_synthmot, 'val', sorted(os.listdir(
        osp.join(tiny_synthmot, 'val')))[0], 'img1')
    img = cv2.imread(osp.join(seq, sorted(os.listdir(seq))[3]))
    x = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None]
    pre = net.data_preprocessor  # (ByteTrack's does not normalise)
    x = (x.float() - getattr(pre, 'mean', 0.0)) / getattr(pre, 'std', 1.0)
    _spread_scores(net, x)
    ckpt = tmp / 'model.pth'
    torch.save({'state_dict': net.state_dict(), 'meta': {}}, ckpt)
    return name, str(cfg), str(ckpt), cands


def _test(cfg, ckpt, work, *extra):
    """``tools/test.py CFG CKPT --split val --work-dir WORK EXTRA...``, in
    this process."""
    main = runpy.run_path(osp.join(ROOT, 'tools', 'test.py'))['main']
    assert main([cfg, ckpt, '--split', 'val', '--work-dir', str(work),
                 *extra]) == 0


def _plain(metrics):
    return {k: v for k, v in metrics.items() if k != 'FPS'}


@pytest.mark.parametrize('family_model', list(FAMILIES), indirect=True)
def test_sweep_equals_separate_runs(family_model, tmp_path):
    name, cfg, ckpt, cands = family_model
    separate = {}
    for i, (label, options) in enumerate(cands.items()):
        out = tmp_path / f'sep{i}.json'
        _test(cfg, ckpt, tmp_path / f'w{i}', '--out', str(out),
              '--results-dir', str(tmp_path / f'res{i}'),
              *thr.cfg_option_args(options),
              f'experiment_name=sweep_{name}_sep{i}')
        separate[label] = json.loads(out.read_text())
    sweep = tmp_path / 'sweep.json'
    sweep.write_text(json.dumps(cands))
    _test(cfg, ckpt, tmp_path / 'ws', '--sweep', str(sweep),
          '--out', str(tmp_path / 'swept.t{i}.json'),
          '--results-dir', str(tmp_path / 'res_sweep'), '--cfg-options',
          f'experiment_name=sweep_{name}_all')
    for i, label in enumerate(cands):
        got = json.loads((tmp_path / f'swept.t{i}.json').read_text())
        assert got['FPS'] > 0
        assert _plain(got) == _plain(separate[label]), label
        # the tracks themselves: every box, score and identity
        seqs = sorted(os.listdir(tmp_path / f'res{i}'))
        assert seqs == sorted(os.listdir(tmp_path / 'res_sweep' / label))
        for seq in seqs:
            assert (tmp_path / 'res_sweep' / label / seq).read_text() == \
                (tmp_path / f'res{i}' / seq).read_text(), (label, seq)
    # the candidates differ (the comparison can fail) and track something
    distinct = {json.dumps(_plain(m), sort_keys=True)
                for m in separate.values()}
    assert len(distinct) > 1
    assert all(m['mot/FP'] + m['mot/MT'] + m['mot/PT'] > 0
               for m in separate.values())


def test_keys_the_network_reads_are_refused():
    assert unsweepable_keys({'model.tracker.a': 1, 'model.test_cfg.b': 2,
                             'model.backbone.c': 3}, 'test_cfg') == [
                                 'model.backbone.c']
    check_sweep({'x': {'model.detector.test_cfg.score_thr': 0.1}},
                'detector.test_cfg')
    with pytest.raises(ValueError, match=r"candidate 'x': key "
                       r"'model.test_cfg.score_thr' cannot be swept"):
        check_sweep({'x': {'model.test_cfg.score_thr': 0.1}},
                    'detector.test_cfg')


@pytest.mark.parametrize('family_model', ['cstrack'], indirect=True)
def test_tool_refuses_a_network_key(family_model, tmp_path):
    _, cfg, ckpt, _ = family_model
    sweep = tmp_path / 'sweep.json'
    sweep.write_text(json.dumps({'a': {'model.tracker.obj_score_thr': 0.5},
                                 'b': {'model.neck.out_channels': 16}}))
    with pytest.raises(ValueError, match="'model.neck.out_channels'"):
        _test(cfg, ckpt, tmp_path / 'w', '--sweep', str(sweep),
              '--cfg-options', 'experiment_name=sweep_refused')


def test_sweep_file_and_out_paths(tmp_path):
    path = tmp_path / 's.json'
    path.write_text('{"b": {"k": 1}, "a": {"k": 2}}')
    assert list(load_sweep(str(path))) == ['b', 'a']  # file order
    path.write_text('{"a": {}}')
    with pytest.raises(ValueError, match="candidate 'a'"):
        load_sweep(str(path))
    with pytest.raises(FileNotFoundError, match='--sweep'):
        load_sweep(str(tmp_path / 'none.json'))
    assert sweep_out_paths('m/x.t{i}.json', ['a', 'b']) == {
        'a': 'm/x.t0.json', 'b': 'm/x.t1.json'}
    assert sweep_out_paths('m', ['a=1']) == {'a=1': 'm/a=1.json'}
    with pytest.raises(ValueError, match='share a file'):
        sweep_out_paths('m/{{x}}.json', ['a', 'b'])
    with pytest.raises(ValueError, match='only {i} and {label}'):
        sweep_out_paths('m/{name}.json', ['a'])
    with pytest.raises(ValueError, match='no file name'):
        sweep_out_paths('m', ['a/b'])


def test_output_copy_gives_each_candidate_its_own_frames():
    """Each candidate's copy has its own video and frame objects (its own
    predictions) and shares the ground truth; the input is left as it
    was."""
    from mmdet.structures import DetDataSample, TrackDataSample
    from mmengine.structures import InstanceData

    from mmtrack_kd.evaluation.sweep import _output_copy
    frame = DetDataSample(metainfo=dict(frame_id=3, scale_factor=(2., 2.)))
    frame.gt_instances = InstanceData(bboxes=torch.ones(2, 4))
    video = TrackDataSample(metainfo=dict(video_id=1))
    video.video_data_samples = [frame]
    a, b = _output_copy([video]), _output_copy([video])
    fa, fb = a[0].video_data_samples[0], b[0].video_data_samples[0]
    assert fa is not fb and fa is not frame and a[0] is not video
    assert fa.gt_instances is frame.gt_instances
    assert fa.metainfo == frame.metainfo and a[0].metainfo == video.metainfo
    fa.pred_track_instances = InstanceData(bboxes=torch.zeros(1, 4))
    fa.set_metainfo(dict(frame_id=9))
    assert 'pred_track_instances' not in fb and \
        'pred_track_instances' not in frame
    assert frame.frame_id == fb.frame_id == 3
    assert len(video.video_data_samples) == 1
