"""Response decoders registered in TASK_UTILS: built by config, identical to
the decode functions, values left None filled from the student's head."""
import pytest
import torch
from mmdet.registry import TASK_UTILS

import mmtrack_kd.models  # noqa: F401  (registers the decoders)
from mmtrack_kd.models.distill import DistillConfigError, fill_decoders
from mmtrack_kd.models.task_modules import (
    BaseResponseDecoder,
    YOLOv5ResponseDecoder,
    YOLOXResponseDecoder,
    build_response_decoder,
    decode_yolov5,
    decode_yolox,
)

ANCHORS = [[8, 24, 11, 34], [32, 96, 45, 135]]


def test_registered_under_config_names():
    assert TASK_UTILS.get('yolov5') is YOLOv5ResponseDecoder
    assert TASK_UTILS.get('yolox') is YOLOXResponseDecoder
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16]), 'L')
    assert isinstance(dec, BaseResponseDecoder) and dec.num_classes == 1


def test_decoders_equal_the_decode_functions():
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(2, 12, 4, 6, generator=g),
             torch.randn(2, 12, 2, 3, generator=g)]
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16]), 'L')
    for a, b in zip(dec(preds), decode_yolov5(preds, ANCHORS, [8, 16], 1)):
        assert torch.equal(a, b)
    head = tuple([torch.randn(2, c, h, h, generator=g) for h in (8, 4)]
                 for c in (3, 4, 1))
    dec = build_response_decoder(dict(type='yolox', strides=[8, 16]), 'L')
    for a, b in zip(dec(head), decode_yolox(*head, [8, 16])):
        assert torch.equal(a, b)


def test_prior_centres_follow_decoded_order():
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16]), 'L')
    preds = [torch.zeros(1, 12, 4, 6), torch.zeros(1, 12, 2, 3)]
    boxes, _, _ = dec(preds)
    centres = (boxes[0, :, :2] + boxes[0, :, 2:]) / 2
    assert torch.allclose(centres, dec.prior_centres(preds))


def test_config_errors_name_owner_and_key():
    with pytest.raises(ValueError, match='L: decoder.type must be a '
                       'registered response decoder'):
        build_response_decoder(dict(type='yolov8', strides=[8]), 'L')
    with pytest.raises(ValueError, match='L: decoder.strides is required'):
        build_response_decoder(dict(type='yolox'), 'L')
    with pytest.raises(ValueError, match=r"unknown decoder keys \['foo'\]"):
        build_response_decoder(dict(type='yolox', strides=[8], foo=1), 'L')
    with pytest.raises(ValueError, match='levels'):
        build_response_decoder(
            dict(type='yolov5', strides=[8, 16], anchors=[[1, 2]]), 'L')
    dec = build_response_decoder(dict(type='yolox', strides=[8]), 'Loss')
    with pytest.raises(ValueError, match='Loss: yolox preds'):
        dec([torch.zeros(1)])


class _Head(torch.nn.Module):

    def __init__(self, **attrs):
        super().__init__()
        self.__dict__.update(attrs)


def test_fill_decoders_reads_what_each_family_declares():
    student = torch.nn.Module()
    student.bbox_head = _Head(anchors=ANCHORS, strides=[(8, 8), (16, 16)],
                              num_classes=2)
    losses = dict(
        a=dict(type='X', decoder=dict(type='yolov5', anchors=None,
                                      strides=None, num_classes=None)),
        b=dict(type='X', decoder=dict(type='yolox', strides=None)),
        c=dict(type='X'))
    out = fill_decoders(losses, student)
    assert out['a']['decoder'] == dict(type='yolov5', anchors=ANCHORS,
                                       strides=[8, 16], num_classes=2)
    assert out['b']['decoder'] == dict(type='yolox', strides=[8, 16])
    assert out['c'] == losses['c'] and losses['b']['decoder']['strides'] is \
        None  # the config is not changed
    tracker = torch.nn.Module()  # ByteTrack-like: detector.bbox_head
    tracker.detector = torch.nn.Module()
    tracker.detector.bbox_head = _Head(strides=[8, 16, 32])
    assert fill_decoders(dict(b=losses['b']), tracker)['b']['decoder'][
        'strides'] == [8, 16, 32]
    with pytest.raises(DistillConfigError,
                       match=r'distill_losses\.a\.decoder\.anchors: None'):
        fill_decoders(dict(a=losses['a']), tracker)
    with pytest.raises(DistillConfigError,
                       match=r'distill_losses\.z\.decoder\.type'):
        fill_decoders(dict(z=dict(decoder=dict(type='nope'))), tracker)
