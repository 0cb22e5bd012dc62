from .yolo_decode import decode_yolov5, decode_yolox, flatten_levels

__all__ = ['decode_yolov5', 'decode_yolox', 'flatten_levels']
