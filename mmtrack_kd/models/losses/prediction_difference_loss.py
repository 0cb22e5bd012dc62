"""Response distillation weighted by the teacher-student prediction
difference."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..task_modules.grid import point_cells
from ..task_modules.response_decoders import (
    BaseResponseDecoder,
    build_response_decoder,
)
from ._utils import (
    box_iou_giou,
    channel_cosines,
    detach_preds,
    frame_slots,
    unit_vectors,
    zero_with_grad,
)


def bernoulli_kl_with_logits(logit_S: Tensor, logit_T: Tensor) -> Tensor:
    """KL(Bern(sigma(o_T)) || Bern(sigma(o_S))) element-wise.

    Equal to BCE(sigma(o_S), sigma(o_T)) minus the teacher's own entropy, so
    it is 0 exactly when o_S == o_T and has the gradient of the BCE.
    """
    p_T = logit_T.sigmoid()
    return (F.binary_cross_entropy_with_logits(
        logit_S, p_T, reduction='none') - F.binary_cross_entropy_with_logits(
            logit_T, p_T, reduction='none'))


@MODELS.register_module()
class PredictionDifferenceLoss(nn.Module):
    r"""Response KD on the samples where student and teacher disagree most.

    Both heads are decoded identically (``decoder``) into per-prior boxes b
    and objectness logits o. Candidates are the priors where the teacher or
    the student is confident: :math:`\max(\sigma(o_T), \sigma(o_S)) >`
    ``obj_thr``. Each candidate k gets a difference score

    .. math::
        d_k = w_{obj}|\sigma(o_T) - \sigma(o_S)| + w_{loc}(1 - IoU(b_T, b_S))
              + w_{id}\,\delta^{id}_k

    where the identity difference :math:`\delta^{id}` (only when ``emb_S``
    and ``emb_T`` are given) is :math:`1 - \cos(e_T, e_S)` of the embeddings
    at the candidate's cell on the ID map when both widths are equal. When
    they differ (a 512-d teacher, a 128-d student) the raw cosine is
    meaningless, so the relational form is used instead: half the mean
    absolute difference between the candidate's cosines to the
    ``num_ref`` candidates the teacher is most confident about, in S and in T
    (also in [0, 1], invariant to width and rotation).

    The ``topk`` highest-scoring candidates of each image are kept, with
    detached weights :math:`w_k = d_k` (normalised below), and

    .. math::
        L = w\,\frac{\sum_k w_k [KL(\sigma(o_T) \| \sigma(o_S))
              + \beta (1 - GIoU(b_S, b_T))]}{\sum_k w_k}

    With ``gt_iou_thr`` set (and ``gt_bboxes`` given), the teacher is
    checked against the ground truth before it teaches, so that its mistakes
    are not copied: a candidate is dropped when the teacher calls it an
    object (:math:`\sigma(o_T) >` ``obj_thr``) but its box overlaps no GT box
    by ``gt_iou_thr`` (a teacher false positive), or when the teacher calls
    it background while the student's box does overlap a GT box by that
    much (a teacher miss the student would be taught to copy).

    With ``boxes_where='teacher_peaks'`` the box terms (the :math:`w_{loc}`
    part of the score and the GIoU term of the loss) count only at the
    priors where the teacher means a box, as its decoder defines them
    (:meth:`box_priors`; CenterNet: the heatmap's peaks, since its size and
    offset are trained at box centres only and the box decoded at any other
    cell is untrained output). The objectness terms count everywhere.

    Changes from the first design: the objectness term is the
    Bernoulli KL, i.e. BCE(sigma(o_S), sigma(o_T)) minus the teacher's
    entropy (same gradient, but 0 when S == T); the normalisation runs over
    the whole batch so every selected sample of the batch counts by its
    score; the relational identity score when widths differ.

    Args:
        decoder (dict): a response decoder of ``TASK_UTILS`` (see
            :mod:`mmtrack_kd.models.task_modules.response_decoders`):
            ``dict(type='yolov5', anchors, strides, num_classes=1)`` or
            ``dict(type='yolox', strides)``.
        topk (int): samples kept per image. Default 100.
        beta (float): weight of the GIoU term. Default 1.0.
        obj_thr (float): confidence threshold on sigma(o) defining the
            candidates. Default 0.1.
        score_weights (Sequence[float]): (w_obj, w_loc, w_id) of the
            difference score. Default (1.0, 1.0, 1.0).
        num_ref (int): reference candidates of the relational identity
            score. Default 32.
        gt_iou_thr (float, optional): IoU with the ground truth under which
            the teacher's call is a mistake (see above); needs
            ``gt_bboxes``. None (default): no check.
        boxes_where (str): ``'all'`` (default): box terms at every
            candidate; ``'teacher_peaks'``: only at the teacher's box
            priors (see above; needs a decoder that defines them, e.g.
            ``'centernet'``).
        loss_weight (float): overall weight. Default 1.0.
    """

    #: Read by ``MOTDistiller``: ``emb_S``/``emb_T`` widths may differ (the
    #: head outputs are checked here, when decoded).
    allow_channel_mismatch = True

    def __init__(self,
                 decoder: dict,
                 topk: int = 100,
                 beta: float = 1.0,
                 obj_thr: float = 0.1,
                 score_weights: Sequence[float] = (1.0, 1.0, 1.0),
                 num_ref: int = 32,
                 gt_iou_thr: Optional[float] = None,
                 boxes_where: str = 'all',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.decoder = build_response_decoder(decoder,
                                              'PredictionDifferenceLoss')
        if topk < 1:
            raise ValueError(f'PredictionDifferenceLoss: topk must be >= 1, '
                             f'got {topk}')
        if len(score_weights) != 3 or any(w < 0 for w in score_weights):
            raise ValueError('PredictionDifferenceLoss: score_weights must be '
                             f'(w_obj, w_loc, w_id), each >= 0, got '
                             f'{score_weights!r}')
        self.topk = int(topk)
        self.beta = float(beta)
        self.obj_thr = float(obj_thr)
        self.score_weights = tuple(float(w) for w in score_weights)
        self.num_ref = int(num_ref)
        if gt_iou_thr is not None and not 0 < gt_iou_thr <= 1:
            raise ValueError('PredictionDifferenceLoss: gt_iou_thr must be '
                             f'in (0, 1], got {gt_iou_thr!r}')
        self.gt_iou_thr = None if gt_iou_thr is None else float(gt_iou_thr)
        if boxes_where not in ('all', 'teacher_peaks'):
            raise ValueError("PredictionDifferenceLoss: boxes_where must be "
                             f"'all' or 'teacher_peaks', got {boxes_where!r}")
        if boxes_where == 'teacher_peaks' and type(
                self.decoder).box_priors is BaseResponseDecoder.box_priors:
            raise ValueError(
                "PredictionDifferenceLoss: boxes_where='teacher_peaks' needs "
                'a decoder that defines box priors (e.g. centernet); '
                f'{type(self.decoder).__name__} regresses a box at every '
                'prior')
        self.boxes_where = boxes_where
        self.loss_weight = float(loss_weight)

    @staticmethod
    def _gt_overlap(boxes: Tensor, gt_bboxes: Sequence[Tensor]) -> Tensor:
        """(N, M) highest IoU of each decoded box with its image's GT boxes
        (0 for an image without GT)."""
        out = boxes.new_zeros(boxes.shape[:2])
        for i, gt in enumerate(gt_bboxes):
            gt = gt.to(boxes)
            if len(gt) == 0:
                continue
            iou, _ = box_iou_giou(boxes[i][:, None], gt[None],
                                  giou=False)  # (M, G)
            out[i] = iou.max(1).values
        return out

    def teacher_mistakes(self, box_S: Tensor, box_T: Tensor, p_T: Tensor,
                         gt_bboxes: Sequence[Tensor]) -> Tensor:
        """(N, M) bool: priors where the teacher's call contradicts the GT
        (see the class docstring)."""
        if len(gt_bboxes) != len(box_T):
            raise ValueError(f'PredictionDifferenceLoss: {len(gt_bboxes)} '
                             f'gt_bboxes for {len(box_T)} images')
        thr = self.gt_iou_thr
        fired = p_T > self.obj_thr
        false_pos = fired & (self._gt_overlap(box_T, gt_bboxes) < thr)
        missed = ~fired & (self._gt_overlap(box_S, gt_bboxes) >= thr)
        return false_pos | missed

    def _identity_difference(self, emb_S: Tensor, emb_T: Tensor,
                             cell_idx: Tensor, cand: Tensor,
                             obj_T: Tensor) -> Tensor:
        """Identity difference (N, M) of every prior (equal widths) or of
        every candidate prior, 0 elsewhere (different widths).

        Args:
            emb_S, emb_T: (N, Ds, h, w) and (N, Dt, h, w) ID maps.
            cell_idx: (M,) flat index on the ID map of each prior's cell.
            cand: (N, M) candidate mask.
            obj_T: (N, M) teacher objectness logits (to pick references).
        """
        if emb_S.shape[0] != emb_T.shape[0] or emb_S.shape[-2:] != \
                emb_T.shape[-2:]:
            raise ValueError('PredictionDifferenceLoss: emb_S '
                             f'{tuple(emb_S.shape)} and emb_T '
                             f'{tuple(emb_T.shape)} must share N, H, W')
        # raw maps: the equal-width cosines from blocked sums, the others
        # normalised after gathering the few cells they read (normalising
        # the whole maps first cost most of this loss at 1088x608)
        s = emb_S.detach().flatten(2)  # (N, Ds, hw)
        t = emb_T.detach().flatten(2)
        n = len(s)
        if s.shape[1] == t.shape[1]:
            cell_diff = 1 - channel_cosines(s, t)  # (N, hw)
            return cell_diff.gather(1, cell_idx[None].expand(n, -1))
        # each image's num_ref most confident candidates (fewer when it has
        # fewer) are its references; the score is computed at the candidate
        # priors only (the caller zeroes it everywhere else)
        out = obj_T.new_zeros(obj_T.shape)
        n_ref = cand.sum(1).clamp(max=self.num_ref)  # (N,)
        r = int(n_ref.max()) if n else 0
        if r == 0:
            return out
        score = obj_T.masked_fill(~cand, float('-inf'))
        ref_cells = cell_idx[score.topk(r, dim=1).indices]  # (N, R)
        img, prior = cand.nonzero(as_tuple=True)  # (P,) each, by image
        # each image's candidates in slots 0..P_i-1 of (N, P_max): one
        # batched product of the candidates' cells (not every cell of the
        # map) with the references, no (P, D, R) copy of the references
        slot, p_max = frame_slots(img, n)
        cand_cells = cell_idx.new_zeros(n, p_max)
        cand_cells[img, slot] = cell_idx[prior]

        def relations(x: Tensor) -> Tensor:  # (P, R) cosines
            def at(cells: Tensor) -> Tensor:  # (N, D, len) unit vectors
                return unit_vectors(x.gather(2, cells[:, None].expand(
                    -1, x.shape[1], -1)), 1)

            return torch.bmm(at(cand_cells).transpose(1, 2),
                             at(ref_cells))[img, slot]

        valid = torch.arange(r, device=s.device)[None] < n_ref[img, None]
        gap = (relations(s) - relations(t)).abs() * valid
        out[img, prior] = gap.sum(1) / n_ref[img] / 2
        return out

    def select(self,
               preds_S,
               preds_T,
               batch_input_shape: Sequence[int],
               emb_S: Optional[Tensor] = None,
               emb_T: Optional[Tensor] = None,
               gt_bboxes: Optional[Sequence[Tensor]] = None,
               box_ok: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Decode both heads and score every prior.

        ``box_ok``: the (N, M) bool mask of :meth:`box_priors`, when the
        caller has it already.

        Returns:
            tuple: decoded student boxes (N, M, 4) and objectness logits
            (N, M) (with grad), teacher ones (detached), difference scores
            (N, M) (detached, 0 outside the candidates) and the (N, M) bool
            mask of the kept top-k candidates.
        """
        box_S, obj_S, _ = self.decoder(preds_S)
        box_T, obj_T, _ = self.decoder(detach_preds(preds_T))
        if box_S.shape != box_T.shape:
            raise ValueError('PredictionDifferenceLoss: student and teacher '
                             f'decode to {tuple(box_S.shape)} and '
                             f'{tuple(box_T.shape)} priors; heads must match')
        with torch.no_grad():
            p_S, p_T = obj_S.sigmoid(), obj_T.sigmoid()
            cand = torch.max(p_S, p_T) > self.obj_thr
            if self.gt_iou_thr is not None:
                if gt_bboxes is None:
                    raise ValueError('PredictionDifferenceLoss: gt_iou_thr '
                                     'is set but no gt_bboxes were given '
                                     '(map gt_bboxes=dict(from_data='
                                     "'gt_bboxes'))")
                cand &= ~self.teacher_mistakes(box_S, box_T, p_T,
                                               gt_bboxes)
            if box_ok is None:
                box_ok = self.box_priors(preds_T)
            score = self._object_box_scores(p_S, p_T, box_S, box_T, box_ok)
            score, keep = self._finish_scores(
                score, cand, obj_T, preds_T, batch_input_shape, emb_S, emb_T)
        return box_S, obj_S, box_T, obj_T, score, keep

    def _object_box_scores(self, p_S: Tensor, p_T: Tensor, box_S: Tensor,
                           box_T: Tensor,
                           box_ok: Optional[Tensor]) -> Tensor:
        """``w_obj |p_T - p_S| + w_loc (1 - IoU(box_T, box_S))``, the box
        term where ``box_ok`` (when given) only; any matching shapes."""
        iou, _ = box_iou_giou(box_T, box_S, giou=False)
        w_obj, w_loc, _ = self.score_weights
        loc = 1 - iou
        if box_ok is not None:
            loc = loc * box_ok
        return w_obj * (p_T - p_S).abs() + w_loc * loc

    def _select_sparse(self, obj_S: Tensor, state_S, preds_T,
                       batch_input_shape: Sequence[int],
                       emb_S: Optional[Tensor], emb_T: Optional[Tensor],
                       box_ok: Optional[Tensor]) -> Tuple[Tensor, ...]:
        """:meth:`select` for a ``decodes_sparse`` decoder without
        ``gt_iou_thr``, given the student's :meth:`BaseResponseDecoder.layout`
        (``obj_S``, ``state_S``): every prior's objectness, but the boxes
        (and their IoU) of the candidate priors only, whose scores are the
        only ones kept (:meth:`select` zeroes the others). The same scores
        and kept priors.

        Returns:
            tuple: the teacher's objectness logits (N, M) and decoding state
            (for :meth:`BaseResponseDecoder.boxes_at`), the scores (N, M)
            and the kept mask (N, M).
        """
        dec = self.decoder
        with torch.no_grad():
            obj_S = obj_S.detach()
            obj_T, state_T = dec.layout(detach_preds(preds_T))
            if obj_S.shape != obj_T.shape:
                raise ValueError(
                    'PredictionDifferenceLoss: student and teacher decode to '
                    f'{tuple(obj_S.shape) + (4,)} and '
                    f'{tuple(obj_T.shape) + (4,)} priors; heads must match')
            p_S, p_T = obj_S.sigmoid(), obj_T.sigmoid()
            cand = torch.max(p_S, p_T) > self.obj_thr
            img, prior = cand.nonzero(as_tuple=True)
            box_S, _ = dec.boxes_at(state_S, img, prior)
            box_T, _ = dec.boxes_at(state_T, img, prior)
            score = torch.zeros_like(p_T)
            score[img, prior] = self._object_box_scores(
                p_S[img, prior], p_T[img, prior], box_S, box_T,
                None if box_ok is None else box_ok[img, prior])
            score, keep = self._finish_scores(
                score, cand, obj_T, preds_T, batch_input_shape, emb_S, emb_T)
        return obj_T, state_T, score, keep

    def _finish_scores(self, score: Tensor, cand: Tensor, obj_T: Tensor,
                       preds_T, batch_input_shape: Sequence[int],
                       emb_S: Optional[Tensor], emb_T: Optional[Tensor]
                       ) -> Tuple[Tensor, Tensor]:
        """Add the identity difference to the (N, M) object and box
        scores, zero them outside the candidates and keep each image's
        ``topk`` candidates: the scores and the (N, M) kept mask."""
        w_id = self.score_weights[2]
        if emb_S is not None and emb_T is not None and w_id != 0:
            score = score + w_id * self._identity_difference(
                emb_S, emb_T,
                self._id_cells(preds_T, emb_T, batch_input_shape,
                               obj_T.device), cand, obj_T)
        score = score * cand
        k = min(self.topk, score.shape[1])
        top = score.masked_fill(~cand, -1.).topk(k, dim=1).indices
        keep = torch.zeros_like(cand)
        keep.scatter_(1, top, True)
        keep &= cand
        return score, keep

    def _id_cells(self, preds_T, emb_T: Tensor,
                  batch_input_shape: Sequence[int],
                  device: torch.device) -> Tensor:
        """(M,) flat index on the ID map of each prior's cell."""
        return point_cells(self.decoder.prior_centres(preds_T).to(device),
                           emb_T.shape[-2:], batch_input_shape)

    def box_priors(self, preds_T) -> Optional[Tensor]:
        """(N, M) bool priors where the box terms count, or None for all
        (``boxes_where='all'``)."""
        if self.boxes_where == 'all':
            return None
        return self.decoder.box_priors(detach_preds(preds_T))

    def forward(self,
                preds_S,
                preds_T,
                batch_input_shape: Sequence[int],
                emb_S: Optional[Tensor] = None,
                emb_T: Optional[Tensor] = None,
                gt_bboxes: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: raw student head outputs; yolov5: list of (N, A*(5+C),
                H_l, W_l); yolox: (cls_scores, bbox_preds, objectnesses).
            preds_T: raw teacher head outputs, same layout; detached here.
            batch_input_shape: (H_in, W_in) of the padded batch.
            emb_S: optional student ID map (N, Ds, h, w).
            emb_T: optional teacher ID map (N, Dt, h, w).
            gt_bboxes: optional per-image (K_i, 4) GT boxes in input
                pixels, for ``gt_iou_thr``.

        Returns:
            Tensor: scalar loss; a graph-connected 0 when no prior is a
            candidate.
        """
        box_ok = self.box_priors(preds_T)
        # a decoder that decodes a few priors alone: the selection reads
        # the student detached, and the kept priors are decoded again with
        # their gradient, so the backward runs through them only (not
        # through the decoding of every prior of every level); one that
        # also lays out every prior's objectness alone decodes boxes at the
        # candidates only (the teacher's kept ones from that layout)
        selected = self.decoder.decodes_selected
        sparse = selected and self.decoder.decodes_sparse and \
            self.gt_iou_thr is None
        if sparse:
            # the student's layout once: read detached to select, and by
            # the kept priors' gather, with its gradient, below
            obj_S, state_S = self.decoder.layout(preds_S)
            obj_T, state_T, score, keep = self._select_sparse(
                obj_S, state_S, preds_T, batch_input_shape, emb_S, emb_T,
                box_ok)
        else:
            box_S, obj_S, box_T, obj_T, score, keep = self.select(
                detach_preds(preds_S) if selected else preds_S, preds_T,
                batch_input_shape, emb_S, emb_T, gt_bboxes, box_ok)
        weight = score[keep]
        total = weight.sum()
        # nothing kept, or every kept sample already agrees
        if not keep.any() or total <= 0:
            return zero_with_grad(*_tensors(preds_S)) if selected else \
                zero_with_grad(obj_S, box_S)
        img, prior = keep.nonzero(as_tuple=True)  # the order of [keep]
        if sparse:
            box_T, obj_T = self.decoder.boxes_at(state_T, img, prior)
            box_S, obj_S = self.decoder.boxes_at(state_S, img, prior)
        else:
            box_T, obj_T = box_T[keep], obj_T[keep]
            if selected:
                box_S, obj_S = self.decoder.decode_at(preds_S, img, prior)
            else:
                box_S, obj_S = box_S[keep], obj_S[keep]
        _, giou = box_iou_giou(box_S, box_T)
        box_term = 1 - giou
        if box_ok is not None:
            box_term = box_term * box_ok[keep]
        per = bernoulli_kl_with_logits(obj_S, obj_T) + self.beta * box_term
        # in the graph of obj_S and box_S (both read by ``per``)
        return self.loss_weight * ((weight * per).sum() / total)


def _tensors(preds) -> list:
    """The tensors of a (nested) list/tuple of tensors, in order."""
    if isinstance(preds, Tensor):
        return [preds]
    return [t for p in preds for t in _tensors(p)]

