"""Middle-layer distillation by key-feature learning."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import (
    as_level_list,
    box_cell_axes,
    check_same_shape,
    frame_index,
    frame_slots,
    unit_vectors,
    zero_with_grad,
)


def spatial_channel_attention(feat: Tensor,
                              temperature: float) -> Tuple[Tensor, Tensor]:
    """Spatial and channel attention of a feature map (FGD-style).

    Args:
        feat: (N, C, H, W).
        temperature: softmax temperature.

    Returns:
        tuple: spatial (N, H, W) = H*W * softmax_HW(mean_C |F| / T) (mean 1)
        and channel (N, C) = C * softmax_C(mean_HW |F| / T) (mean 1).
    """
    n, c, h, w = feat.shape
    a = feat.abs()
    spatial = h * w * F.softmax(
        a.mean(1).reshape(n, -1) / temperature, dim=1).view(n, h, w)
    channel = c * F.softmax(a.mean((2, 3)) / temperature, dim=1)
    return spatial, channel


def _cell_sums(x: Tensor, w: Tensor) -> Tensor:
    """(N, C) sums over the cells of (N, C, P) ``x`` weighted by (N, P)
    ``w``: ``(x * w[:, None]).sum(2)`` as one batched product. The product
    is (1, P) by (P, C) a frame: as (C, P) by (P, 1) (the weights as a
    column) it took 10x longer on the CPU (270 against 20 us for
    (4, 64, 1232))."""
    return torch.bmm(w[:, None, :], x.transpose(1, 2))[:, 0]


#: added to the std by :func:`_standardize`
STD_EPS = 1e-6


def _centred(flat: Tensor) -> Tuple[Tensor, Tensor, float]:
    """(N, C, P) ``flat`` centred over P, the norm (N, C, 1) of the centred
    map and the factor 1 / sqrt(P - 1) that makes that norm the unbiased
    std (NaN for one cell: no spread, as ``Tensor.std`` gives)."""
    centred = flat - flat.mean(2, keepdim=True)
    norm = torch.linalg.vector_norm(centred, dim=2, keepdim=True)
    n = flat.shape[2]
    return centred, norm, 1 / math.sqrt(n - 1) if n > 1 else math.nan


def _standardize(feat: Tensor, eps: float = STD_EPS,
                 sign: float = 1.) -> Tensor:
    """Zero mean, unit std over H, W of every (frame, channel) (times
    ``sign``: -1 gives the negated map at no extra cost).

    The std (unbiased, as ``Tensor.std``) is the norm of the centred map
    over sqrt(H*W - 1): ``Tensor.std`` over two dimensions is a slow
    reduction on the CPU (about 10x this; most of the loss's time).
    """
    centred, norm, scale = _centred(feat.flatten(2))
    # a product with the (N, C, 1) reciprocal: a divide of the whole map
    # (and the two of its backward) costs several times a product on CPU
    inv = (norm * scale + eps).reciprocal()
    if sign != 1:  # (N, C, 1): negated before the product
        inv = -inv
    return (centred * inv).view_as(feat)


class StandardisedWeightedError(torch.autograd.Function):
    r""":math:`\sum_l \sum_{n,c} a^l_{nc} \sum_p w^l_{np}
    (\hat S^l_{ncp} - \hat T^l_{ncp})^2` over the levels l, with
    :math:`\hat S = (S - \bar S) / (\sigma(S) + \epsilon)` the
    student's map standardised as :func:`_standardize` does it, and a
    backward written out.

    The same value and gradient as those lines under autograd (a test
    compares them). Autograd's backward of the standardisation, the
    difference, its square and the weighted sum makes about a dozen passes
    over each (N, C, H*W) map and a node for each op; this one makes
    five: the error times its weights, their mean and their dot product
    with the centred map per channel, and two fused updates. With
    :math:`g = 2 a w (\hat S - \hat T)` and :math:`r = 1 / (\sigma +
    \epsilon)`, :math:`\sigma = \|S - \bar S\| / \sqrt{P - 1}`:

    .. math::
        \frac{\partial L}{\partial S} = r (g - \bar g)
            - \frac{r^2 \langle g, S - \bar S\rangle}{\sqrt{P - 1}
              \,\|S - \bar S\|} (S - \bar S)

    (the centring's own backward, a mean removed, changes nothing: both
    terms have zero mean over the cells).
    """

    @staticmethod
    def forward(ctx, targets: list, eps: float, *maps: Tensor) -> Tensor:
        """``targets``: per level ``(-T_hat, a, w)``: the standardised
        teacher map negated (N, C, P), the channel weights (N, C) and the
        cell weights (N, P) (no gradient); ``maps``: the student's
        (N, C, H, W) per level."""
        total = maps[0].new_zeros(())
        saved, ctx.scale = [], []
        for (neg_t_hat, a, w), y in zip(targets, maps):
            centred, norm, scale = _centred(y.flatten(2))
            r = (norm * scale + eps).reciprocal()  # (N, C, 1)
            diff = torch.addcmul(neg_t_hat, centred, r)  # S_hat - T_hat
            per_ch = _cell_sums(diff * diff, w)
            total = total + (per_ch * a).sum()
            saved += [centred, norm, r, diff, a, w]
            ctx.scale.append(scale)
        ctx.shapes = [y.shape for y in maps]
        ctx.save_for_backward(*saved)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        saved = ctx.saved_tensors
        grads = []
        for i, shape in enumerate(ctx.shapes):
            if not ctx.needs_input_grad[2 + i]:
                grads.append(None)
                continue
            centred, norm, r, diff, a, w = saved[6 * i:6 * i + 6]
            # g = 2 a w (S_hat - T_hat), times the incoming gradient
            g = diff * w[:, None, :]
            g.mul_((2 * grad) * a[..., None])
            g_mean = g.mean(2, keepdim=True)
            dot = torch.linalg.vecdot(g, centred, dim=2)[..., None]
            # r^2 <g, centred> scale / |centred| (0 for a flat channel,
            # whose centred map is 0 anyway)
            coef = r * r * dot * ctx.scale[i] / norm.clamp_min(
                torch.finfo(norm.dtype).tiny)
            # (g - g_mean) r: an addcmul onto the broadcast (N, C, 1)
            # -g_mean r took 2.5x these two passes
            out = torch.sub(g, g_mean).mul_(r)
            out.addcmul_(centred, coef, value=-1)
            grads.append(out.view(shape))
        return (None, None, *grads)


@MODELS.register_module()
class KeyFeatureLoss(nn.Module):
    r"""Key-feature learning on neck maps under fg/bg and scale imbalance.

    With teacher spatial attention :math:`A^T_s(p)` and channel attention
    :math:`A^T_c(c)` (both mean 1, see :func:`spatial_channel_attention`),
    every GT box b spreads a total weight of exactly 1 over the cells it
    covers, in proportion to the teacher's attention there:

    .. math::
        w_b(p) = \frac{A^T_s(p)\,[p \in b]}{\sum_{q \in b} A^T_s(q)},\qquad
        W_{fg}(p) = \sum_b w_b(p)

    so a 2-cell target counts as much as a 200-cell one (the 1/area mask of
    the design, with the teacher's attention deciding *where* inside a box
    the key features are). Background cells (covered by no box) are weighted
    by :math:`W_{bg}(p) = A^T_s(p)`. With
    :math:`D(p) = \frac{1}{C}\sum_c A^T_c(c)(F_S(c,p) - F_T(c,p))^2`:

    .. math::
        L_{fg} = \frac{\sum_{n,p} W_{fg} D}{\sum_{n,p} W_{fg}},\quad
        L_{bg} = \frac{\sum_{n,p} W_{bg} D}{\sum_{n,p} W_{bg}},\quad
        L_{at} = \operatorname{mean}|A^S_s - A^T_s|
                 + \operatorname{mean}|A^S_c - A^T_c|

    .. math::
        L = w\,(\alpha_{fg} L_{fg} + \beta_{bg} L_{bg} + \gamma_{at} L_{at})

    Each of fg and bg is a weighted *mean* over its own cells, so neither the
    many background cells nor the many cells of large targets can drown a
    small target: every box of the batch contributes the same total weight
    to :math:`L_{fg}`. Refinements of the first design: attention
    normalised inside each box instead of a plain 1/area mask (same total per
    box, but concentrated on the teacher's key cells); sums over overlapping
    boxes (so each keeps its full weight); the batch-level normalisation.

    What the shipped fragment (``configs/_base_/distill/key_feature.py``)
    sets, and why (val search in ``docs/results/kd_method_val.md``):

    * ``normalize=True``: a 1x1 connector from a narrow student cannot
      reach the teacher's raw map, so the raw error never goes to zero and
      keeps pulling the shared layers; standardised maps ask for the
      teacher's pattern only. The attentions stay those of the raw maps on
      purpose: *where* the teacher's activations are strong is what selects
      the key cells and channels, and standardising would flatten it.
    * ``gamma_at=0``: the student's attention is read after the connector,
      whose BatchNorm scale alone can match the teacher's, so the term
      teaches the connector, not the student.
    * ``beta_bg=0``: foreground cells only.

    On the SynthMOT benchmark the three losses with these settings scored
    1.0 test IDF1 below the response loss alone (first design: 4.4 below);
    neither difference is significant, and no gain is shown
    (docs/benchmark.md).

    Args:
        temperature (float): attention softmax temperature. Default 0.5.
        alpha_fg (float): weight of the foreground term. Default 1.0.
        beta_bg (float): weight of the background term. Default 0.5.
        gamma_at (float): weight of the attention-transfer term. Default 0.1.
        normalize (bool): compare per-channel standardised maps (zero mean,
            unit std over H, W of each frame and channel, as PKD does)
            instead of raw ones in :math:`D`, so the student learns the
            teacher's pattern, not its magnitudes. The attentions are still
            those of the raw maps. Default False.
        relation (bool): compare how each foreground cell relates to every
            cell of its frame instead of the maps themselves (see below).
            The student's map needs no connector: only the frame count and
            H, W must match the teacher's. Needs ``beta_bg=0`` and
            ``gamma_at=0``. Default False.
        loss_weight (float): overall weight. Default 1.0.

    With ``relation=True``, :math:`D(p)` of a foreground cell is the error
    between the student's and the teacher's relations of that cell to the
    frame, the cosine similarity of its feature vector with each cell's
    (standardised first when ``normalize``):

    .. math::
        R(p, q) = \frac{F(:, p) \cdot F(:, q)}{\|F(:, p)\|\,\|F(:, q)\|},
        \qquad D(p) = \frac{1}{HW}\sum_q (R_S(p, q) - R_T(p, q))^2

    and :math:`L_{fg}` weighs it as above. A narrow student cannot carry
    the teacher's channels, and a connector that maps them can absorb the
    error (the student's map is then free to stay as it is); which cells
    look alike to the teacher - the parts of one target, a target against
    its neighbours and the background - is a structure any width can
    carry. Only foreground rows are computed (a K x HW matrix for the K
    covered cells of a frame), so the cost stays low at 1088x608. On the
    SynthMOT benchmark at 8 epochs it scored as the shipped design on val
    (61.8 IDF1 inside the three losses, seeds 5-6), below leaving the loss
    out (62.6); it is an option (fragment ``kd_key_feature_relation``).
    """

    def __init__(self,
                 temperature: float = 0.5,
                 alpha_fg: float = 1.0,
                 beta_bg: float = 0.5,
                 gamma_at: float = 0.1,
                 normalize: bool = False,
                 relation: bool = False,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError('KeyFeatureLoss: temperature must be > 0, got '
                             f'{temperature}')
        self.temperature = float(temperature)
        self.alpha_fg = float(alpha_fg)
        self.beta_bg = float(beta_bg)
        self.gamma_at = float(gamma_at)
        self.normalize = bool(normalize)
        self.relation = bool(relation)
        #: read by ``MOTDistiller``: relations need no channel match
        self.allow_channel_mismatch = self.relation
        if self.relation and (self.beta_bg != 0 or self.gamma_at != 0):
            raise ValueError(
                'KeyFeatureLoss: relation=True compares foreground cells '
                'only; set beta_bg=0 and gamma_at=0 (got beta_bg='
                f'{beta_bg}, gamma_at={gamma_at})')
        self.loss_weight = float(loss_weight)

    @staticmethod
    def box_targets(gt_bboxes: Sequence[Tensor],
                    device: torch.device) -> Tuple[Tensor, Tensor, Tensor,
                                                    int]:
        """The boxes of every frame in one tensor (K, 4), the frame (K,)
        and the slot (K,) of each within its frame, and K_max: what
        :meth:`box_weights` needs besides the map, the same on every
        level (computed once a forward)."""
        boxes, frame = frame_index(gt_bboxes, device)
        slot, k_max = frame_slots(frame, len(gt_bboxes))
        return boxes, frame, slot, k_max

    @staticmethod
    def box_weights(spatial_T: Tensor,
                    gt_bboxes: Sequence[Tensor],
                    batch_input_shape: Sequence[int],
                    background: bool = True,
                    targets: Optional[Tuple[Tensor, Tensor, Tensor,
                                            int]] = None
                    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Foreground and background weights of one level.

        Args:
            spatial_T: (N, H, W) teacher spatial attention.
            gt_bboxes: per frame (K_i, 4) in input pixels.
            batch_input_shape: (H_in, W_in).
            background: also compute W_bg (None without it).
            targets: :meth:`box_targets` of ``gt_bboxes``, when the caller
                has them (one computation for every level).

        Returns:
            tuple: W_fg (N, H, W) where each box sums to 1, and W_bg
            (N, H, W), zero on every cell covered by a box.
        """
        n, h, w = spatial_T.shape
        if targets is None:
            targets = KeyFeatureLoss.box_targets(gt_bboxes, spatial_T.device)
        boxes, frame, slot, k_max = targets
        if not len(boxes):
            w_bg = spatial_T.clone() if background else None
            return torch.zeros_like(spatial_T), w_bg
        # a box's mask is the outer product of its rows and its columns,
        # so each frame's boxes sit in slots 0..K_i-1 of (N, K_max, H) and
        # (N, K_max, W) and every sum over the box cells is a batched
        # product: no (K, H, W) mask is made (K x H x W grows fast at
        # 1088x608 in a crowd)
        rows, cols = box_cell_axes(boxes, (h, w), batch_input_shape)
        y = spatial_T.new_zeros(n, k_max, h)
        y[frame, slot] = rows.to(spatial_T.dtype)
        x = spatial_T.new_zeros(n, k_max, w)
        x[frame, slot] = cols.to(spatial_T.dtype)
        # each box's attention total, sum over its cells of A_s: (N, K_max)
        total = (torch.bmm(y, spatial_T) * x).sum(2)
        # W_fg(p) = A_s(p) sum_b [p in b] / total_b (empty slots add 0)
        y_norm = y * total.clamp(min=1e-12).reciprocal()[..., None]
        w_fg = spatial_T * torch.bmm(y_norm.transpose(1, 2), x)
        if not background:
            return w_fg, None
        covered = torch.bmm(y.transpose(1, 2), x)
        w_bg = spatial_T.masked_fill(covered > 0, 0.)
        return w_fg, w_bg

    def _relation_level(self, preds_S: Tensor, preds_T: Tensor,
                        gt_bboxes: Sequence[Tensor],
                        batch_input_shape: Sequence[int],
                        targets: tuple) -> Tensor:
        """:math:`L_{fg}` of one level on the relations of the foreground
        cells (``relation=True``)."""
        if (preds_S.dim() != 4 or preds_T.dim() != 4
                or preds_S.shape[0] != preds_T.shape[0]
                or preds_S.shape[2:] != preds_T.shape[2:]):
            raise ValueError(
                f'KeyFeatureLoss: student map {tuple(preds_S.shape)} and '
                f'teacher map {tuple(preds_T.shape)} differ in frames or '
                'H, W (relation=True needs only those to match)')
        preds_T = preds_T.detach()
        sp_T, _ = spatial_channel_attention(preds_T, self.temperature)
        w_fg, _ = self.box_weights(sp_T, gt_bboxes, batch_input_shape,
                                   background=False, targets=targets)
        map_S, map_T = preds_S, preds_T
        if self.normalize:
            map_S, map_T = _standardize(preds_S), _standardize(preds_T)
        # unit feature vectors of every cell: (N, C, H*W)
        vec_S = unit_vectors(map_S.flatten(2), dim=1)
        vec_T = unit_vectors(map_T.flatten(2), dim=1)
        w_fg = w_fg.flatten(1)
        total = w_fg.sum()
        if not total > 0:
            return zero_with_grad(preds_S)
        loss = preds_S.new_zeros(())
        for n in range(w_fg.shape[0]):  # K x HW rows of the covered cells
            cells = torch.nonzero(w_fg[n] > 0).squeeze(1)
            if not len(cells):
                continue
            rel_S = vec_S[n, :, cells].t() @ vec_S[n]
            rel_T = vec_T[n, :, cells].t() @ vec_T[n]
            err = (rel_S - rel_T).pow(2).mean(1)
            loss = loss + (w_fg[n, cells] * err).sum()
        return self.alpha_fg * loss / total

    def _teacher_side(self, preds_S: Tensor, preds_T: Tensor,
                      gt_bboxes: Sequence[Tensor],
                      batch_input_shape: Sequence[int],
                      targets: tuple) -> Tuple[Tensor, ...]:
        """A level's shapes checked, then the teacher's map detached, its
        spatial and channel attentions and the fg and bg cell weights
        (bg None when ``beta_bg`` is 0: a zero weight skips its term, as
        0 times a finite term adds nothing to the value or the
        gradient)."""
        check_same_shape(preds_S, preds_T, 'KeyFeatureLoss')
        preds_T = preds_T.detach()
        sp_T, ch_T = spatial_channel_attention(preds_T, self.temperature)
        w_fg, w_bg = self.box_weights(sp_T, gt_bboxes, batch_input_shape,
                                      background=self.beta_bg != 0,
                                      targets=targets)
        return preds_T, sp_T, ch_T, w_fg, w_bg

    def _attention_term(self, preds_S: Tensor, sp_T: Tensor,
                        ch_T: Tensor) -> Tensor:
        """``gamma_at`` L_at of one level: the student's attentions
        against the teacher's."""
        sp_S, ch_S = spatial_channel_attention(preds_S, self.temperature)
        return self.gamma_at * ((sp_S - sp_T).abs().mean() +
                                (ch_S - ch_T).abs().mean())

    def _single_level(self, preds_S: Tensor, preds_T: Tensor,
                      gt_bboxes: Sequence[Tensor],
                      batch_input_shape: Sequence[int],
                      targets: tuple) -> Tensor:
        """The loss of one level; ``targets``: :meth:`box_targets`."""
        if self.relation:
            return self._relation_level(preds_S, preds_T, gt_bboxes,
                                        batch_input_shape, targets)
        preds_T, sp_T, ch_T, w_fg, w_bg = self._teacher_side(
            preds_S, preds_T, gt_bboxes, batch_input_shape, targets)
        map_S, map_T = preds_S, preds_T
        if self.normalize:
            map_S, map_T = _standardize(preds_S), _standardize(preds_T)
        # sum_p W(p) D(p) with D(p) the channel-attention-weighted squared
        # error: the squared error contracted with the cell weights first
        # (a batched product, (N, C)), then with the channel attention, so
        # no (N, C, H, W) product with the attention or (N, H, W) mean is
        # made, nor their backward
        sq = (map_S - map_T).pow(2).flatten(2)  # (N, C, HW)
        c = sq.shape[1]

        def weighted(cell_w: Tensor) -> Tensor:
            per_ch = _cell_sums(sq, cell_w.flatten(1))
            return (per_ch * ch_T).sum() / c

        terms = []
        for cell_w, coef in ((w_fg, self.alpha_fg), (w_bg, self.beta_bg)):
            if cell_w is None:
                continue
            total = cell_w.sum()
            if total > 0:
                terms.append(coef * weighted(cell_w) / total)
        # a zero in the student's graph only when no term is: adding it to
        # a term changes neither value nor gradient, and costs a pass over
        # the map each way
        loss = sum(terms[1:], terms[0]) if terms else zero_with_grad(preds_S)
        if self.gamma_at == 0:
            return loss
        return loss + self._attention_term(preds_S, sp_T, ch_T)

    def _standardised_levels(self, levels_S: List[Tensor],
                             levels_T: List[Tensor],
                             gt_bboxes: Sequence[Tensor],
                             batch_input_shape: Sequence[int],
                             targets: tuple) -> Tensor:
        """The sum over levels of :meth:`_single_level` with
        ``normalize=True``: the teacher's side (attentions, cell weights,
        standardised maps) level by level, the student's error of every
        level in one :class:`StandardisedWeightedError` (the fg and bg
        terms of a level are one sum over its cells, with the cell weights
        ``alpha_fg W_fg / sum W_fg + beta_bg W_bg / sum W_bg``)."""
        fused, maps, extra = [], [], []
        for preds_S, preds_T in zip(levels_S, levels_T):
            preds_T, sp_T, ch_T, w_fg, w_bg = self._teacher_side(
                preds_S, preds_T, gt_bboxes, batch_input_shape, targets)
            cell_w = None
            for w, coef in ((w_fg, self.alpha_fg), (w_bg, self.beta_bg)):
                if w is None or coef == 0:  # a zero term adds nothing
                    continue
                total = w.sum()
                if total > 0:
                    term = w.flatten(1) * (coef / total)
                    cell_w = term if cell_w is None else cell_w + term
            if cell_w is not None:
                neg_t_hat = _standardize(preds_T, sign=-1.).flatten(2)
                fused.append((neg_t_hat, ch_T / preds_T.shape[1], cell_w))
                maps.append(preds_S)
            if self.gamma_at != 0:
                extra.append(self._attention_term(preds_S, sp_T, ch_T))
        if maps:
            extra.insert(0, StandardisedWeightedError.apply(
                fused, STD_EPS, *maps))
        if not extra:
            return zero_with_grad(*levels_S)
        return sum(extra[1:], extra[0])

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]],
                gt_bboxes: Sequence[Tensor],
                batch_input_shape: Sequence[int]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: student map (N, C, H, W) (after a connector) or a list
                of per-level maps; the loss is averaged over levels.
            preds_T: teacher map(s) of the same shapes; detached here.
            gt_bboxes: per frame (K_i, 4) x1, y1, x2, y2 in input pixels.
            batch_input_shape: (H_in, W_in) of the padded batch.

        Returns:
            Tensor: scalar loss.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'KeyFeatureLoss')
        if any(len(gt_bboxes) != s.shape[0] for s in levels_S):
            raise ValueError(f'KeyFeatureLoss: {len(gt_bboxes)} gt_bboxes '
                             f'for a batch of {levels_S[0].shape[0]}')
        targets = self.box_targets(gt_bboxes, levels_S[0].device)
        if self.normalize and not self.relation:
            total = self._standardised_levels(levels_S, levels_T, gt_bboxes,
                                              batch_input_shape, targets)
        else:
            total = sum(
                self._single_level(s, t, gt_bboxes, batch_input_shape,
                                   targets)
                for s, t in zip(levels_S, levels_T))
        return self.loss_weight * total / len(levels_S)
