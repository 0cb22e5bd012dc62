"""Response decoders: one registered class per detection-head family.

A response-distillation loss decodes the raw head outputs of student and
teacher identically into per-prior boxes, objectness and class logits. The
decoder is picked by config (``decoder=dict(type='yolov5', ...)``) from
mmdet's ``TASK_UTILS``, so a new tracker family adds a decoder class here
(or in its own file), not a branch in a loss or in the distiller.

Values left ``None`` in a decoder config (e.g. ``strides=None``) are filled
by :class:`~mmtrack_kd.models.distill.MOTDistiller` from the student's
detection head: each decoder lists in :attr:`BaseResponseDecoder.head_attrs`
which head attributes it reads.

Registered families:

- ``'yolov5'`` (:class:`YOLOv5ResponseDecoder`): CSTrack / YOLOv5 heads,
  preds = list of (N, A*(5+C), H_l, W_l).
- ``'yolox'`` (:class:`YOLOXResponseDecoder`): mmdet ``YOLOXHead``
  (ByteTrack), preds = (cls_scores, bbox_preds, objectnesses), each a list
  of levels.
"""
import functools
import inspect
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import TASK_UTILS
from torch import Tensor

from .grid import cell_grid
from .yolo_decode import (
    decode_yolov5,
    decode_yolov5_at,
    decode_yolox,
    yolov5_boxes_at,
    yolov5_layout,
)


class BaseResponseDecoder:
    """Decode raw head outputs into (boxes, objectness, class logits).

    Args:
        strides (Sequence[int]): Per level stride in input pixels.
    """

    #: Head attributes that fill this decoder's config values left None.
    head_attrs: Tuple[str, ...] = ('strides', )
    #: Name of the loss that owns the decoder, prefixed to runtime errors.
    owner: str = 'decoder'

    def __init__(self, strides: Optional[Sequence[int]] = None) -> None:
        if strides is None:
            raise ValueError('decoder.strides is required')
        self.strides = [int(s) for s in strides]

    @classmethod
    def fill_from_head(cls, cfg: dict, head: Any, key: str) -> dict:
        """Fill the :attr:`head_attrs` left None in ``cfg`` from ``head``.

        Args:
            cfg (dict): The decoder config (not changed).
            head (Any): The student's detection head (may be None).
            key (str): Config key of ``cfg``, named in errors.

        Returns:
            dict: A copy of ``cfg`` with those values read from ``head``;
            (stride_w, stride_h) pairs become their first element.

        Raises:
            ValueError: a value is None and ``head`` has no such attribute.
        """
        cfg = dict(cfg)
        for attr in cls.head_attrs:
            if attr not in cfg or cfg[attr] is not None:
                continue
            value = getattr(head, attr, None)
            if value is None:
                raise ValueError(
                    f'{key}.{attr}: None, and the student has no '
                    f'bbox_head.{attr} to read it from; set it in the config')
            if attr == 'strides':
                value = [s[0] if isinstance(s, (tuple, list)) else s
                         for s in value]
            cfg[attr] = value
        return cfg

    def levels(self, preds: Any) -> List[Tensor]:
        """The per-level (N, *, H_l, W_l) maps that define the priors."""
        raise NotImplementedError

    def priors_per_cell(self, level: int) -> int:
        """Number of priors per grid cell on ``level``."""
        return 1

    def __call__(self, preds: Any) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns boxes (N, M, 4) x1, y1, x2, y2 in input pixels,
        objectness logits (N, M) and class logits (N, M, C)."""
        raise NotImplementedError

    def decode_at(self, preds: Any, img: Tensor,
                  prior: Tensor) -> Tuple[Tensor, Tensor]:
        """Boxes (K, 4) and objectness logits (K,) of the priors ``prior``
        of the images ``img`` ((K,) long indices into the decoded (N, M)
        layout), as :meth:`__call__` gives them there. This generic form
        decodes every prior; a decoder that can decode a few priors alone
        overrides it, so that a loss reading K priors back-propagates
        through those only (see :attr:`decodes_selected`)."""
        boxes, obj, _ = self(preds)
        return boxes[img, prior], obj[img, prior]

    @property
    def decodes_selected(self) -> bool:
        """Whether :meth:`decode_at` decodes the selected priors alone."""
        return type(self).decode_at is not BaseResponseDecoder.decode_at

    #: whether :meth:`layout` and :meth:`boxes_at` are defined: every
    #: prior's objectness without decoding its box
    decodes_sparse = False

    def layout(self, preds: Any) -> Tuple[Tensor, Any]:
        """Objectness logits (N, M) of every prior and a state for
        :meth:`boxes_at`, without decoding any box (``decodes_sparse``
        decoders only)."""
        raise NotImplementedError

    def boxes_at(self, state: Any, img: Tensor,
                 prior: Tensor) -> Tuple[Tensor, Tensor]:
        """Boxes (K, 4) and objectness logits (K,) at the priors ``prior``
        of the images ``img``, from the state of :meth:`layout`: the values
        of :meth:`__call__` there."""
        raise NotImplementedError

    def box_priors(self, preds: Any) -> Optional[Tensor]:
        """(N, M) bool: the priors whose decoded box the head was trained
        to predict, or None when every prior's is (anchor-based heads
        regress a box at every positive prior). Read by
        ``PredictionDifferenceLoss(boxes_where='teacher_peaks')``."""
        return None

    def prior_centres(self, preds: Any) -> Tensor:
        """(M, 2) x, y centre in input pixels of each prior's grid cell, in
        the decoded order (level, prior, row, column). Cached per map sizes
        and device (the losses ask at every training step); read only."""
        levels = self.levels(preds)
        return _prior_centres(
            tuple(tuple(p.shape[-2:]) for p in levels), tuple(self.strides),
            tuple(self.priors_per_cell(lvl) for lvl in range(len(levels))),
            levels[0].device, torch.is_inference_mode_enabled())


@functools.lru_cache(maxsize=32)
def _prior_centres(shapes: Tuple[Tuple[int, int], ...],
                   strides: Tuple[int, ...], priors: Tuple[int, ...],
                   device: torch.device, inference: bool) -> Tensor:
    """:meth:`BaseResponseDecoder.prior_centres` for these map sizes,
    strides and priors per cell (``inference``: part of the cache key, an
    inference-mode tensor cannot be saved for a later backward)."""
    out = []
    for (h, w), stride, k in zip(shapes, strides, priors):
        xs, ys = cell_grid(h, w, device, torch.float32)
        c = torch.stack([(xs + 0.5) * stride, (ys + 0.5) * stride],
                        -1).view(-1, 2)
        out.append(c.repeat(k, 1) if k != 1 else c)
    return torch.cat(out, 0)


@TASK_UTILS.register_module(name=['YOLOv5ResponseDecoder', 'yolov5'])
class YOLOv5ResponseDecoder(BaseResponseDecoder):
    """YOLOv5 / CSTrack heads: list of (N, A*(5+C), H_l, W_l), decoded by
    :func:`~mmtrack_kd.models.task_modules.decode_yolov5`.

    Args:
        anchors (Sequence[Sequence[float]]): Per level [w1, h1, w2, h2, ...]
            in input pixels.
        strides (Sequence[int]): Per level stride in input pixels.
        num_classes (int): Number of classes C. Defaults to 1.
    """

    head_attrs = ('anchors', 'strides', 'num_classes')

    def __init__(self,
                 anchors: Optional[Sequence[Sequence[float]]] = None,
                 strides: Optional[Sequence[int]] = None,
                 num_classes: int = 1) -> None:
        super().__init__(strides)
        if anchors is None:
            raise ValueError("decoder.anchors is required for "
                             "type='yolov5'")
        self.anchors = [list(a) for a in anchors]
        if len(self.anchors) != len(self.strides):
            raise ValueError(
                f'decoder.anchors has {len(self.anchors)} levels but '
                f'decoder.strides {len(self.strides)}')
        self.num_classes = int(num_classes)

    def levels(self, preds: Sequence[Tensor]) -> List[Tensor]:
        return list(preds)

    def priors_per_cell(self, level: int) -> int:
        return len(self.anchors[level]) // 2

    def _check_levels(self, preds: Sequence[Tensor]) -> None:
        if len(preds) != len(self.strides):
            raise ValueError(f'{self.owner}: got {len(preds)} head levels '
                             f'but decoder.strides has {len(self.strides)}')

    def __call__(self,
                 preds: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        self._check_levels(preds)
        return decode_yolov5(preds, self.anchors, self.strides,
                             self.num_classes)

    def decode_at(self, preds: Sequence[Tensor], img: Tensor,
                  prior: Tensor) -> Tuple[Tensor, Tensor]:
        self._check_levels(preds)
        return decode_yolov5_at(preds, self.anchors, self.strides,
                                self.num_classes, img, prior)

    decodes_sparse = True

    def layout(self, preds: Sequence[Tensor]) -> Tuple[Tensor, Any]:
        self._check_levels(preds)
        return yolov5_layout(preds, self.anchors, self.strides,
                             self.num_classes)

    def boxes_at(self, state: Any, img: Tensor,
                 prior: Tensor) -> Tuple[Tensor, Tensor]:
        return yolov5_boxes_at(state, img, prior)


@TASK_UTILS.register_module(name=['YOLOXResponseDecoder', 'yolox'])
class YOLOXResponseDecoder(BaseResponseDecoder):
    """mmdet ``YOLOXHead`` (ByteTrack): (cls_scores, bbox_preds,
    objectnesses), decoded by
    :func:`~mmtrack_kd.models.task_modules.decode_yolox`.

    Args:
        strides (Sequence[int]): Per level stride in input pixels.
    """

    def levels(self, preds: Sequence[Sequence[Tensor]]) -> List[Tensor]:
        return list(preds[2])

    def __call__(self, preds: Sequence[Sequence[Tensor]]
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        if len(preds) != 3:
            raise ValueError(f'{self.owner}: yolox preds must be the tuple '
                             '(cls_scores, bbox_preds, objectnesses)')
        cls_scores, bbox_preds, objectnesses = preds
        return decode_yolox(cls_scores, bbox_preds, objectnesses,
                            self.strides)


def response_decoder_class(cfg: Any, key: str = 'decoder') -> type:
    """The registered decoder class named by ``cfg['type']``.

    Raises:
        ValueError: ``cfg`` is not a dict with a type, or the type is not a
            registered :class:`BaseResponseDecoder`.
    """
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'`{key}` must be a dict with a type (a response '
                         f"decoder, e.g. 'yolov5' or 'yolox'), got {cfg!r}")
    cls = cfg['type']
    if isinstance(cls, str):
        cls = TASK_UTILS.get(cls)
    if not (inspect.isclass(cls) and issubclass(cls, BaseResponseDecoder)):
        names = sorted(
            name for name, c in TASK_UTILS.module_dict.items()
            if inspect.isclass(c) and issubclass(c, BaseResponseDecoder))
        raise ValueError(f'{key}.type must be a registered response decoder '
                         f'({", ".join(names)}), got {cfg["type"]!r}')
    return cls


def build_response_decoder(cfg: dict,
                           owner: str = 'decoder') -> BaseResponseDecoder:
    """Build a response decoder from its config, through ``TASK_UTILS``.

    Args:
        cfg (dict): e.g. ``dict(type='yolov5', anchors=..., strides=...,
            num_classes=1)`` or ``dict(type='yolox', strides=[8, 16, 32])``.
        owner (str): Name of the loss that owns it, prefixed to errors.

    Returns:
        BaseResponseDecoder: The decoder.

    Raises:
        ValueError: ``'<owner>: decoder...'``: unknown type, unknown or
            missing keys, inconsistent levels.
    """
    try:
        cls = response_decoder_class(cfg)
        args = dict(cfg)
        args.pop('type')
        params = inspect.signature(cls.__init__).parameters
        unknown = sorted(k for k in args if k not in params or k == 'self')
        if unknown:
            raise ValueError(f'unknown decoder keys {unknown}')
        decoder = cls(**args)
    except ValueError as err:
        raise ValueError(f'{owner}: {err}') from None
    decoder.owner = owner
    return decoder
