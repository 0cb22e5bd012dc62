"""MOTDistiller.loss, value by value: recorded tensors, connectors and batch
data reach each loss argument as the mappings say, losses are logged under
their names, zero (but connected) after the stop, and the recorders are
emptied whatever happens. Written to kill the mutants of the loss path
(``tools/dev/mutation.sh --target distiller``, docs/testing.md)."""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from distill_toys import ToyNet, make_track_batch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import mmtrack_kd.models.distill  # noqa: F401  (registers the distiller)
from mmtrack_kd.engine import DistillStopHook
from mmtrack_kd.models.distill import DistillConfigError, collect_batch_data
from mmtrack_kd.models.distill.connectors import apply_connectors
from mmtrack_kd.models.distill.mappings import (
    ArgSpec,
    check_loss_forward_mappings,
    log_name_clash,
    loss_log_names,
    pair_student_teacher,
    recorded_value,
)
from mmtrack_kd.models.distill.recorders import RecorderManager

STUDENT = dict(type='DistillTestToyNet', width=8)
TEACHER = dict(type='DistillTestToyNet', width=16)


@MODELS.register_module(name='LossPathDictLoss', force=True)
class DictLoss(nn.Module):
    """Returns two named parts: ``a`` (mean squared student map) and ``b``
    (mean teacher map)."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T):
        return dict(a=self.loss_weight * preds_S.pow(2).mean(),
                    b=self.loss_weight * preds_T.mean())


@MODELS.register_module(name='LossPathFrozenPartLoss', force=True)
class FrozenPartLoss(nn.Module):
    """A learnable projection and a frozen one (requires_grad False)."""

    def __init__(self, channels: int = 5) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.fixed = nn.Conv2d(channels, channels, 1)
        self.fixed.requires_grad_(False)

    def forward(self, preds_S, preds_T):
        return (self.proj(preds_S) - self.fixed(preds_T)).pow(2).mean()


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(1)
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=ToyNet(16).state_dict()), path)
    return path


def loss_path_cfg(teacher_ckpt, **overrides):
    """Three losses: neck KD on both levels through two connectors (weight
    2), head KD on the second head call (weight 0.5), and a spy fed the
    second neck level and every batch datum."""
    cfg = dict(
        type='MOTDistiller',
        student=STUDENT,
        teacher=TEACHER,
        teacher_ckpt=teacher_ckpt,
        student_recorders=dict(
            neck=dict(type='ModuleOutputsRecorder', source='neck'),
            head=dict(type='ModuleOutputsRecorder', source='bbox_head')),
        teacher_recorders=dict(
            neck=dict(type='ModuleOutputsRecorder', source='neck'),
            head=dict(type='ModuleOutputsRecorder', source='bbox_head')),
        connectors=dict(
            c0=dict(type='ConvBNConnector'),
            c1=dict(type='ConvBNConnector')),
        distill_losses=dict(
            fm=dict(type='DistillTestMSELoss', loss_weight=2.0),
            loss_head=dict(type='DistillTestMSELoss', loss_weight=0.5),
            spy=dict(type='DistillTestSpyLoss')),
        loss_forward_mappings=dict(
            fm=dict(
                preds_S=dict(from_student=True, recorder='neck',
                             connector=['c0', 'c1']),
                preds_T=dict(from_student=False, recorder='neck')),
            loss_head=dict(
                preds_S=dict(from_student=True, recorder='head',
                             record_idx=1),
                preds_T=dict(from_student=False, recorder='head',
                             record_idx=1)),
            spy=dict(
                preds_S=dict(from_student=True, recorder='neck',
                             data_idx=1),
                preds_T=dict(from_student=False, recorder='neck',
                             data_idx=0),
                gt_bboxes=dict(from_data='gt_bboxes'),
                gt_ids=dict(from_data='gt_ids'),
                gt_labels=dict(from_data='gt_labels'),
                batch_input_shape=dict(from_data='batch_input_shape'))),
        dry_run_input_shape=(1, 3, 16, 16))
    cfg.update(overrides)
    return cfg


def build(cfg):
    model = MODELS.build(copy.deepcopy(cfg))
    # distinct, non-trivial connector weights and BN statistics, so that a
    # swapped or skipped connector changes the value
    torch.manual_seed(7)
    for conn in model.connectors.values():
        conn.conv.weight.data.normal_()
        conn.bn.running_mean.uniform_(-0.5, 0.5)
        conn.bn.running_var.uniform_(0.5, 2.0)
        conn.bn.weight.data.uniform_(0.5, 1.5)
        conn.bn.bias.data.uniform_(-0.5, 0.5)
    return model.eval()  # BN by running statistics: values are repeatable


def assert_recorders_empty(model):
    for manager in (model.student_recorders, model.teacher_recorders):
        for name, rec in manager.recorders.items():
            assert rec.data_buffer == [], name
            assert not rec.active, name


def frames_batch(shapes, meta_shape=(30, 20), labels=(3, 4)):
    """DetDataSamples, one per entry of ``shapes`` (box counts), with a
    ``batch_input_shape`` that is not the inputs' size."""
    frames = []
    for i, k in enumerate(shapes):
        det = DetDataSample(metainfo=dict(batch_input_shape=meta_shape))
        det.gt_instances = InstanceData(
            bboxes=torch.arange(4 * k, dtype=torch.float32).view(k, 4) + i,
            labels=torch.tensor(labels[:k]) + i,
            instances_ids=torch.arange(k) + 100 * i)
        frames.append(det)
    return frames


# ------------------------------------------------------------ loss values
def test_loss_values_equal_a_direct_computation(teacher_ckpt):
    """Each loss gets the tensors its mapping names: student/teacher side,
    record_idx, data_idx, each connector on its own level, weights."""
    model = build(loss_path_cfg(teacher_ckpt))
    inputs, samples = make_track_batch(n=2, t=1, size=32, seed=3)
    losses = model.loss(inputs, samples)
    assert list(losses) == ['loss_toy', 'loss_fm', 'loss_head', 'loss_spy']

    x = inputs.flatten(0, 1)
    s_net, t_net = model.student, model.teacher
    with torch.no_grad():
        s_neck = s_net.neck(s_net.backbone(x))
        t_neck = t_net.neck(t_net.backbone(x))
        s_head1 = s_net.bbox_head(s_neck[1])
        t_head1 = t_net.bbox_head(t_neck[1])
        c0, c1 = model.connectors['c0'], model.connectors['c1']
        fm = 2.0 * ((c0(s_neck[0]) - t_neck[0]).pow(2).mean() +
                    (c1(s_neck[1]) - t_neck[1]).pow(2).mean())
        head = 0.5 * (s_head1 - t_head1).pow(2).mean()
        spy = (s_neck[1].mean() - t_neck[0].mean()).pow(2)
        toy = s_net.loss(inputs, samples)['loss_toy']
    torch.testing.assert_close(losses['loss_toy'], toy, rtol=0, atol=0)
    torch.testing.assert_close(losses['loss_fm'], fm, rtol=1e-6, atol=0)
    torch.testing.assert_close(losses['loss_head'], head, rtol=1e-6, atol=0)
    torch.testing.assert_close(losses['loss_spy'], spy, rtol=1e-6, atol=0)
    # the connectors really differ: swapping them would change the value
    swapped = 2.0 * ((c1(s_neck[0]) - t_neck[0]).pow(2).mean() +
                     (c0(s_neck[1]) - t_neck[1]).pow(2).mean())
    assert abs(float(swapped - fm)) > 1e-3 * float(fm)

    seen = model.distill_losses['spy'].last
    assert torch.equal(seen['preds_S'], s_neck[1])
    assert torch.equal(seen['preds_T'], t_neck[0])
    assert seen['preds_S'].requires_grad and not seen['preds_T'].requires_grad
    assert seen['batch_input_shape'] == (32, 32)
    for i, sample in enumerate(samples):
        inst = sample[0].gt_instances
        assert torch.equal(seen['gt_bboxes'][i], inst.bboxes)
        assert torch.equal(seen['gt_ids'][i], inst.instances_ids)
        assert torch.equal(seen['gt_labels'][i], inst.labels)
    assert_recorders_empty(model)


def test_gradients_reach_student_and_connectors_not_teacher(teacher_ckpt):
    model = build(loss_path_cfg(teacher_ckpt))
    inputs, samples = make_track_batch(seed=4)
    losses = model.loss(inputs, samples)
    losses['loss_fm'].backward()
    for name in ('c0', 'c1'):
        grad = model.connectors[name].conv.weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.student.neck.lateral.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_teacher_sees_its_own_normalisation(teacher_ckpt):
    """The teacher runs on the renormalised inputs, the student on the
    inputs as given."""
    student = dict(STUDENT, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[0., 0., 0.],
        std=[255., 255., 255.]))
    teacher = dict(TEACHER, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[10., 20., 30.],
        std=[2., 4., 8.]))
    model = build(loss_path_cfg(teacher_ckpt, student=student,
                                teacher=teacher))
    seen_s, seen_t = [], []
    model.student.backbone.register_forward_pre_hook(
        lambda m, args: seen_s.append(args[0]))
    model.teacher.backbone.register_forward_pre_hook(
        lambda m, args: seen_t.append(args[0]))
    inputs, samples = make_track_batch(seed=5)
    model.loss(inputs, samples)
    assert len(seen_s) == 1 and len(seen_t) == 1
    assert torch.equal(seen_s[0], inputs.flatten(0, 1))
    mean = torch.tensor([10., 20., 30.]).view(3, 1, 1)
    std = torch.tensor([2., 4., 8.]).view(3, 1, 1)
    torch.testing.assert_close(
        seen_t[0], (inputs.flatten(0, 1) * 255 - mean) / std)
    assert not torch.allclose(seen_t[0], seen_s[0])


# ------------------------------------------------------------- log names
def test_dict_valued_loss_logged_per_key(teacher_ckpt):
    cfg = loss_path_cfg(teacher_ckpt)
    cfg['distill_losses'].update(
        kd=dict(type='LossPathDictLoss', loss_weight=3.0),
        loss_parts=dict(type='LossPathDictLoss'))
    cfg['loss_forward_mappings'].update(
        kd=dict(preds_S=dict(from_student=True, recorder='head'),
                preds_T=dict(from_student=False, recorder='head')),
        loss_parts=dict(preds_S=dict(from_student=True, recorder='head',
                                     record_idx=1),
                        preds_T=dict(from_student=False, recorder='head',
                                     record_idx=1)))
    model = build(cfg)
    inputs, samples = make_track_batch(seed=6)
    losses = model.loss(inputs, samples)
    assert list(losses) == [
        'loss_toy', 'loss_fm', 'loss_head', 'loss_spy', 'loss_kd_a',
        'loss_kd_b', 'loss_parts_a', 'loss_parts_b']
    x = inputs.flatten(0, 1)
    with torch.no_grad():
        s_head = model.student._forward(x)
        t_head = model.teacher._forward(x)
    torch.testing.assert_close(losses['loss_kd_a'],
                               3.0 * s_head[0].pow(2).mean())
    torch.testing.assert_close(losses['loss_kd_b'], 3.0 * t_head[0].mean())
    torch.testing.assert_close(losses['loss_parts_a'],
                               s_head[1].pow(2).mean())
    torch.testing.assert_close(losses['loss_parts_b'], t_head[1].mean())

    # after the stop the same keys are logged, as zeros (not one new key)
    model.distill_stopped = True
    stopped = model.loss(inputs, samples)
    assert list(stopped) == list(losses)
    for k in ('loss_kd_a', 'loss_kd_b', 'loss_parts_a', 'loss_parts_b'):
        assert stopped[k].item() == 0.0


@pytest.mark.parametrize('name, part, clash', [
    ('loss', 'toy', 'loss_toy'),    # a part logged as a student loss
    ('kd', 'x', 'loss_kd_x'),       # a part logged as another KD loss
])
def test_dict_part_clash_is_an_error_and_recorders_are_emptied(
        teacher_ckpt, name, part, clash):

    @MODELS.register_module(name='LossPathClashLoss', force=True)
    class ClashLoss(nn.Module):

        def forward(self, preds_S, preds_T):
            return {part: preds_S.mean()}

    cfg = loss_path_cfg(teacher_ckpt)
    cfg['distill_losses'] = dict(kd_x=dict(type='DistillTestMSELoss'))
    cfg['distill_losses'][name] = dict(type='LossPathClashLoss')
    mapping = dict(preds_S=dict(from_student=True, recorder='head'),
                   preds_T=dict(from_student=False, recorder='head'))
    cfg['loss_forward_mappings'] = {
        'kd_x': copy.deepcopy(mapping), name: copy.deepcopy(mapping)}
    cfg['connectors'] = dict()
    model = build(cfg)
    inputs, samples = make_track_batch(seed=7)
    with pytest.raises(DistillConfigError) as err:
        model.loss(inputs, samples)
    assert str(err.value).startswith(
        f'distill_losses.{name}: log key {clash!r} is also a student loss')
    assert_recorders_empty(model)


def test_log_names_keep_the_order_of_the_losses():
    names = loss_log_names(['b', 'loss_a', 'lossy', 'c'], [])
    assert list(names.items()) == [
        ('b', 'loss_b'), ('loss_a', 'loss_a'), ('lossy', 'lossy'),
        ('c', 'loss_c')]


# ------------------------------------------------------------------ stop
def stopped_model(teacher_ckpt, **overrides):
    cfg = loss_path_cfg(teacher_ckpt, distill_stop_iter=2, **overrides)
    cfg['distill_losses']['loss_head'] = dict(type='LossPathFrozenPartLoss')
    model = build(cfg)
    hook = DistillStopHook()
    runner = SimpleNamespace(model=model, iter=2, epoch=0)
    hook.before_train(runner)
    return model


def test_after_the_stop_every_distillation_loss_is_a_connected_zero(
        teacher_ckpt):
    model = stopped_model(teacher_ckpt)
    assert not model.distill_active()
    calls = []
    model.teacher.neck.register_forward_hook(lambda *a: calls.append(1))
    spy = model.distill_losses['spy']
    inputs, samples = make_track_batch(seed=8)
    losses = model.loss(inputs, samples)
    assert calls == [] and spy.last is None  # neither teacher nor loss ran
    assert list(losses) == ['loss_toy', 'loss_fm', 'loss_head', 'loss_spy']
    for key in ('loss_fm', 'loss_head', 'loss_spy'):
        value = losses[key]
        assert value.shape == () and value.dtype == inputs.dtype, key
        assert value.item() == 0.0, key
        assert value.requires_grad == (key in ('loss_fm', 'loss_head')), key
    assert losses['loss_toy'] > 0
    sum(v for k, v in losses.items() if k != 'loss_toy').backward()
    # every trainable parameter of the connectors and losses got a zero
    # gradient (DDP needs them used); the frozen one none
    for name, conn in model.connectors.items():
        for pname, p in conn.named_parameters():
            assert p.grad is not None, f'{name}.{pname}'
            assert p.grad.abs().sum() == 0, f'{name}.{pname}'
    loss = model.distill_losses['loss_head']
    assert torch.equal(loss.proj.weight.grad,
                       torch.zeros_like(loss.proj.weight))
    assert loss.fixed.weight.grad is None
    # the student's own loss is untouched: no gradient from the zeros
    assert all(p.grad is None for p in model.student.parameters())
    assert_recorders_empty(model)


def test_zero_loss_in_the_inputs_dtype(teacher_ckpt):
    model = stopped_model(teacher_ckpt).double()
    inputs, samples = make_track_batch(seed=9)
    losses = model.loss(inputs.double(), samples)
    assert losses['loss_fm'].dtype == torch.float64
    assert losses['loss_fm'].item() == 0.0


def test_stop_epoch_without_hook_is_an_error(teacher_ckpt):
    model = build(loss_path_cfg(teacher_ckpt, distill_stop_epoch=1))
    inputs, samples = make_track_batch()
    with pytest.raises(DistillConfigError,
                       match=r"^model\.distill_stop_epoch: set, but no "
                       r"DistillStopHook applies it; add "
                       r"dict\(type='DistillStopHook'\) to custom_hooks$"):
        model.loss(inputs, samples)
    assert_recorders_empty(model)
    # with the hook, before the stop: active
    DistillStopHook().before_train(SimpleNamespace(model=model, iter=0,
                                                   epoch=0))
    assert model.distill_active()
    assert model.loss(inputs, samples)['loss_fm'] > 0


# -------------------------------------------------------- recorded values
def managers():
    student, teacher = ToyNet(8), ToyNet(16)
    s = RecorderManager(dict(neck=dict(type='ModuleOutputsRecorder',
                                       source='neck')), 'student_recorders')
    t = RecorderManager(dict(neck=dict(type='ModuleOutputsRecorder',
                                       source='neck')), 'teacher_recorders')
    s.prepare_from_model(student)
    t.prepare_from_model(teacher)
    return student, teacher, s, t


def test_recorded_value_picks_side_call_and_element():
    student, teacher, s, t = managers()
    x1, x2 = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad(), s, t:
        s_out1, s_out2 = student._forward(x1), student._forward(x2)
        teacher._forward(x1)
    del s_out1, s_out2
    key = 'loss_forward_mappings.kd.preds_S'
    a = recorded_value(ArgSpec(key, 'preds_S', recorder='neck',
                               record_idx=1, data_idx=1), s, t)
    with torch.no_grad():
        expected = student.neck(student.backbone(x2))[1]
    assert torch.equal(a, expected)
    b = recorded_value(ArgSpec(key, 'preds_T', from_student=False,
                               recorder='neck'), s, t)
    assert isinstance(b, tuple) and b[0].shape[1] == 16
    assert recorded_value(ArgSpec(key, 'preds_S', recorder='neck',
                                  data_idx=0), s, t).shape[1] == 8


@pytest.mark.parametrize('spec, ran, message', [
    (dict(record_idx=1), True,
     r"recorder of 'neck': record_idx=1 but the module ran 1 time\(s\)"),
    (dict(), False,
     r"recorder of 'neck' recorded nothing: the module did not run inside "
     r'the recording block'),
    (dict(data_idx=5), True, r'tuple index out of range'),
])
def test_recorded_value_errors_name_the_key(spec, ran, message):
    student, teacher, s, t = managers()
    if ran:
        with torch.no_grad(), s, t:
            student._forward(torch.rand(1, 3, 16, 16))
    key = 'loss_forward_mappings.kd.preds_S'
    with pytest.raises(RuntimeError,
                       match=rf'^loss_forward_mappings\.kd\.preds_S: '
                       rf'{message}$'):
        recorded_value(ArgSpec(key, 'preds_S', recorder='neck', **spec), s,
                       t)


def test_recorded_value_wraps_a_data_idx_on_a_tensor():
    student, teacher, s, t = managers()
    t2 = RecorderManager(dict(neck=dict(type='ModuleOutputsRecorder',
                                        source='neck.lateral')),
                         'teacher_recorders')
    t2.prepare_from_model(teacher)
    with torch.no_grad(), t2:
        teacher._forward(torch.rand(1, 3, 16, 16))
    key = 'loss_forward_mappings.kd.preds_T'
    with pytest.raises(RuntimeError,
                       match=r"^loss_forward_mappings\.kd\.preds_T: recorder "
                       r"of 'neck\.lateral': data_idx=0 given but the "
                       r'recorded data is a Tensor$'):
        recorded_value(ArgSpec(key, 'preds_T', from_student=False,
                               recorder='neck', data_idx=0), s, t2)


# ------------------------------------------------------------ connectors
def conv(cin, cout, scale):
    layer = nn.Conv2d(cin, cout, 1, bias=False)
    nn.init.constant_(layer.weight, scale)
    return layer


def test_apply_connectors_maps_each_element_with_its_own():
    conns = nn.ModuleDict(dict(a=conv(2, 3, 1.0), b=conv(2, 3, 2.0)))
    x0, x1 = torch.rand(1, 2, 4, 4), torch.rand(1, 2, 2, 2)
    key = 'loss_forward_mappings.kd.preds_S'
    none = ArgSpec(key, 'preds_S', recorder='neck')
    value = [x0, x1]
    assert apply_connectors(conns, none, value) is value
    one = ArgSpec(key, 'preds_S', recorder='neck', connectors=('b', ))
    torch.testing.assert_close(apply_connectors(conns, one, x0),
                               2.0 * x0.sum(1, keepdim=True).expand(-1, 3,
                                                                    -1, -1))
    two = ArgSpec(key, 'preds_S', recorder='neck', connectors=('b', 'a'))
    for tup in ([x0, x1], (x0, x1)):
        out = apply_connectors(conns, two, tup)
        assert isinstance(out, list) and len(out) == 2
        torch.testing.assert_close(out[0], conns['b'](x0))
        torch.testing.assert_close(out[1], conns['a'](x1))


@pytest.mark.parametrize('names, value, message', [
    (('a', ), lambda x: [x],
     r"connector 'a' needs a Tensor, got a list; use data_idx or a list of "
     r'connectors, one per element'),
    (('a', 'b'), lambda x: x,
     r'2 connectors need a list of as many tensors, got Tensor'),
    (('a', 'b'), lambda x: [x, x, x],
     r'2 connectors need a list of as many tensors, got list'),
    (('a', 'b'), lambda x: [x],
     r'2 connectors need a list of as many tensors, got list'),
    (('a', ), lambda x: torch.rand(1, 5, 2, 2),
     r'.*expected input\[1, 5, 2, 2\] to have 2 channels.*'),
])
def test_apply_connectors_errors_name_the_key(names, value, message):
    conns = nn.ModuleDict(dict(a=conv(2, 3, 1.0), b=conv(2, 3, 2.0)))
    spec = ArgSpec('loss_forward_mappings.kd.preds_S', 'preds_S',
                   recorder='neck', connectors=names)
    with pytest.raises(DistillConfigError,
                       match=rf'^loss_forward_mappings\.kd\.preds_S\.'
                       rf'connector: {message}$'):
        apply_connectors(conns, spec, value(torch.rand(1, 2, 4, 4)))


# ------------------------------------------------------------ batch data
def test_batch_input_shape_from_the_first_frame_else_the_inputs():
    inputs = torch.rand(1, 3, 3, 32, 28)  # (N, T, C, H, W)
    frames = frames_batch([2], meta_shape=[30, 20])  # one frame, a list
    data = collect_batch_data(inputs, frames, ['batch_input_shape'])
    assert data == dict(batch_input_shape=(30, 20))
    assert isinstance(data['batch_input_shape'], tuple)
    for samples in ([], None):
        assert collect_batch_data(inputs, samples, ('batch_input_shape', )) \
            == dict(batch_input_shape=(32, 28))
    # a frame without the key: the inputs' size
    frames[0].set_metainfo(dict(img_shape=(5, 5)))
    del frames[0].batch_input_shape
    assert collect_batch_data(inputs[:, 0], frames,
                              {'batch_input_shape'}) == dict(
                                  batch_input_shape=(32, 28))


def test_batch_data_per_frame_in_order():
    frames = frames_batch([2, 1, 0])
    inputs = torch.rand(3, 3, 8, 8)
    data = collect_batch_data(inputs, frames,
                              iter(['gt_labels', 'gt_ids', 'gt_bboxes']))
    assert set(data) == {'gt_labels', 'gt_ids', 'gt_bboxes'}
    assert [v.tolist() for v in data['gt_labels']] == [[3, 4], [4], []]
    assert [v.tolist() for v in data['gt_ids']] == [[0, 1], [100], []]
    for i, frame in enumerate(frames):
        assert data['gt_bboxes'][i] is frame.gt_instances.bboxes
    assert collect_batch_data(inputs, frames, []) == {}


def test_batch_data_from_frames_without_get():
    """Frames may be plain objects with gt_instances (no ``get``)."""
    det = frames_batch([2])[0]
    frame = SimpleNamespace(metainfo=det.metainfo,
                            gt_instances=det.gt_instances)
    data = collect_batch_data(torch.rand(1, 3, 8, 8), [frame],
                              ['gt_ids', 'gt_labels'])
    assert data['gt_ids'][0].tolist() == [0, 1]
    assert data['gt_labels'][0].tolist() == [3, 4]
    bare = SimpleNamespace(metainfo={})
    with pytest.raises(KeyError,
                       match="^'gt_bboxes: frame 1 of the batch has no "
                       "gt_instances.bboxes'$"):
        collect_batch_data(torch.rand(2, 3, 8, 8), [frame, bare],
                           ['gt_bboxes'])


@pytest.mark.parametrize('key, field', [
    ('gt_bboxes', 'bboxes'), ('gt_labels', 'labels'),
    ('gt_ids', 'instances_ids')])
def test_batch_data_missing_field_names_frame_and_field(key, field):
    frames = frames_batch([2, 1])
    del frames[1].gt_instances[field]
    with pytest.raises(KeyError,
                       match=rf"^'{key}: frame 1 of the batch has no "
                       rf"gt_instances\.{field}'$"):
        collect_batch_data(torch.rand(2, 3, 8, 8), frames, [key])


def test_student_loss_gets_the_batch_as_given(teacher_ckpt):
    model = build(loss_path_cfg(teacher_ckpt))
    calls = []
    own_loss = model.student.loss

    def spy(inputs, data_samples):
        calls.append((inputs, data_samples))
        return own_loss(inputs, data_samples)

    model.student.loss = spy
    inputs, samples = make_track_batch(seed=10)
    model.loss(inputs, samples)
    assert len(calls) == 1
    assert calls[0][0] is inputs and calls[0][1] is samples


def test_log_name_clash_message():
    err = log_name_clash('loss_a_loss_b', 'loss_a_loss_b')
    assert isinstance(err, DistillConfigError)
    assert str(err) == (
        "distill_losses.loss_a_loss_b: log key 'loss_a_loss_b' is also a "
        'student loss; rename the distillation loss (e.g. kd_a_loss_b)')


def test_batch_input_shape_from_the_inputs_when_no_samples(teacher_ckpt):
    """A batch without data samples: the loss path takes (H, W) from the
    inputs it was given."""
    cfg = loss_path_cfg(teacher_ckpt)
    model = build(cfg)
    inputs = torch.rand(2, 3, 32, 24)
    model.loss(inputs, [])
    seen = model.distill_losses['spy'].last
    assert seen['batch_input_shape'] == (32, 24)
    assert seen['gt_bboxes'] == [] and seen['gt_ids'] == []


# ------------------------------------- what the connectors apply, exactly
def test_convbn_connector_defaults_no_relu_no_conv_bias():
    conn = MODELS.build(dict(type='ConvBNConnector', in_channels=2,
                             out_channels=3)).eval()
    assert conn.conv.bias is None
    assert isinstance(conn.act, nn.Identity)
    assert sorted(conn.state_dict()) == [
        'bn.bias', 'bn.num_batches_tracked', 'bn.running_mean',
        'bn.running_var', 'bn.weight', 'conv.weight']
    x = torch.randn(2, 2, 3, 3)
    torch.testing.assert_close(conn(x), conn.bn(conn.conv(x)))
    assert (conn(x) < 0).any()  # no ReLU by default
    relu = MODELS.build(dict(type='ConvBNConnector', in_channels=2,
                             out_channels=3, act=True)).eval()
    assert isinstance(relu.act, nn.ReLU)
    torch.testing.assert_close(relu(x), relu.bn(relu.conv(x)).clamp(min=0))


def test_mlp_connector_hidden_width():
    conn = MODELS.build(dict(type='MLPConnector', in_channels=4,
                             out_channels=6, hidden_channels=5))
    assert (conn.fc1.in_features, conn.fc1.out_features) == (4, 5)
    assert (conn.fc2.in_features, conn.fc2.out_features) == (5, 6)
    x = torch.randn(3, 4)
    torch.testing.assert_close(
        conn(x), conn.fc2(torch.relu(conn.fc1(x))))
    default = MODELS.build(dict(type='MLPConnector', in_channels=4,
                                out_channels=6))
    assert default.fc1.out_features == 6


def test_identity_connector_channels():
    conn = MODELS.build(dict(type='IdentityConnector', in_channels=3))
    assert (conn.in_channels, conn.out_channels) == (3, 3)
    conn = MODELS.build(dict(type='IdentityConnector', in_channels=3,
                             out_channels=3))
    assert (conn.in_channels, conn.out_channels) == (3, 3)
    conn = MODELS.build(dict(type='IdentityConnector', out_channels=4))
    assert (conn.in_channels, conn.out_channels) == (None, 4)


@pytest.mark.parametrize('cls', ['ConvBNConnector', 'MLPConnector'])
@pytest.mark.parametrize('given, missing', [
    (dict(out_channels=6), 'in_channels'),
    (dict(in_channels=4), 'out_channels')])
def test_connector_channels_none_message(cls, given, missing):
    with pytest.raises(ValueError,
                       match=rf'^{cls}: {missing} is None; give it, or let '
                       rf'MOTDistiller infer it$'):
        MODELS.build(dict(type=cls, **given))


# ------------------------------------------------- the distiller's entries
def test_forward_modes_dispatch_with_the_batch(teacher_ckpt):
    model = build(loss_path_cfg(teacher_ckpt))
    calls = []
    student = model.student
    for mode in ('loss', 'predict', '_forward'):
        own = getattr(student, mode)

        def spy(*args, _own=own, _mode=mode, **kwargs):
            calls.append((_mode, args, kwargs))
            return _own(*args[:2])

        setattr(student, mode, spy)
    inputs, samples = make_track_batch(seed=11)
    x = inputs.flatten(0, 1)

    def first_call(*args, **kwargs):
        calls.clear()
        out = model(*args, **kwargs)
        return out, calls[0]  # the student's method the distiller called

    losses, call = first_call(inputs, samples, mode='loss')
    assert 'loss_fm' in losses
    assert call[0] == 'loss'
    assert call[1][0] is inputs and call[1][1] is samples
    _, call = first_call(x, samples, mode='predict')
    assert call[0] == 'predict'
    assert call[1][0] is x and call[1][1] is samples
    _, call = first_call(x, samples, mode='tensor')
    assert call[0] == '_forward'
    assert call[1][0] is x and call[1][1] is samples
    _, call = first_call(x)  # tensor by default, no data samples passed on
    assert call == ('_forward', (x, ), {})
    calls.clear()
    model._forward(x, samples, extra=1)
    assert calls[0] == ('_forward', (x, samples), dict(extra=1))
    calls.clear()
    model._forward(x, extra=2)
    assert calls[0] == ('_forward', (x, ), dict(extra=2))
    calls.clear()
    model.predict(x, samples, rescale=False)
    assert calls[0] == ('predict', (x, samples), dict(rescale=False))
    with pytest.raises(RuntimeError,
                       match='^Invalid mode "train": use loss, predict or '
                       'tensor$'):
        model(x, samples, mode='train')


def test_dtype_moves_reach_the_teacher(teacher_ckpt):
    model = build(loss_path_cfg(teacher_ckpt)).double()
    assert all(p.dtype == torch.float64 for p in model.teacher.parameters())
    assert model.teacher.neck.lateral.weight.dtype == torch.float64
    inputs, samples = make_track_batch(seed=12)
    losses = model.loss(inputs.double(), samples)
    assert losses['loss_fm'].dtype == torch.float64 and losses['loss_fm'] > 0
    model.float()
    assert model.teacher.bbox_head.weight.dtype == torch.float32


def test_init_cfg_is_kept(teacher_ckpt):
    init_cfg = dict(type='Pretrained', checkpoint='none.pth')
    model = build(loss_path_cfg(teacher_ckpt, init_cfg=init_cfg))
    assert model.init_cfg == init_cfg


# ---------------------------------- student/teacher pairs (channel checks)
@MODELS.register_module(name='LossPathKwargsLoss', force=True)
class KwargsLoss(nn.Module):
    """Takes any keyword argument."""

    def forward(self, **kwargs):
        return sum(v.mean() for v in kwargs.values())


def pairs_of(mapping):
    specs = check_loss_forward_mappings(
        dict(kd=mapping), dict(kd=KwargsLoss()), ['s'], ['t'], [])
    return [(a.arg, b.arg) for a, b in pair_student_teacher(specs['kd'])]


def test_pairs_by_suffix_first_then_in_order():
    S = dict(from_student=True, recorder='s')
    T = dict(from_student=False, recorder='t')
    # crossed order: the suffixes decide, not the order
    assert pairs_of(dict(emb_S=S, preds_S=S, preds_T=T, emb_T=T)) == [
        ('emb_S', 'emb_T'), ('preds_S', 'preds_T')]
    assert pairs_of(dict(emb_s=S, preds_s=S, preds_t=T, emb_t=T)) == [
        ('emb_s', 'emb_t'), ('preds_s', 'preds_t')]
    # no common stem: config order; batch data never pairs
    assert pairs_of(dict(a=S, box=dict(from_data='gt_bboxes'), b=S, y=T,
                         x=T)) == [('a', 'y'), ('b', 'x')]
    # a suffix pair first, the rest in order
    assert pairs_of(dict(a=S, feat_S=S, y=T, feat_T=T)) == [
        ('feat_S', 'feat_T'), ('a', 'y')]
    # two teacher candidates with the student's stem: no suffix pair
    assert pairs_of(dict(f_S=S, f_T=T, f_t=T)) == [('f_S', 'f_T')]
    assert pairs_of(dict(f_S=S, g=T, f_T=T, f_t=T)) == [('f_S', 'g')]
    # the stem is the name without its two-character suffix
    assert pairs_of(dict(feat_S=S, fe_T=T, feat_T=T)) == [
        ('feat_S', 'feat_T')]
    # a student without teacher stays unpaired
    assert pairs_of(dict(a_S=S, b_S=S, b_T=T)) == [('b_S', 'b_T')]


# ----------------------------- mapping checks that guard the loss path
@pytest.mark.parametrize('mapping, message', [
    (dict(preds_S=dict(from_data='gt_bboxes', recorder='s')),
     r'loss_forward_mappings\.kd\.preds_S: from_data cannot be combined '
     r'with recorder'),
    (dict(preds_S=dict(from_student=True, recorder='s', connector=[1])),
     r'loss_forward_mappings\.kd\.preds_S\.connector: expected a name or a '
     r'list of names, got \[1\]'),
    (dict(preds_S=dict(from_student=True, recorder='s', connector=3)),
     r'loss_forward_mappings\.kd\.preds_S\.connector: expected a name or a '
     r'list of names, got 3'),
    (dict(preds_S=dict(from_student=True, recorder='s', record_idx=-1)),
     r'loss_forward_mappings\.kd\.preds_S\.record_idx: expected an int >= '
     r'0, got -1'),
    (dict(preds_S=dict(from_student=True, recorder='s', record_idx='1')),
     r"loss_forward_mappings\.kd\.preds_S\.record_idx: expected an int >= "
     r"0, got '1'"),
    (dict(), r'loss_forward_mappings\.kd: expected a non-empty dict of '
     r'argument mappings'),
    (['preds_S'], r'loss_forward_mappings\.kd: expected a non-empty dict of '
     r'argument mappings'),
])
def test_mapping_checks_that_guard_the_loss_path(mapping, message):
    with pytest.raises(DistillConfigError, match=rf'^{message}$'):
        check_loss_forward_mappings(dict(kd=mapping), dict(kd=KwargsLoss()),
                                    ['s'], ['t'], [])
