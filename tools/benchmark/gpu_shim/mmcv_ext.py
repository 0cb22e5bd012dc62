"""A stand-in for mmcv's compiled extension module ``mmcv._ext``.

``tools/benchmark/gpu_fps.sh`` installs mmcv 2.1.0 built without its ops
(``MMCV_WITH_OPS=0``, a pure-Python wheel) on a machine where mmcv's CUDA
ops cannot be built in time, and copies this file there as
``mmcv/_ext.py``. mmcv's ``ext_loader.load_ext`` only checks
``hasattr(ext, name)`` for every op a module declares, so importing
``mmcv.ops`` (and through it mmdet's models) works; calling an op is what
matters:

- ``nms`` is implemented with ``torchvision.ops.nms`` (a pure-torch greedy
  NMS when torchvision is missing), with mmcv's ``offset`` convention and
  boxes/scores cast to float32 (fp16 inputs);
- every other op raises ``NotImplementedError`` naming it.

CSTrack's post-processing needs ``nms`` alone (``mmcv.ops.batched_nms``).
"""
import torch

try:
    from torchvision.ops import nms as _tv_nms
except ImportError:  # pragma: no cover - depends on the machine
    _tv_nms = None

#: which implementation ``nms`` uses
NMS_BACKEND = 'torchvision.ops.nms' if _tv_nms is not None else 'torch'


def _torch_nms(boxes: torch.Tensor, scores: torch.Tensor,
               iou_threshold: float) -> torch.Tensor:
    """Greedy NMS in plain torch (indices kept, by decreasing score)."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    ix1 = torch.maximum(x1[:, None], x1[None])
    iy1 = torch.maximum(y1[:, None], y1[None])
    ix2 = torch.minimum(x2[:, None], x2[None])
    iy2 = torch.minimum(y2[:, None], y2[None])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    iou = inter / (areas[:, None] + areas[None] - inter).clamp(min=1e-12)
    suppressed = torch.zeros(len(order), dtype=torch.bool,
                             device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def nms(bboxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        offset: int = 0) -> torch.Tensor:
    """mmcv's ``ext_module.nms``: indices of the kept boxes, by decreasing
    score. ``offset`` 1 counts box sizes as ``x2 - x1 + 1`` (mmcv's legacy
    convention)."""
    boxes = bboxes.float()
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + offset], dim=1)
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if _tv_nms is not None:
        return _tv_nms(boxes, scores.float(), float(iou_threshold))
    return _torch_nms(boxes, scores.float(), float(iou_threshold))


def __getattr__(name: str):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not available: mmcv was installed without '
            'its compiled ops, and this stand-in (tools/benchmark/gpu_shim/'
            'mmcv_ext.py) implements only nms')

    missing.__name__ = name
    return missing
