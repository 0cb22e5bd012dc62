"""Teacher configs: num_ids='auto' comes from the teacher checkpoint, the
same way for tools/train.py and for a distiller built directly."""
import pytest
import torch
from mmengine.config import Config

from mmtrack_kd.utils.config import (
    resolve_num_ids,
    set_max_epochs,
    teacher_model_cfg,
)


def write_teacher(tmp_path, ann=None):
    cfg = tmp_path / 'teacher.py'
    text = "model = dict(type='CSTrack', id_head=dict(num_ids='auto'))\n"
    if ann is not None:
        text += ("train_dataloader = dict(dataset=dict(data_root='', "
                 f"ann_file='{ann}'))\n")
    cfg.write_text(text)
    return str(cfg)


def test_teacher_num_ids_from_checkpoint(tmp_path):
    ckpt = tmp_path / 't.pth'
    torch.save({'state_dict': {'id_head.classifier.weight':
                               torch.zeros(7, 4)}}, ckpt)
    model = teacher_model_cfg(write_teacher(tmp_path), str(ckpt))
    assert model['id_head']['num_ids'] == 7
    kd = Config(dict(model=dict(teacher=write_teacher(tmp_path),
                                teacher_ckpt=str(ckpt),
                                teacher_cfg_key='model')))
    resolve_num_ids(kd)
    assert kd.model.teacher.id_head.num_ids == 7
    assert 'teacher_cfg_key' not in kd.model


def test_teacher_without_classifier_counts_its_annotations(tmp_path):
    ann = tmp_path / 'train.json'
    ann.write_text('{"num_ids": 5, "annotations": []}')
    torch.save({'state_dict': {}}, tmp_path / 't.pth')
    model = teacher_model_cfg(write_teacher(tmp_path, ann),
                              str(tmp_path / 't.pth'))
    assert model['id_head']['num_ids'] == 5


def test_teacher_config_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match='model.teacher'):
        teacher_model_cfg(str(tmp_path / 'missing.py'), None)
    with pytest.raises(ValueError, match='teacher_cfg_key'):
        teacher_model_cfg(write_teacher(tmp_path), None, key='teacher')


def test_set_max_epochs_stretches_the_schedule():
    cfg = Config(dict(
        train_cfg=dict(max_epochs=12, val_interval=4),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=100),
            dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=12,
                 T_max=12)
        ]))
    set_max_epochs(cfg, 3)
    assert cfg.train_cfg.max_epochs == 3 and cfg.train_cfg.val_interval == 3
    assert cfg.param_scheduler[0].end == 100  # iteration-based: untouched
    cosine = cfg.param_scheduler[1]
    assert cosine.end == 3 and cosine.T_max == 3
    with pytest.raises(ValueError, match='--epochs'):
        set_max_epochs(cfg, 0)


def test_load_config_reads_copies_and_merges(tmp_path):
    from mmtrack_kd.utils.config import load_config
    path = tmp_path / 'kd.py'
    path.write_text(
        "model = dict(type='MOTDistiller', student=dict(type='CSTrack', "
        "test_cfg=dict(score_thr=0.5)), teacher='t.py')\n")
    cfg = load_config(str(path), {'model.teacher': 'u.py'})
    assert cfg.model.type == 'MOTDistiller' and cfg.model.teacher == 'u.py'
    # the deployable student; options address it as model.*
    stu = load_config(cfg, {'model.test_cfg.score_thr': 0.3}, student=True)
    assert stu.model.type == 'CSTrack'
    assert stu.model.test_cfg.score_thr == 0.3
    assert cfg.model.type == 'MOTDistiller'  # a given Config is not changed
    assert cfg.model.student.test_cfg.score_thr == 0.5
    plain = Config(dict(model=dict(type='CSTrack')))
    assert load_config(plain, student=True).model.type == 'CSTrack'


def test_load_config_missing_file_names_the_key(tmp_path):
    from mmtrack_kd.utils.config import load_config
    missing = str(tmp_path / 'missing.py')
    with pytest.raises(FileNotFoundError,
                       match=r'^config file not found: .*missing\.py'):
        load_config(missing)
    with pytest.raises(FileNotFoundError,
                       match=r'^model\.teacher: config file not found'):
        load_config(missing, key='model.teacher')


def test_load_config_reads_package_paths():
    from mmtrack_kd.utils.config import load_config
    cfg = load_config('mmtrack_kd::cstrack/cstrack_yolov5s_synthmot.py')
    assert cfg.model.type == 'CSTrack'
    with pytest.raises(FileNotFoundError, match=r'^model\.teacher: config '
                       r'file not found: mmtrack_kd::cstrack/nope\.py'):
        load_config('mmtrack_kd::cstrack/nope.py', key='model.teacher')
