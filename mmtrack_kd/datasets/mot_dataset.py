"""A MOTChallenge dataset that trains on frames with nobody in them.

mmdet's ``MOTChallengeDataset`` asserts that every training frame has at
least one box. Synthetic scenes (and real ones) have empty frames, and a
detector should learn from them too (pure background, finite losses).
``MOTKDDataset`` keeps them when ``filter_cfg=dict(filter_empty_gt=False)``
and checks every annotation while parsing, so that a broken json fails at
build time with the file and annotation id instead of deep in a transform.
"""
import os.path as osp
from typing import List, Optional

from mmdet.datasets import MOTChallengeDataset
from mmdet.registry import DATASETS

# Keys every annotation must carry (those mmdet's parsing and
# ``MOTChallengeMetric`` read).
REQUIRED_ANN_KEYS = ('id', 'bbox', 'area', 'category_id', 'instance_id',
                     'visibility', 'mot_conf')


class MOTAnnotationError(ValueError):
    """An annotation of a CocoVID json is malformed."""


@DATASETS.register_module()
class MOTKDDataset(MOTChallengeDataset):
    """MOTChallenge-layout CocoVID dataset for training and distillation.

    Differences from mmdet's ``MOTChallengeDataset``:

    - frames without (valid) boxes are kept in training when
      ``filter_cfg=dict(filter_empty_gt=False)``; they give empty
      ``gt_instances``;
    - every annotation is validated: a missing key, a bbox that is not four
      numbers, a negative width/height or an ``instance_id`` outside
      ``[0, num_ids)`` raise :class:`MOTAnnotationError` naming the json file
      and the annotation id;
    - :attr:`num_ids` tells the identity classifier how many identities the
      split has (the json's top-level ``num_ids``, else the largest
      ``instance_id`` + 1).

    Args:
        visibility_thr: training boxes with a lower visibility are dropped
            (-1 keeps all).
        *args, **kwargs: as for ``mmdet.datasets.BaseVideoDataset``
            (``ann_file``, ``data_root``, ``data_prefix``, ``metainfo``,
            ``filter_cfg``, ``pipeline``, ``test_mode``...).
    """

    def __init__(self, visibility_thr: float = -1, *args, **kwargs) -> None:
        self._json_num_ids: Optional[int] = None
        self._max_instance_id = -1
        self._num_ids_read = False
        super().__init__(visibility_thr, *args, **kwargs)

    @property
    def num_ids(self) -> int:
        """Number of identities (identity labels are ``0..num_ids-1``)."""
        if not self._fully_initialized:
            self.full_init()
        if self._json_num_ids is not None:
            return self._json_num_ids
        return self._max_instance_id + 1

    def load_data_list(self) -> List[dict]:
        """Load the json (see ``BaseVideoDataset.load_data_list``) and check
        the identity labels against ``num_ids``.

        Returns:
            list[dict]: one dict per video with its ``images``.
        """
        self._json_num_ids = None
        self._max_instance_id = -1
        self._num_ids_read = False
        return super().load_data_list()

    def _read_num_ids(self) -> None:
        """Read the top-level ``num_ids`` of the json being loaded (the COCO
        object exists only while ``load_data_list`` runs)."""
        self._num_ids_read = True
        coco = getattr(self, 'coco', None)
        value = coco.dataset.get('num_ids') if coco is not None else None
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MOTAnnotationError(
                f'{self.ann_file}: top-level "num_ids" must be an integer '
                f'>= 0, got {value!r}')
        self._json_num_ids = value

    def _check_annotation(self, ann: dict) -> None:
        """Raise :class:`MOTAnnotationError` if ``ann`` is malformed."""
        where = f'{self.ann_file}: annotation id={ann.get("id", "?")}'
        missing = [k for k in REQUIRED_ANN_KEYS if k not in ann]
        if missing:
            raise MOTAnnotationError(
                f'{where} (image_id={ann.get("image_id", "?")}) lacks the '
                f'key(s) {missing}')
        bbox = ann['bbox']
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in bbox):
            raise MOTAnnotationError(
                f'{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}')
        if bbox[2] < 0 or bbox[3] < 0:
            raise MOTAnnotationError(
                f'{where}: bbox {bbox} has a negative width or height')
        ins = ann['instance_id']
        if isinstance(ins, bool) or not isinstance(ins, int) or ins < 0:
            raise MOTAnnotationError(
                f'{where}: instance_id must be an integer >= 0, got {ins!r}')
        if self._json_num_ids is not None and ins >= self._json_num_ids:
            raise MOTAnnotationError(
                f'{where}: instance_id {ins} is not below the json\'s '
                f'num_ids={self._json_num_ids}')

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Turn one image and its annotations into a data info dict.

        Args:
            raw_data_info: ``raw_img_info`` (the json image) and
                ``raw_ann_info`` (its annotations).

        Returns:
            dict: the image info plus ``img_path`` and ``instances`` (each
            with ``bbox`` x1y1x2y2, ``bbox_label``, ``instance_id``,
            ``category_id``, ``mot_conf``, ``visibility``, ``ignore_flag``);
            ``instances`` may be empty.
        """
        if not getattr(self, '_num_ids_read', False):
            self._read_num_ids()
        img = raw_data_info['raw_img_info']
        info = dict(img)
        prefix = self.data_prefix.get('img_path', None)
        info['img_path'] = img['file_name'] if prefix is None else osp.join(
            prefix, img['file_name'])
        width, height = img['width'], img['height']
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            self._check_annotation(ann)
            self._max_instance_id = max(self._max_instance_id,
                                        ann['instance_id'])
            if ann.get('ignore', False):
                continue
            if not self.test_mode and ann['visibility'] < self.visibility_thr:
                continue
            if ann['category_id'] not in self.cat_ids:
                continue
            x, y, w, h = ann['bbox']
            # boxes that are degenerate or entirely outside the image
            overlap_w = min(x + w, width) - max(x, 0)
            overlap_h = min(y + h, height) - max(y, 0)
            if overlap_w <= 0 or overlap_h <= 0 or w < 1 or h < 1 \
                    or ann['area'] <= 0:
                continue
            instances.append(
                dict(
                    bbox=[x, y, x + w, y + h],
                    bbox_label=self.cat2label[ann['category_id']],
                    instance_id=ann['instance_id'],
                    category_id=ann['category_id'],
                    mot_conf=ann['mot_conf'],
                    visibility=ann['visibility'],
                    ignore_flag=1 if ann.get('iscrowd', False) else 0))
        info['instances'] = instances
        return info
