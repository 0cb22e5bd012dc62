"""How a MOT model's ``predict`` splits one frame into the network and the
post-processing, so that several detection/tracker settings can share one
network pass (the val threshold sweep, :mod:`mmtrack_kd.evaluation.sweep`).

A frame is tracked in three steps:

1. :meth:`FrameSplit.network`: the network forward of the frame (the
   expensive part; it reads no test settings);
2. :meth:`FrameSplit.detect`: the model's own post-processing (decoding,
   score threshold, NMS, top-k, embedding gathering, rescaling to the
   original image) with a given ``test_cfg``; it sets the frame's
   ``pred_instances``;
3. ``tracker.track(data_sample=frame)``.

:func:`track_frame` runs steps 2 and 3. The models of this package get their
split from a ``frame_split()`` method and use it in their own ``predict``
(so that ``predict`` and a sweep run the same code); models of other
packages get an adapter from :data:`FRAME_SPLITS`, looked up along the
class's MRO (mmdet's ``ByteTrack``: :class:`ByteTrackSplit`).
"""
from typing import Any, Dict, Optional, Tuple, Type

from mmdet.models.mot import ByteTrack
from mmengine.config import ConfigDict
from torch import Tensor


class FrameSplit:
    """One model's network / post-processing split of a frame.

    Args:
        model: the MOT model.

    Attributes:
        test_cfg_key (str): where the post-processing settings are in the
            model config (``model.<test_cfg_key>``); only the
            post-processing reads them.
    """
    test_cfg_key = 'test_cfg'

    def __init__(self, model) -> None:
        self.model = model

    def network(self, img: Tensor) -> Any:
        """The network outputs of one frame (1, 3, H, W)."""
        raise NotImplementedError

    def detect(self, outs: Any, img: Tensor, frame, test_cfg: dict,
               rescale: bool = True) -> None:
        """Post-process ``outs`` with ``test_cfg`` and set
        ``frame.pred_instances`` (boxes in original image pixels when
        ``rescale``), as the model's ``predict`` does."""
        raise NotImplementedError

    def test_cfg(self, model_cfg: dict) -> dict:
        """The post-processing settings a model built from ``model_cfg``
        uses (its defaults filled in)."""
        raise NotImplementedError

    def model_test_cfg(self) -> dict:
        """The post-processing settings the built model uses now."""
        raise NotImplementedError


def track_frame(split: FrameSplit, tracker, outs: Any, img: Tensor, frame,
                test_cfg: dict, rescale: bool = True, **kwargs) -> None:
    """Detect with ``test_cfg`` on the network outputs ``outs`` of ``img``
    and track: sets ``frame.pred_instances`` and
    ``frame.pred_track_instances``."""
    split.detect(outs, img, frame, test_cfg, rescale)
    frame.pred_track_instances = tracker.track(data_sample=frame, **kwargs)


class JDEFrameSplit(FrameSplit):
    """The split of this package's joint detection-and-embedding models
    (CSTrack, FairMOT): the network is ``model._forward``, the
    post-processing ``model.decode_frame(outs, input_shape, test_cfg)``
    followed by the rescale with the frame's ``scale_factor``, the
    settings ``model.default_test_cfg`` updated with the config's
    ``test_cfg``."""

    def network(self, img: Tensor) -> Any:
        return self.model._forward(img)

    def detect(self, outs: Any, img: Tensor, frame, test_cfg: dict,
               rescale: bool = True) -> None:
        pred = self.model.decode_frame(outs, tuple(img.shape[-2:]),
                                       test_cfg)
        if rescale and 'scale_factor' in frame.metainfo:
            sf = pred.bboxes.new_tensor(frame.metainfo['scale_factor'])
            pred.bboxes = pred.bboxes / sf.repeat(2)
        frame.pred_instances = pred

    def test_cfg(self, model_cfg: dict) -> dict:
        return self.model.merged_test_cfg(model_cfg.get('test_cfg'))

    def model_test_cfg(self) -> dict:
        return self.model.test_cfg


class ByteTrackSplit(FrameSplit):
    """mmdet's ``ByteTrack`` with a single-stage detector (YOLOX): the
    network is ``extract_feat`` + ``bbox_head`` forward, the
    post-processing ``bbox_head.predict_by_feat(cfg=test_cfg)`` as
    ``detector.predict`` runs it, the settings the detector's
    ``test_cfg``.

    Raises:
        TypeError: the detector is not single-stage (no ``bbox_head`` or
            ``extract_feat``).
    """
    test_cfg_key = 'detector.test_cfg'

    def __init__(self, model) -> None:
        super().__init__(model)
        det = model.detector
        if not (hasattr(det, 'extract_feat') and hasattr(det, 'bbox_head')
                and hasattr(det.bbox_head, 'predict_by_feat')):
            raise TypeError(
                f'ByteTrack with a {type(det).__name__} detector: no frame '
                'split (a single-stage detector with extract_feat and '
                'bbox_head.predict_by_feat is needed)')

    def network(self, img: Tensor) -> Tuple:
        det = self.model.detector
        return det.bbox_head(det.extract_feat(img))

    def detect(self, outs: Tuple, img: Tensor, frame, test_cfg: dict,
               rescale: bool = True) -> None:
        det = self.model.detector
        # mmdet's heads read the settings as attributes
        results = det.bbox_head.predict_by_feat(
            *outs, batch_img_metas=[frame.metainfo],
            cfg=ConfigDict(test_cfg), rescale=rescale)
        det.add_pred_to_datasample([frame], results)

    def test_cfg(self, model_cfg: dict) -> dict:
        # SingleStageDetector hands its test_cfg to the head as it is
        return ConfigDict(model_cfg['detector'].get('test_cfg'))

    def model_test_cfg(self) -> dict:
        return self.model.detector.test_cfg


#: Adapters of models that have no ``frame_split()`` method, by class.
FRAME_SPLITS: Dict[Type, Type[FrameSplit]] = {ByteTrack: ByteTrackSplit}


def frame_split(model) -> FrameSplit:
    """The :class:`FrameSplit` of ``model``: its own ``frame_split()``,
    else the adapter of :data:`FRAME_SPLITS` for the nearest class of its
    MRO.

    Raises:
        TypeError: the model has neither (named).
    """
    own = getattr(model, 'frame_split', None)
    if callable(own):
        return own()
    for cls in type(model).__mro__:
        if cls in FRAME_SPLITS:
            return FRAME_SPLITS[cls](model)
    raise TypeError(
        f'{type(model).__name__} has no frame split (no frame_split() '
        'method, no adapter in mmtrack_kd.models.mot.split.FRAME_SPLITS): '
        'its thresholds cannot be swept on one network pass; evaluate each '
        'setting with its own tools/test.py --cfg-options run')


def merge_test_cfg(defaults: dict, test_cfg: Optional[dict]) -> dict:
    """``defaults`` (deep-copied) updated with ``test_cfg``, key by key at
    the top level (how CSTrack and FairMOT fill their ``test_cfg``)."""
    import copy
    cfg = copy.deepcopy(dict(defaults))
    cfg.update(copy.deepcopy(dict(test_cfg or {})))
    return cfg


class JDESplitMixin:
    """``frame_split()`` and ``merged_test_cfg()`` of this package's JDE
    models; the model defines ``default_test_cfg`` (its defaults) and
    ``decode_frame(outs, input_shape, test_cfg)`` (its post-processing of
    one frame's ``_forward`` outputs)."""
    default_test_cfg: dict = {}

    @classmethod
    def merged_test_cfg(cls, test_cfg: Optional[dict] = None) -> dict:
        """``default_test_cfg`` updated with ``test_cfg`` (the config's
        ``model.test_cfg``)."""
        return merge_test_cfg(cls.default_test_cfg, test_cfg)

    def frame_split(self) -> JDEFrameSplit:
        """The network / post-processing split of a frame."""
        return JDEFrameSplit(self)
