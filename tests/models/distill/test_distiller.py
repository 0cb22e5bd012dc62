"""MOTDistiller: frozen teacher, losses, stop, state dict, DDP."""
import copy
import os
import random
import socket
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
from distill_toys import ToyNet, make_track_batch
from mmdet.registry import MODELS
from mmengine.optim import OptimWrapper

import mmtrack_kd.models.distill  # noqa: F401  (registers the distiller)
from mmtrack_kd.engine import DistillStopHook
from mmtrack_kd.models.distill import DistillConfigError, student_loss_names

STUDENT = dict(type='DistillTestToyNet', width=8)
TEACHER = dict(type='DistillTestToyNet', width=16)


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(1)
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(meta=dict(epoch=3), state_dict=ToyNet(16).state_dict()),
               path)
    return path


def kd_cfg(teacher_ckpt, **overrides):
    """Neck feature KD on both levels (connectors inferred) + head KD."""
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
            neck_s0=dict(type='ConvBNConnector'),
            neck_s1=dict(type='ConvBNConnector')),
        distill_losses=dict(
            loss_fm=dict(type='DistillTestMSELoss', loss_weight=2.0),
            head=dict(type='DistillTestMSELoss', loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_fm=dict(
                preds_S=dict(from_student=True, recorder='neck',
                             connector=['neck_s0', 'neck_s1']),
                preds_T=dict(from_student=False, recorder='neck'),
                gt_bboxes=dict(from_data='gt_bboxes')),
            head=dict(
                preds_S=dict(from_student=True, recorder='head',
                             record_idx=1),
                preds_T=dict(from_student=False, recorder='head',
                             record_idx=1))),
        dry_run_input_shape=(1, 3, 16, 16))
    cfg.update(overrides)
    return cfg


def build(cfg):
    return MODELS.build(copy.deepcopy(cfg))


def test_losses_named_and_weighted(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt))
    inputs, samples = make_track_batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_toy', 'loss_fm', 'loss_head'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    # weight 2 from config: doubling the weight doubles the loss
    model.distill_losses['loss_fm'].loss_weight = 4.0
    model.eval()  # freeze connector BN statistics for the comparison
    a = model.loss(inputs, samples)['loss_fm']
    model.distill_losses['loss_fm'].loss_weight = 2.0
    b = model.loss(inputs, samples)['loss_fm']
    torch.testing.assert_close(a, 2 * b)
    # inferred connector channels: student 8 -> teacher 16
    assert model.connectors['neck_s0'].conv.in_channels == 8
    assert model.connectors['neck_s0'].conv.out_channels == 16


def test_teacher_frozen_bit_identical_student_learns(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt))
    model.init_weights()  # must not re-initialise the loaded teacher
    teacher_before = {k: v.clone() for k, v in
                      model.teacher.state_dict().items()}
    on_disk = torch.load(teacher_ckpt)['state_dict']
    for k, v in on_disk.items():
        assert torch.equal(teacher_before[k], v), k
    student_before = {k: v.clone() for k, v in
                      model.student.state_dict().items()}
    conn_before = model.connectors['neck_s0'].conv.weight.clone()
    assert all(not p.requires_grad for p in model.teacher.parameters())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.train()
    for step in range(3):
        inputs, samples = make_track_batch(seed=step)
        model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k  # BN stats included
    changed = [k for k, v in model.student.state_dict().items()
               if not torch.equal(v, student_before[k])]
    assert 'neck.lateral.weight' in changed
    assert not torch.equal(model.connectors['neck_s0'].conv.weight,
                           conn_before)
    assert not any(p is q for p in model.parameters()
                   for q in model.teacher.parameters())


def test_teacher_stays_eval(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt))
    model.train()
    assert model.student.training and model.connectors.training
    assert not any(m.training for m in model.teacher.modules())
    model.train(True)
    model.eval()
    model.train()
    assert not any(m.training for m in model.teacher.modules())


def test_build_restores_student_training_mode(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt))
    assert model.student.training  # built in train mode, dry run in eval
    assert model.student.backbone[1].running_mean.abs().sum() == 0


def test_state_dict_has_no_teacher_and_round_trips(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt,
                         distill_losses=dict(
                             loss_fm=dict(type='DistillTestMSELoss'),
                             head=dict(type='DistillTestLearnableLoss',
                                       channels=5))))
    state = model.state_dict()
    assert not any(k.startswith('teacher') for k in state)
    assert any(k.startswith('student.neck.') for k in state)
    assert 'connectors.neck_s0.conv.weight' in state
    assert 'distill_losses.head.proj.weight' in state
    assert {k.split('.')[0] for k in state} <= {
        'student', 'connectors', 'distill_losses', 'data_preprocessor'}
    fresh = build(kd_cfg(teacher_ckpt,
                         distill_losses=dict(
                             loss_fm=dict(type='DistillTestMSELoss'),
                             head=dict(type='DistillTestLearnableLoss',
                                       channels=5))))
    fresh.load_state_dict(state, strict=True)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[k])


def test_missing_teacher_ckpt(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_ckpt.*nope.pth'):
        build(kd_cfg(str(tmp_path / 'nope.pth')))
    with pytest.raises(DistillConfigError, match='teacher_ckpt: required'):
        build(kd_cfg(None))


def test_mismatched_teacher_ckpt_lists_keys(tmp_path):
    state = ToyNet(16).state_dict()
    state.pop('neck.down.bias')
    state['neck.extra.weight'] = torch.zeros(1)
    state['bbox_head.weight'] = torch.zeros(5, 3, 1, 1)
    path = str(tmp_path / 'bad.pth')
    torch.save(state, path)
    with pytest.raises(DistillConfigError) as err:
        build(kd_cfg(path))
    msg = str(err.value)
    assert 'teacher_ckpt' in msg and 'bad.pth' in msg
    assert 'missing keys: neck.down.bias' in msg
    assert 'unexpected keys: neck.extra.weight' in msg
    assert 'bbox_head.weight (checkpoint (5, 3, 1, 1) vs model ' \
           '(5, 16, 1, 1))' in msg


def test_teacher_ckpt_from_distiller_checkpoint(tmp_path, teacher_ckpt):
    """A KD checkpoint (student.* + connectors.*) can be a teacher."""
    teacher_net = ToyNet(16)
    state = {f'student.{k}': v for k, v in teacher_net.state_dict().items()}
    state['connectors.x.conv.weight'] = torch.zeros(1)
    path = str(tmp_path / 'kd.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    model = build(kd_cfg(path))
    assert torch.equal(model.teacher.neck.down.weight,
                       teacher_net.neck.down.weight)


def test_channel_mismatch_without_connector(teacher_ckpt):
    cfg = kd_cfg(teacher_ckpt, connectors=dict())
    cfg['loss_forward_mappings']['loss_fm']['preds_S'].pop('connector')
    with pytest.raises(DistillConfigError,
                       match=r'loss_forward_mappings\.loss_fm: student '
                       r'preds_S has \[8, 8\] channels but teacher preds_T '
                       r'has \[16, 16\]'):
        build(cfg)
    # explicitly allowed: builds
    cfg['loss_forward_mappings']['loss_fm']['preds_S'][
        'allow_channel_mismatch'] = True
    build(cfg)


def test_connector_with_wrong_explicit_channels(teacher_ckpt):
    cfg = kd_cfg(teacher_ckpt)
    cfg['connectors']['neck_s0'] = dict(type='ConvBNConnector',
                                        in_channels=4, out_channels=16)
    with pytest.raises(DistillConfigError,
                       match=r'loss_forward_mappings\.loss_fm\.preds_S'
                       r'\.connector'):
        build(cfg)


def test_unused_connector_is_an_error(teacher_ckpt):
    cfg = kd_cfg(teacher_ckpt)
    cfg['connectors']['spare'] = dict(type='ConvBNConnector',
                                      in_channels=8, out_channels=16)
    with pytest.raises(DistillConfigError, match='connectors.spare'):
        build(cfg)


def test_bad_recorder_path_lists_candidates(teacher_ckpt):
    cfg = kd_cfg(teacher_ckpt)
    cfg['teacher_recorders']['neck']['source'] = 'neck.lateal'
    with pytest.raises(DistillConfigError) as err:
        build(cfg)
    msg = str(err.value)
    assert msg.startswith('teacher_recorders.neck.source:')
    assert "'neck.lateal'" in msg and 'neck.lateral' in msg


def fake_runner(model, iter=0, epoch=0):
    return SimpleNamespace(model=model, iter=iter, epoch=epoch)


def test_distill_stop_iter(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt, distill_stop_iter=5))
    hook = DistillStopHook()
    calls = []
    model.teacher.neck.register_forward_hook(lambda *a: calls.append(1))
    inputs, samples = make_track_batch()
    runner = fake_runner(model, iter=4)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    losses = model.loss(inputs, samples)
    assert len(calls) == 1 and losses['loss_fm'] > 0
    runner.iter = 5
    hook.before_train_iter(runner, 1)
    losses = model.loss(inputs, samples)
    assert len(calls) == 1  # teacher not run
    assert losses['loss_fm'] == 0 and losses['loss_head'] == 0
    assert losses['loss_toy'] > 0
    # the zero still reaches the connectors (DDP needs every param used)
    losses['loss_fm'].backward()
    assert model.connectors['neck_s0'].conv.weight.grad is not None


def test_distill_stop_epoch(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt, distill_stop_epoch=2))
    hook = DistillStopHook()
    inputs, samples = make_track_batch()
    runner = fake_runner(model, epoch=1)
    hook.before_train(runner)
    hook.before_train_epoch(runner)
    assert model.loss(inputs, samples)['loss_head'] > 0
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert model.loss(inputs, samples)['loss_head'] == 0


def test_stop_hook_own_stop_points_and_errors(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt))
    runner = fake_runner(model, iter=3)
    hook = DistillStopHook(stop_iter=3)
    hook.before_train(runner)  # resumed past the stop: stopped at once
    assert not model.distill_active()
    free = build(kd_cfg(teacher_ckpt))  # no stop point: nothing stops
    hook = DistillStopHook()
    hook.before_train(fake_runner(free, iter=10**6, epoch=10**3))
    assert free.distill_active()
    with pytest.raises(TypeError, match='needs a MOTDistiller'):
        DistillStopHook(stop_iter=1).before_train(fake_runner(
            torch.nn.Linear(1, 1)))
    with pytest.raises(ValueError, match='stop_iter'):
        DistillStopHook(stop_iter=-1)


def test_stop_key_without_hook_is_an_error(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt, distill_stop_iter=5))
    inputs, samples = make_track_batch()
    with pytest.raises(DistillConfigError,
                       match="model.distill_stop_iter: set, but no "
                       "DistillStopHook"):
        model.loss(inputs, samples)


def test_stop_survives_resume(teacher_ckpt):
    """The stop is in the checkpoint (runner counters and meta): a resumed
    run stays stopped."""
    model = build(kd_cfg(teacher_ckpt, distill_stop_iter=2))
    hook = DistillStopHook()
    runner = fake_runner(model, iter=2)
    hook.before_train(runner)
    ckpt = dict(meta=dict(), state_dict=model.state_dict())
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['meta']['distill_stopped'] is True
    # a fresh process: new model and hook, checkpoint loaded, then resumed
    fresh = build(kd_cfg(teacher_ckpt, distill_stop_iter=2))
    fresh.load_state_dict(ckpt['state_dict'])
    hook = DistillStopHook()
    runner = fake_runner(fresh, iter=2)
    hook.after_load_checkpoint(runner, ckpt)
    hook.before_train(runner)
    inputs, samples = make_track_batch()
    assert fresh.loss(inputs, samples)['loss_fm'] == 0


def test_batch_data_and_5d_inputs(teacher_ckpt):
    cfg = kd_cfg(teacher_ckpt, connectors=dict())
    cfg['distill_losses'] = dict(spy=dict(type='DistillTestSpyLoss'))
    cfg['loss_forward_mappings'] = dict(spy=dict(
        preds_S=dict(from_student=True, recorder='neck', data_idx=1),
        preds_T=dict(from_student=False, recorder='neck', data_idx=1),
        gt_bboxes=dict(from_data='gt_bboxes'),
        gt_ids=dict(from_data='gt_ids'),
        gt_labels=dict(from_data='gt_labels'),
        batch_input_shape=dict(from_data='batch_input_shape')))
    model = build(cfg)  # channel agnostic loss: no connector needed
    inputs, samples = make_track_batch(n=2, t=2, size=32)
    losses = model.loss(inputs, samples)
    assert set(losses) == {'loss_toy', 'loss_spy'}
    seen = model.distill_losses['spy'].last
    # (N, T) folded to N*T = 4 frames, neck level 1 at stride 4
    assert seen['preds_S'].shape == (4, 8, 8, 8)
    assert seen['preds_T'].shape == (4, 16, 8, 8)
    assert not seen['preds_T'].requires_grad
    assert seen['preds_S'].requires_grad
    assert len(seen['gt_bboxes']) == 4
    torch.testing.assert_close(seen['gt_bboxes'][2],
                               samples[1][0].gt_instances.bboxes)
    assert [ids.tolist() for ids in seen['gt_ids']] == [[0, 1], [0, 1],
                                                        [10, 11], [10, 11]]
    assert seen['batch_input_shape'] == (32, 32)
    # recorded tensors are released after the step
    assert not model.student_recorders.get_recorder('neck').data_buffer


def test_detector_wrapping_teacher(tmp_path):
    """A ByteTrack-like teacher runs detector._forward (its own _forward
    raises), and recorder paths go through 'detector.'."""
    teacher = dict(type='DistillTestToyTracker', detector=TEACHER)
    from distill_toys import ToyTracker
    path = str(tmp_path / 't.pth')
    torch.save(MODELS.build(teacher).state_dict(), path)
    assert isinstance(MODELS.build(teacher), ToyTracker)
    cfg = kd_cfg(path, teacher=teacher)
    for rec in cfg['teacher_recorders'].values():
        rec['source'] = 'detector.' + rec['source']
    model = build(cfg)
    inputs, samples = make_track_batch()
    assert model.loss(inputs, samples)['loss_fm'] > 0


def test_teacher_from_config_file(tmp_path, teacher_ckpt):
    cfg_file = tmp_path / 'teacher_cfg.py'
    cfg_file.write_text(f'model = {TEACHER!r}\n')
    model = build(kd_cfg(teacher_ckpt, teacher=str(cfg_file)))
    assert model.teacher.neck.out_channels == [16, 16]
    with pytest.raises(DistillConfigError, match='teacher_cfg_key'):
        build(kd_cfg(teacher_ckpt, teacher=str(cfg_file),
                     teacher_cfg_key='teacher'))


def test_predict_and_tensor_are_the_students(teacher_ckpt):
    model = build(kd_cfg(teacher_ckpt)).eval()
    x = torch.rand(1, 3, 16, 16)
    out = model(x, None, mode='tensor')
    ref = model.student._forward(x)
    for a, b in zip(out, ref):
        assert torch.equal(a, b)
    assert out[0].shape[1] == 5


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_train_step(teacher_ckpt):
    from mmengine.model import MMDistributedDataParallel
    if dist.is_initialized():
        pytest.skip('a process group already exists')
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ['MASTER_PORT'] = str(_free_port())
    dist.init_process_group('gloo', rank=0, world_size=1)
    try:
        model = build(kd_cfg(teacher_ckpt, distill_stop_iter=2))
        ddp = MMDistributedDataParallel(module=model)
        hook = DistillStopHook()
        runner = fake_runner(ddp)
        hook.before_train(runner)
        teacher_before = copy.deepcopy(model.teacher.state_dict())
        optim = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
        for step in range(3):  # the last step is after distill_stop_iter
            runner.iter = step
            hook.before_train_iter(runner, step)
            inputs, samples = make_track_batch(seed=step)
            log = ddp.train_step(dict(inputs=inputs, data_samples=samples),
                                 optim)
            assert {'loss', 'loss_toy', 'loss_fm', 'loss_head'} <= set(log)
        assert log['loss_fm'] == 0
        for k, v in model.teacher.state_dict().items():
            assert torch.equal(v, teacher_before[k])
    finally:
        dist.destroy_process_group()


def test_runner_style_checkpoint_with_objects(tmp_path):
    """mmengine runner checkpoints hold objects (message hub buffers) that
    torch>=2.6's weights_only loading refuses: they must still load."""
    from mmengine.logging import HistoryBuffer
    net = ToyNet(16)
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=net.state_dict(),
                    message_hub=dict(log_scalars=dict(
                        loss=HistoryBuffer([1.0], [1])))), path)
    model = build(kd_cfg(path))
    assert torch.equal(model.teacher.bbox_head.weight, net.bbox_head.weight)


def test_student_loss_name_collision(teacher_ckpt):
    """Found at build: the student's loss names come from a dry run of its
    loss, which changes nothing (weights, BN statistics, random state)."""
    cfg = kd_cfg(teacher_ckpt)
    cfg['distill_losses']['toy'] = cfg['distill_losses'].pop('head')
    cfg['loss_forward_mappings']['toy'] = cfg['loss_forward_mappings'].pop(
        'head')
    with pytest.raises(DistillConfigError,
                       match="distill_losses.toy: log key 'loss_toy'"):
        build(cfg)
    student = MODELS.build(STUDENT).train()
    before = copy.deepcopy(student.state_dict())
    rng = torch.get_rng_state(), random.getstate(), np.random.get_state()
    assert student_loss_names(student, (2, 3, 16, 16)) == ['loss_toy']
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert random.getstate() == rng[1]
    assert np.array_equal(np.random.get_state()[1], rng[2][1])
    assert all(m.training for m in student.modules())
    for k, v in student.state_dict().items():
        assert torch.equal(before[k], v), k


def test_failed_dry_run_is_an_error_naming_the_key(teacher_ckpt):
    with pytest.raises(DistillConfigError,
                       match=r'dry_run_input_shape: .*student'):
        build(kd_cfg(teacher_ckpt, dry_run_input_shape=(1, 4, 16, 16)))


def test_teacher_input_normalisation_reconciled(teacher_ckpt):
    """Student inputs are x/255; the teacher was trained on (x-m)/s."""
    mean, std = [10., 20., 30.], [2., 4., 8.]
    student = dict(STUDENT, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=[0., 0., 0.],
        std=[255., 255., 255.]))
    teacher = dict(TEACHER, data_preprocessor=dict(
        type='ImgDataPreprocessor', mean=mean, std=std))
    model = build(kd_cfg(teacher_ckpt, student=student, teacher=teacher))
    seen = []
    model.teacher.backbone.register_forward_pre_hook(
        lambda m, args: seen.append(args[0]))
    raw = torch.rand(2, 3, 16, 16) * 255
    inputs = raw / 255
    model.loss(inputs, [])
    expected = (raw - torch.tensor(mean).view(3, 1, 1)) / \
        torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(seen[-1], expected)
    # same normalisation: inputs go through untouched
    same = build(kd_cfg(teacher_ckpt, student=student,
                        teacher=dict(TEACHER,
                                     data_preprocessor=student[
                                         'data_preprocessor'])))
    assert same._teacher_inputs(inputs) is inputs
    # only the channel order differs
    flip = build(kd_cfg(teacher_ckpt,
                        student=dict(STUDENT, data_preprocessor=dict(
                            type='ImgDataPreprocessor', bgr_to_rgb=True)),
                        teacher=dict(TEACHER, data_preprocessor=dict(
                            type='ImgDataPreprocessor'))))
    assert torch.equal(flip._teacher_inputs(inputs), inputs.flip(1))


def test_deepcopy_shares_the_frozen_teacher(teacher_ckpt):
    """An EMA copy of the distiller must not duplicate the teacher."""
    model = build(kd_cfg(teacher_ckpt))
    clone = copy.deepcopy(model)
    assert clone.teacher is model.teacher
    assert clone.teacher_recorders.get_recorder('neck').module is \
        model.teacher.neck
    assert clone.student_recorders.get_recorder('neck').module is \
        clone.student.neck
    assert clone.student is not model.student
