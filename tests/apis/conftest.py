import os
import os.path as osp

import pytest
import torch

CONFIG = 'configs/cstrack/cstrack_yolov5n_synthmot.py'
# a CSTrack narrower than YOLOv5-N; random weights with a low score
# threshold still detect (and so track) dozens of boxes per frame
TINY = {
    'model.backbone.widen_factor': 0.125,
    'model.neck.out_channels': 32,
    'model.id_head.embed_channels': 32,
    'model.id_head.saan.mid_channels': 32,
    'model.test_cfg.score_thr': 0.3,
}
NUM_IDS = 7


@pytest.fixture(scope='session')
def config_path(repo_root):
    return osp.join(repo_root, CONFIG)


@pytest.fixture(scope='session')
def tiny_opts():
    return dict(TINY)


@pytest.fixture(scope='session')
def tiny_ckpt(tmp_path_factory, config_path):
    """A randomly initialised tiny CSTrack saved as a plain checkpoint."""
    from mmtrack_kd.apis import init_tracker
    torch.manual_seed(0)
    opts = dict(TINY, **{'model.id_head.num_ids': NUM_IDS})
    model = init_tracker(config_path, None, cfg_options=opts)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


@pytest.fixture(scope='session')
def tiny_model(tiny_ckpt, config_path):
    from mmtrack_kd.apis import init_tracker
    return init_tracker(config_path, tiny_ckpt, cfg_options=TINY)


@pytest.fixture(scope='session')
def seq_frames(tiny_synthmot):
    """The img1 folder of the tiny SynthMOT test sequence."""
    root = osp.join(tiny_synthmot, 'test')
    seq = sorted(os.listdir(root))[0]
    return osp.join(root, seq, 'img1')
