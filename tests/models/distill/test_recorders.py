"""Recorders: hooks only inside ``with``, removed after, path errors."""
import pytest
import torch
import torch.nn as nn
from distill_toys import ToyNet

from mmtrack_kd.models.distill import (
    DistillConfigError,
    ModuleInputsRecorder,
    ModuleOutputsRecorder,
    RecorderManager,
)


def test_outputs_recorded_only_inside_context_and_hooks_removed():
    model = ToyNet(8).eval()
    rec = ModuleOutputsRecorder(source='neck')
    rec.prepare_from_model(model)
    x = torch.rand(2, 3, 16, 16)
    model._forward(x)
    with pytest.raises(RuntimeError):
        rec.get_record_data()  # nothing recorded outside the block
    assert not model.neck._forward_hooks
    with rec:
        assert rec.active and len(model.neck._forward_hooks) == 1
        out = model._forward(x)
    assert not rec.active and not model.neck._forward_hooks
    p0, p1 = rec.get_record_data()
    assert p0.shape == (2, 8, 8, 8) and p1.shape == (2, 8, 4, 4)
    assert torch.equal(rec.get_record_data(data_idx=1), p1)
    assert torch.equal(model.bbox_head(p1), out[1])
    model._forward(x)  # after the block: no new record
    assert len(rec.data_buffer) == 1


def test_hooks_removed_when_forward_raises():
    model = ToyNet(8)
    rec = ModuleOutputsRecorder(source='neck')
    rec.prepare_from_model(model)
    with pytest.raises(RuntimeError):
        with rec:
            model._forward(torch.rand(1, 5, 16, 16))  # wrong channels
    assert not model.neck._forward_hooks


def test_inputs_recorder_and_record_idx():
    model = ToyNet(8).eval()
    rec = ModuleInputsRecorder(source='bbox_head')
    rec.prepare_from_model(model)
    with rec:
        model._forward(torch.rand(1, 3, 16, 16))
    assert len(rec.data_buffer) == 2  # the head runs once per level
    assert rec.get_record_data(record_idx=1, data_idx=0).shape == \
        (1, 8, 4, 4)
    with pytest.raises(IndexError, match='record_idx=2'):
        rec.get_record_data(record_idx=2)
    with rec:  # entering again clears the old records
        pass
    assert rec.data_buffer == []


def test_manager_builds_from_config_and_switches_all():
    model = ToyNet(8)
    manager = RecorderManager(
        dict(neck=dict(type='ModuleOutputsRecorder', source='neck'),
             stem=dict(type='ModuleOutputs', source='backbone.0')),
        cfg_key='student_recorders')
    manager.prepare_from_model(model)
    with manager:
        assert model.backbone[0]._forward_hooks
        model._forward(torch.rand(1, 3, 16, 16))
    assert not model.backbone[0]._forward_hooks
    assert not model.neck._forward_hooks
    assert manager.get_recorder('stem').get_record_data().shape[1] == 8
    manager.reset_data()
    assert manager.get_recorder('neck').data_buffer == []


def test_bad_path_names_key_and_candidates():
    manager = RecorderManager(
        dict(neck=dict(type='ModuleOutputsRecorder', source='neck.dwn')),
        cfg_key='student_recorders')
    with pytest.raises(DistillConfigError) as err:
        manager.prepare_from_model(ToyNet(8))
    msg = str(err.value)
    assert msg.startswith('student_recorders.neck.source:')
    assert "'neck.dwn'" in msg and 'neck.down' in msg


def test_bad_recorder_type_names_key():
    with pytest.raises(DistillConfigError, match='teacher_recorders.x'):
        RecorderManager(dict(x=dict(type='NoSuchRecorder', source='a')),
                        cfg_key='teacher_recorders')
    with pytest.raises(DistillConfigError, match='teacher_recorders.y'):
        RecorderManager(dict(y='neck'), cfg_key='teacher_recorders')


def test_empty_path_is_rejected():
    with pytest.raises(DistillConfigError):
        ModuleOutputsRecorder(source='')
    rec = ModuleOutputsRecorder(source='x')
    with pytest.raises(RuntimeError, match='prepare_from_model'):
        with rec:
            pass
    seq = nn.Sequential(nn.ReLU())
    rec = ModuleOutputsRecorder(source='0')
    rec.prepare_from_model(seq)
    with rec:
        seq(torch.ones(1))
    assert torch.equal(rec.get_record_data(), torch.ones(1))
