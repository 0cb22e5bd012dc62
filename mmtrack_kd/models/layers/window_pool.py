"""Max pooling of SPP blocks by 1-D window maxima when no gradient is needed.

YOLOv5/YOLOX backbones (mmdet's ``CSPDarknet``) end in an SPP block that max
pools its map with 5x5, 9x9 and 13x13 windows (stride 1, "same" padding).
torch's CPU kernel visits every cell of the window for every output, and on
SPP's small maps it is slow: for the benchmark teacher's map of 4 frames at
576x320 (4 x 128 x 10 x 18) the three pools took 20-26 ms. A k x k
maximum is the maximum over rows of the maxima over columns; each 1-D
maximum is ``k - 1`` element-wise ``torch.maximum`` of shifted views of the
map padded with ``-inf``. Same values (exactly: a maximum is exact), 9-28x
faster on the maps of docs/results/window_pool_micro_s23.json. Used where
no gradient flows (the frozen teacher's forward, and inference); with
gradients, and in ONNX export, the module is ``nn.MaxPool2d`` itself.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair


def window_max(x: Tensor, kernel_size: int, dim: int) -> Tensor:
    """The maximum over a centred window of odd ``kernel_size`` cells along
    ``dim`` (2: rows, 3: columns) of an (N, C, H, W) map, cells outside the
    map ignored (as ``max_pool2d`` with padding ``kernel_size // 2``)."""
    r = kernel_size // 2
    n = x.shape[dim]
    pad = (r, r, 0, 0) if dim == 3 else (0, 0, r, r)
    padded = F.pad(x, pad, value=float('-inf'))
    out = padded.narrow(dim, 0, n)
    for i in range(1, kernel_size):
        out = torch.maximum(out, padded.narrow(dim, i, n))
    return out


class WindowMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(k, stride=1, padding=k // 2)`` whose forward without
    gradients on the CPU is :func:`window_max` over columns then rows
    (the same values, far fewer operations for SPP's windows). With
    gradients, on other devices and in tracing or ONNX export it is
    ``nn.MaxPool2d``'s forward, so training and exported graphs are
    unchanged.

    Args:
        kernel_size (int): odd window size.
    """

    def __init__(self, kernel_size: int) -> None:
        if not isinstance(kernel_size, int) or kernel_size < 1 \
                or kernel_size % 2 == 0:
            raise ValueError('WindowMaxPool2d: kernel_size must be a '
                             f'positive odd int, got {kernel_size!r}')
        super().__init__(kernel_size, stride=1, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        if (x.dim() != 4 or x.device.type != 'cpu'
                or not x.is_floating_point()
                or (torch.is_grad_enabled() and x.requires_grad)
                or torch.jit.is_tracing()
                or torch.onnx.is_in_onnx_export()):
            return super().forward(x)
        k = self.kernel_size
        return window_max(window_max(x, k, 3), k, 2)


def _same_window_size(module: nn.Module) -> Optional[int]:
    """The window size of a plain ``nn.MaxPool2d`` of an odd square
    window, stride 1 and "same" padding (what SPP blocks use), else
    None."""
    if type(module) is not nn.MaxPool2d or module.ceil_mode \
            or module.return_indices:
        return None
    (kh, kw), stride, pad, dilation = map(
        _pair, (module.kernel_size, module.stride, module.padding,
                module.dilation))
    if kh == kw and kh % 2 == 1 and stride == (1, 1) and \
            pad == (kh // 2, kh // 2) and dilation == (1, 1):
        return int(kh)
    return None


def use_window_max_pools(model: nn.Module) -> int:
    """Replace every same-window ``nn.MaxPool2d`` of ``model`` (stride 1,
    odd square window, "same" padding: SPP's pools) by
    :class:`WindowMaxPool2d`, in place. No weights change (pools have
    none). Returns how many were replaced."""
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            k = _same_window_size(child)
            if k is not None:
                setattr(module, name, WindowMaxPool2d(k))
                count += 1
    return count
