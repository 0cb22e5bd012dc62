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


def _decode_per_level(preds, anchors, strides, num_classes):
    """YOLOv5's decoding written level by level, anchor by anchor, as the
    published formula reads (the reference of the one-pass decoder)."""
    boxes, objs, clss = [], [], []
    for pred, anc, s in zip(preds, anchors, strides):
        n, _, h, w = pred.shape
        p = pred.view(n, len(anc) // 2, 5 + num_classes, h, w)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=pred.dtype),
                                torch.arange(w, dtype=pred.dtype),
                                indexing='ij')
        for a in range(p.shape[1]):
            t = p[:, a]
            cx = (t[:, 0].sigmoid() * 2 - 0.5 + xs) * s
            cy = (t[:, 1].sigmoid() * 2 - 0.5 + ys) * s
            bw = (t[:, 2].sigmoid() * 2)**2 * anc[2 * a]
            bh = (t[:, 3].sigmoid() * 2)**2 * anc[2 * a + 1]
            boxes.append(torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2,
                                      cy + bh / 2], -1).reshape(n, -1, 4))
            objs.append(t[:, 4].reshape(n, -1))
            clss.append(t[:, 5:].permute(0, 2, 3, 1).reshape(
                n, -1, num_classes))
    return torch.cat(boxes, 1), torch.cat(objs, 1), torch.cat(clss, 1)


def _v5_levels(seed, num_classes=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 2 * (5 + num_classes), h, w, generator=g,
                        dtype=dtype).requires_grad_()
            for h, w in ((4, 6), (2, 3))]


def test_decode_yolov5_equals_the_per_level_formula():
    preds = _v5_levels(0)
    got = decode_yolov5(preds, ANCHORS, [8, 16], 2)
    want = _decode_per_level(preds, ANCHORS, [8, 16], 2)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(1)
    cot = [torch.randn(b.shape, generator=g, dtype=b.dtype) for b in want]
    for a, b in zip(torch.autograd.grad(got, preds, cot),
                    torch.autograd.grad(want, preds, cot)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_decode_at_equals_the_full_decoding_and_its_gradient():
    """The YOLOv5 decoder decodes the selected priors alone (the same
    values, a gradient through them only); YOLOX falls back to decoding
    every prior."""
    preds = _v5_levels(2, num_classes=1)
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16]), 'L')
    assert dec.decodes_selected
    boxes, obj, _ = dec(preds)
    img = torch.tensor([0, 0, 1, 1, 1])
    prior = torch.tensor([0, 47, 3, 47, 59])  # both levels, a repeat
    b_at, o_at = dec.decode_at(preds, img, prior)
    torch.testing.assert_close(b_at, boxes[img, prior], rtol=0, atol=1e-12)
    torch.testing.assert_close(o_at, obj[img, prior], rtol=0, atol=0)
    w = torch.randn(5, 4, dtype=torch.float64)
    want = torch.autograd.grad((boxes[img, prior] * w).sum() +
                               obj[img, prior].sum(), preds)
    got = torch.autograd.grad((b_at * w).sum() + o_at.sum(), preds)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(3)
    head = tuple([torch.randn(2, c, h, h, generator=g) for h in (8, 4)]
                 for c in (1, 4, 1))
    yx = build_response_decoder(dict(type='yolox', strides=[8, 16]), 'L')
    assert not yx.decodes_selected
    boxes, obj, _ = yx(head)
    b_at, o_at = yx.decode_at(head, img, prior)
    assert torch.equal(b_at, boxes[img, prior])
    assert torch.equal(o_at, obj[img, prior])


@pytest.mark.parametrize('num_classes', [1, 2])
def test_layout_and_boxes_at_equal_the_full_decoding(num_classes):
    """The sparse path of the response loss: every prior's objectness
    from the layout, and boxes where asked, are the full decoding's (with
    several classes too, whose outputs the layout skips)."""
    preds = _v5_levels(5, num_classes=num_classes)
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16],
             num_classes=num_classes), 'L')
    assert dec.decodes_sparse
    boxes, obj, _ = dec(preds)
    obj_all, state = dec.layout(preds)
    assert torch.equal(obj_all, obj)
    img = torch.tensor([1, 0, 1, 0])
    prior = torch.tensor([59, 0, 48, 47])  # first and last of each level
    b_at, o_at = dec.boxes_at(state, img, prior)
    torch.testing.assert_close(b_at, boxes[img, prior], rtol=0, atol=1e-12)
    assert torch.equal(o_at, obj[img, prior])
    with pytest.raises(ValueError, match='channels'):
        dec.layout([p[:, 1:] for p in preds])


def test_decoding_constants_outlive_inference_mode():
    """The cached priors made under inference mode are not reused by a
    decoding that is back-propagated (an inference tensor cannot be
    saved for backward)."""
    preds = [torch.randn(1, 12, 3, 5), torch.randn(1, 12, 2, 3)]
    with torch.inference_mode():
        first = decode_yolov5(preds, ANCHORS, [8, 16])[0]
    grad_preds = [p.clone().requires_grad_() for p in preds]
    boxes = decode_yolov5(grad_preds, ANCHORS, [8, 16])[0]
    boxes.sum().backward()
    assert grad_preds[0].grad is not None
    torch.testing.assert_close(boxes.detach(), first.clone())
    # another map size: new constants, not the cached ones
    other = decode_yolov5([torch.zeros(1, 12, 2, 2)], ANCHORS[:1], [8])[0]
    centres = (other[0, :, :2] + other[0, :, 2:]) / 2
    torch.testing.assert_close(centres[:4], torch.tensor(
        [[4., 4.], [12., 4.], [4., 12.], [12., 12.]]))


def test_prior_centres_cached_per_map_size():
    dec = build_response_decoder(
        dict(type='yolov5', anchors=ANCHORS, strides=[8, 16]), 'L')
    small = [torch.zeros(1, 12, 2, 2), torch.zeros(1, 12, 1, 1)]
    large = [torch.zeros(1, 12, 4, 4), torch.zeros(1, 12, 2, 2)]
    a = dec.prior_centres(small)
    assert dec.prior_centres(small) is a
    b = dec.prior_centres(large)
    assert b.shape == (2 * 16 + 2 * 4, 2)
    for preds, c in ((small, a), (large, b)):
        boxes, _, _ = decode_yolov5([p.clone() for p in preds], ANCHORS,
                                    [8, 16])
        torch.testing.assert_close((boxes[0, :, :2] + boxes[0, :, 2:]) / 2,
                                   c)
