"""The one checkpoint reader (mmtrack_kd/utils/checkpoint.py): plain,
runner and distiller checkpoints; one error style naming key and file."""
import pytest
import torch
import torch.nn as nn

from mmtrack_kd.utils.checkpoint import (
    CheckpointError,
    load_strict,
    model_state_from_checkpoint,
    read_checkpoint,
)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))


def test_reads_nested_prefixed_and_distiller_checkpoints(tmp_path):
    model = net()
    state = model.state_dict()
    for name, ckpt in dict(
            bare=state,
            nested=dict(state_dict=state, meta=dict(epoch=1)),
            ddp=dict(state_dict={f'module.{k}': v for k, v in
                                 state.items()}),
            kd=dict(state_dict=dict(
                {f'student.{k}': v for k, v in state.items()},
                **{'connectors.c.weight': torch.zeros(1)}))).items():
        path = str(tmp_path / f'{name}.pth')
        torch.save(ckpt, path)
        got = model_state_from_checkpoint(read_checkpoint(path))
        assert list(got) == list(state), name
        fresh = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        load_strict(fresh, path)
        assert torch.equal(fresh[0].weight, model[0].weight)
    kd = model_state_from_checkpoint(
        read_checkpoint(str(tmp_path / 'kd.pth')), student=False)
    assert 'connectors.c.weight' in kd


def test_runner_checkpoint_with_objects(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(state_dict=net().state_dict(), message_hub=dict(
        log_scalars=dict(loss=HistoryBuffer([1.0], [1])))), path)
    assert 'message_hub' in read_checkpoint(path)


def test_errors_name_key_file_and_problem(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError,
                       match=f'teacher_ckpt: checkpoint file not found: '
                       f'{missing}'):
        read_checkpoint(missing, key='teacher_ckpt')
    with pytest.raises(FileNotFoundError,
                       match=f'^checkpoint file not found: {missing}'):
        read_checkpoint(missing)
    listed = str(tmp_path / 'list.pth')
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError,
                       match=f'checkpoint {listed}: holds a list'):
        read_checkpoint(listed)
    bad = str(tmp_path / 'bad.pth')
    state = net().state_dict()
    state.pop('0.bias')
    state['1.weight'] = torch.zeros(5)
    state['extra'] = torch.zeros(1)
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as err:
        load_strict(net(), bad, key='model.teacher_ckpt')
    msg = str(err.value)
    assert msg.startswith(f'model.teacher_ckpt: checkpoint {bad}: does not '
                          'match Sequential exactly')
    assert 'missing keys: 0.bias' in msg and 'unexpected keys: extra' in msg
    assert '1.weight (checkpoint (5,) vs model (4,))' in msg
