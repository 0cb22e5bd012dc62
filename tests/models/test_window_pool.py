"""SPP's max pools by 1-D window maxima (``models/layers/window_pool.py``):
the same values as ``nn.MaxPool2d`` without gradients, ``nn.MaxPool2d``
itself with gradients and in ONNX export, swapped into CSTrack's backbone
and a distiller's teacher."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmtrack_kd.models.layers import (
    WindowMaxPool2d,
    use_window_max_pools,
    window_max,
)


@pytest.mark.parametrize('k', [1, 3, 5, 9, 13])
@pytest.mark.parametrize('shape', [(2, 3, 10, 18), (1, 4, 1, 7), (1, 2, 6, 3)])
def test_window_max_equals_max_pool(k, shape):
    x = torch.randn(*shape)
    x[0, 0, 0, 0] = x[0, 0, -1, -1] = x.max()  # ties
    want = F.max_pool2d(x, k, 1, k // 2)
    assert torch.equal(window_max(window_max(x, k, 3), k, 2), want)
    with torch.no_grad():
        assert torch.equal(WindowMaxPool2d(k)(x), want)


def test_gradients_are_max_pools():
    pool, ref = WindowMaxPool2d(5), nn.MaxPool2d(5, 1, 2)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    (g, ) = torch.autograd.grad(pool(x).pow(2).sum(), x)
    (want, ) = torch.autograd.grad(ref(x).pow(2).sum(), x)
    assert torch.equal(g, want)


def test_export_keeps_max_pool(tmp_path):
    onnx = pytest.importorskip('onnx')
    out = tmp_path / 'pool.onnx'
    torch.onnx.export(nn.Sequential(WindowMaxPool2d(9)),
                      (torch.zeros(1, 2, 8, 8), ), str(out), dynamo=False)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops == ['MaxPool']


def test_only_same_window_pools_are_swapped():
    model = nn.Sequential(
        nn.MaxPool2d(5, 1, 2), nn.MaxPool2d(2, 2), nn.MaxPool2d(3, 1, 0),
        nn.Sequential(nn.MaxPool2d(13, 1, 6)), nn.MaxPool2d((3, 5), 1, (1, 2)))
    x = torch.randn(1, 2, 20, 20)
    with torch.no_grad():
        want = [m(x) for m in (model[0], model[3])]
    assert use_window_max_pools(model) == 2
    assert type(model[0]) is WindowMaxPool2d
    assert type(model[3][0]) is WindowMaxPool2d
    assert [type(model[i]) for i in (1, 2, 4)] == [nn.MaxPool2d] * 3
    with torch.no_grad():
        assert torch.equal(model[0](x), want[0])
        assert torch.equal(model[3](x), want[1])
    assert use_window_max_pools(model) == 0  # already swapped


def test_bad_kernel_size():
    with pytest.raises(ValueError, match='odd'):
        WindowMaxPool2d(4)


def test_cstrack_backbone_uses_window_pools():
    from mmtrack_kd.apis import init_tracker
    model = init_tracker('configs/cstrack/cstrack_yolov5n_synthmot.py',
                         cfg_options={'model.id_head.num_ids': 10})
    pools = [m for m in model.backbone.modules()
             if isinstance(m, nn.MaxPool2d)]
    assert pools and all(type(m) is WindowMaxPool2d for m in pools)
