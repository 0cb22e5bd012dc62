from .centernet_decoder import CenterNetResponseDecoder
from .response_decoders import (
                                BaseResponseDecoder,
                                YOLOv5ResponseDecoder,
                                YOLOXResponseDecoder,
                                build_response_decoder,
                                response_decoder_class,
)
from .yolo_decode import decode_yolov5, decode_yolov5_at, decode_yolox

__all__ = [
    'decode_yolov5', 'decode_yolov5_at', 'decode_yolox', 'BaseResponseDecoder',
    'YOLOv5ResponseDecoder', 'YOLOXResponseDecoder', 'build_response_decoder',
    'response_decoder_class', 'CenterNetResponseDecoder'
]
