"""mmtrack_kd.utils.tools.load_run_config: the config of a training or
testing run, read through utils.config.load_config."""
import os.path as osp

import pytest

from mmtrack_kd.utils.tools import load_run_config


def write_config(tmp_path, text=''):
    path = tmp_path / 'run_cfg.py'
    path.write_text("model = dict(type='CSTrack', id_head=dict(num_ids=3))\n"
                    + text)
    return str(path)


def test_launcher_options_and_work_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_run_config(write_config(tmp_path),
                          cfg_options={'model.id_head.num_ids': 4})
    assert cfg.launcher == 'none'
    assert cfg.model.id_head.num_ids == 4
    assert cfg.work_dir == osp.join('./work_dirs', 'run_cfg')
    # --cfg-options still wins over the launcher argument
    cfg = load_run_config(write_config(tmp_path), work_dir='out',
                          cfg_options={'launcher': 'slurm'})
    assert cfg.launcher == 'slurm' and cfg.work_dir == 'out'
    cfg = load_run_config(write_config(tmp_path, "work_dir = 'mine'\n"))
    assert cfg.work_dir == 'mine'


def test_missing_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='config file not found'):
        load_run_config(str(tmp_path / 'missing.py'))
