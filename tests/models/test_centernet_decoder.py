"""The 'centernet' response decoder: registered, equal to the FairMOT
decoding at the cells, filled from the student's head, and driving the
prediction-difference loss."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS

import mmtrack_kd  # noqa: F401  (registers everything)
from mmtrack_kd.models.distill import fill_decoders
from mmtrack_kd.models.task_modules import build_response_decoder
from mmtrack_kd.models.task_modules.centernet_decode import decode_centernet
from mmtrack_kd.models.task_modules.centernet_decoder import (
    CenterNetResponseDecoder,
)


def _preds(n=2, c=1, h=6, w=8, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=g),
            torch.rand(n, size, h, w, generator=g) * 3,
            torch.rand(n, 2, h, w, generator=g))


@pytest.mark.parametrize('ltrb', [True, False])
def test_boxes_equal_the_peak_decoding(ltrb):
    assert TASK_UTILS.get('centernet') is CenterNetResponseDecoder
    preds = _preds(c=2, size=4 if ltrb else 2)
    dec = build_response_decoder(
        dict(type='centernet', strides=[4], ltrb=ltrb), 'L')
    boxes, obj, cls = dec(preds)
    assert boxes.shape == (2, 48, 4) and obj.shape == (2, 48)
    assert cls.shape == (2, 48, 2)
    assert torch.equal(obj, cls.max(-1).values)
    # every cell is a peak of a heatmap made 1 there and -inf elsewhere
    bboxes, _, _, inds = decode_centernet(preds[0], preds[1], preds[2], 4,
                                          k=48, ltrb=ltrb, nms_kernel=1)
    got = boxes.gather(1, inds[..., None].expand(-1, -1, 4))
    assert torch.allclose(got, bboxes, atol=1e-5)
    centres = dec.prior_centres(preds)
    assert torch.allclose(centres[9], torch.tensor([6.0, 6.0]))  # cell (1,1)


def test_bad_configs_and_preds():
    with pytest.raises(ValueError, match='one level'):
        build_response_decoder(dict(type='centernet', strides=[4, 8]), 'L')
    dec = build_response_decoder(dict(type='centernet', strides=[4]), 'L')
    with pytest.raises(ValueError, match='heatmap, wh, offset'):
        dec([torch.zeros(1, 1, 2, 2)])
    with pytest.raises(ValueError, match='ltrb'):
        dec(_preds(size=2))


def test_filled_from_head_and_loss_runs():
    head = MODELS.build(dict(type='FairMOTDetHead', in_channels=8,
                             head_conv=0, ltrb=False))
    cfgs = fill_decoders(
        dict(kd_resp=dict(type='PredictionDifferenceLoss',
                          decoder=dict(type='centernet', strides=None,
                                       ltrb=None))),
        SimpleNamespace(bbox_head=head))
    assert cfgs['kd_resp']['decoder'] == dict(type='centernet', strides=[4],
                                              ltrb=False)
    loss = MODELS.build(
        dict(type='PredictionDifferenceLoss',
             decoder=dict(type='centernet', strides=[4])))
    s = [p.requires_grad_() for p in _preds(seed=1)]
    t = _preds(seed=2)
    emb_s, emb_t = torch.randn(2, 8, 6, 8), torch.randn(2, 16, 6, 8)
    value = loss(tuple(s), t, (24, 32), emb_s, emb_t)
    assert torch.isfinite(value) and value > 0
    value.backward()
    assert s[0].grad.abs().sum() > 0 and s[1].grad.abs().sum() > 0


def test_box_priors_are_the_heatmap_peaks():
    heat = torch.full((1, 2, 5, 6), -5.)
    heat[0, 0, 1, 1] = 2.  # a peak of class 0
    heat[0, 0, 1, 2] = 1.  # its neighbour: not a peak
    heat[0, 1, 3, 4] = 0.5  # a peak of class 1
    preds = (heat, torch.ones(1, 4, 5, 6), torch.zeros(1, 2, 5, 6))
    dec = build_response_decoder(dict(type='centernet', strides=[4]), 'L')
    peaks = dec.box_priors(preds).view(5, 6)
    assert peaks[1, 1] and peaks[3, 4] and not peaks[1, 2]
    # the flat plateau far from both is a peak of its own (ties); the
    # cells next to a peak are not
    assert not peaks[0, 0] and not peaks[2, 3] and peaks[0, 5]
    yolo = build_response_decoder(
        dict(type='yolov5', anchors=[[4, 8]], strides=[8]), 'L')
    assert yolo.box_priors([torch.zeros(1, 6, 2, 2)]) is None


def test_teacher_peaks_confine_the_box_terms():
    """With boxes_where='teacher_peaks' the student's box at a cell that is
    no teacher peak moves neither the loss nor the selection score; at a
    peak it does. The objectness terms count everywhere."""
    t = _preds(seed=2)
    heat = torch.full_like(t[0], -3.)
    heat[:, :, 2, 3] = 3.  # one teacher peak per image; the rest are
    heat[:, :, 2, 4] = 0.  # candidates (sigmoid > 0.1) that are no peak
    heat[:, :, 3, 3] = 0.
    t = (heat, t[1], t[2])
    peak, other = 2 * 8 + 3, 2 * 8 + 4
    base = _preds(seed=1)
    loss = MODELS.build(dict(type='PredictionDifferenceLoss',
                             decoder=dict(type='centernet', strides=[4]),
                             boxes_where='teacher_peaks'))
    plain = MODELS.build(dict(type='PredictionDifferenceLoss',
                              decoder=dict(type='centernet', strides=[4])))

    def with_wh(cell, value):
        wh = base[1].clone().flatten(2)
        wh[:, :, cell] = value
        return (base[0], wh.view_as(base[1]), base[2])

    def run(fn, s):
        *_, score, keep = fn.select(s, t, (24, 32))
        return float(fn(s, t, (24, 32))), score
    v0, s0 = run(loss, with_wh(other, 1.))
    v1, s1 = run(loss, with_wh(other, 9.))
    assert v0 == pytest.approx(v1) and torch.equal(s0, s1)
    v2, s2 = run(loss, with_wh(peak, 9.))
    assert v2 != pytest.approx(v0) and not torch.equal(s0, s2)
    # without the option the box at the other cell counts
    assert run(plain, with_wh(other, 1.))[0] != pytest.approx(
        run(plain, with_wh(other, 9.))[0])


def test_teacher_peaks_needs_a_decoder_with_peaks():
    with pytest.raises(ValueError, match='defines box priors'):
        MODELS.build(dict(type='PredictionDifferenceLoss',
                          decoder=dict(type='yolov5', anchors=[[4, 8]],
                                       strides=[8]),
                          boxes_where='teacher_peaks'))
    with pytest.raises(ValueError, match='boxes_where'):
        MODELS.build(dict(type='PredictionDifferenceLoss',
                          decoder=dict(type='centernet', strides=[4]),
                          boxes_where='peaks'))
