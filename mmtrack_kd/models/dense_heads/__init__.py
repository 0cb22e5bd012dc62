from .cstrack_id_head import CSTrackIDHead, gather_embeddings
from .yolov5_head import PEDESTRIAN_ANCHORS_1088x608, YOLOv5Head, bbox_ciou

__all__ = [
    'CSTrackIDHead', 'gather_embeddings', 'YOLOv5Head', 'bbox_ciou',
    'PEDESTRIAN_ANCHORS_1088x608'
]
