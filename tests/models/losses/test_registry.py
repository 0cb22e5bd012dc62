import pytest
import torch
from mmdet.registry import MODELS

import mmtrack_kd  # noqa: F401  registers everything

V5 = dict(type='yolov5', anchors=[[8, 24, 11, 34]], strides=[8])


@pytest.mark.parametrize('cfg', [
    dict(type='IDResponseConsistencyLoss', tau=0.2),
    dict(type='KeyFeatureLoss', alpha_fg=2.),
    dict(type='PredictionDifferenceLoss', decoder=V5, topk=5),
    dict(type='FitNetsLoss'),
    dict(type='CWDLoss', tau=2.),
    dict(type='PKDLoss'),
    dict(type='MGDLoss', channels=8, seed=0),
    dict(type='FGDLoss', channels=[8, 16]),
    dict(type='ObjectnessKDLoss', decoder=V5),
])
def test_builds_from_config_with_loss_weight(cfg):
    loss = MODELS.build(dict(cfg, loss_weight=0.5))
    assert isinstance(loss, torch.nn.Module)
    assert loss.loss_weight == 0.5
    assert type(loss).__doc__ and 'Args' in type(loss).__doc__
