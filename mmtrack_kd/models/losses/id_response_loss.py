"""ID-feature distillation by environmental response consistency."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import (
    NORM_EPS,
    as_level_list,
    box_cell_masks,
    centre_cells,
    channel_sum_squares,
    frame_index,
    frame_slots,
    zero_with_grad,
)


class CosineResponses(torch.autograd.Function):
    r"""Cosines of the vectors at given cells of a map with every vector of
    it, over a temperature, and those vectors normalised, with a backward
    written out.

    For a map F (N, D, P) and cells c (N, M): the logits
    :math:`L_{nmp} = \langle F_{n,c_{nm}}, F_{np}\rangle\, n_{np}\,
    n_{n,c_{nm}} / \tau` with :math:`n = (\max(\|F\|^2,
    \epsilon^2))^{-1/2}` (the norms clamped as ``unit_vectors`` clamps them),
    and :math:`E_{nm} = F_{n,c_{nm}} n_{n,c_{nm}}`.

    The same values and gradient as these lines under autograd (a test
    compares them), computed as dot products of the raw vectors over their
    norms (no divide of the whole map). Autograd's backward of them makes
    about a dozen passes over the (N, D, P) map (the square's backward, the
    gather's scatter into a zero map, the product's gradient, their sums);
    this one makes three: one batched product that writes the map's
    gradient, one that reads the map, and one fused update by the norms'
    gradient, plus a scatter at the M cells. Timed alone at 1088x608 with a
    512-channel ID map and 60 targets a frame the loss's backward went from
    about 140 to 40-50 ms; inside a real KD step, where autograd's
    temporaries reuse memory the step has touched already, the gain is much
    smaller (docs/benchmark.md, kd_step_overhead.py, session 19).
    """

    @staticmethod
    def forward(ctx, flat: Tensor, cells: Tensor, tau: float):
        """``flat`` (N, D, P), ``cells`` (N, M) long; returns the logits
        (N, M, P) and the unit vectors at the cells (N, M, D)."""
        sq = channel_sum_squares(flat)
        inv = sq.clamp_min(NORM_EPS * NORM_EPS).rsqrt()  # (N, P)
        d = flat.shape[1]
        e_pad = flat.gather(2, cells[:, None].expand(-1, d, -1))
        e_pad = e_pad.transpose(1, 2)  # (N, M, D)
        inv_e = inv.gather(1, cells)  # (N, M)
        dots = torch.bmm(e_pad, flat)  # (N, M, P)
        logits = dots * (inv[:, None, :] * (inv_e / tau)[:, :, None])
        unit = e_pad * inv_e[:, :, None]
        ctx.tau = tau
        ctx.save_for_backward(flat, cells, sq, inv, e_pad, inv_e, dots)
        return logits, unit

    @staticmethod
    def backward(ctx, g_logits: Tensor, g_unit: Tensor):
        flat, cells, sq, inv, e_pad, inv_e, dots = ctx.saved_tensors
        tau = ctx.tau
        d = flat.shape[1]
        if g_logits is None:
            g_logits = torch.zeros_like(dots)
        if g_unit is None:
            g_unit = torch.zeros_like(e_pad)
        # the product's gradient, and the two norms' (per cell, per target)
        a = g_logits * (inv[:, None, :] * (inv_e / tau)[:, :, None])
        gd = g_logits * dots
        g_inv = (gd * (inv_e / tau)[:, :, None]).sum(1)  # (N, P)
        g_inv_e = (gd * inv[:, None, :]).sum(2) / tau + (
            g_unit * e_pad).sum(2)  # (N, M)
        g_e = torch.baddbmm(g_unit * inv_e[:, :, None], a,
                            flat.transpose(1, 2))  # (N, M, D)
        g_inv = g_inv.scatter_add(1, cells, g_inv_e)
        # d rsqrt(q) / dq = -q^(-3/2) / 2, zero where the clamp holds, and
        # d q / d F = 2 F: the norms add coef * F to the map's gradient
        coef = torch.where(sq >= NORM_EPS * NORM_EPS, -inv.pow(3) * g_inv,
                           torch.zeros_like(g_inv))
        g_flat = torch.bmm(e_pad.transpose(1, 2), a)  # (N, D, P)
        g_flat.addcmul_(flat, coef[:, None, :])
        g_flat.scatter_add_(2, cells[:, None].expand(-1, d, -1),
                            g_e.transpose(1, 2))
        return g_flat, None, None


@MODELS.register_module()
class IDResponseConsistencyLoss(nn.Module):
    r"""Make the student's targets respond to their frame like the teacher's.

    For every GT target i of a frame, e_i is the embedding read at the cell
    holding its box centre on the ID map and E(p) the embedding at position
    p; both are L2-normalised (hat). Two responses are compared:

    * response to the environment, over all positions p of the same frame:
      :math:`R_i(p) = softmax_p(\langle \hat e_i, \hat E(p)\rangle / \tau)`
    * response to the other targets: the target-target cosine matrix
      :math:`Sim_{ij} = \langle \hat e_i, \hat e_j\rangle`.

    .. math::
        L = w\,[\tau^2 \operatorname{mean}_i KL(R^T_i \| R^S_i)
              + \lambda \operatorname{mean}_{i \ne j}
                (Sim^T_{ij} - Sim^S_{ij})^2]

    Both responses are cosines, so they do not depend on the embedding width
    or on any rotation of the embedding space: a 512-d teacher teaches a
    128-d student without a connector.

    Refinements of the first design:

    * the target's own cell is left out of :math:`R_i` (its cosine is 1 for
      both models, so it would only soak up probability mass and weaken the
      signal coming from the environment);
    * the Sim term averages over the off-diagonal pairs only (the diagonal is
      1 for both models); frames with fewer than 2 targets add no Sim term;
    * the means run over all targets (pairs) of the batch, so a crowded
      frame weighs as much per target as a sparse one; a batch without
      targets gives a zero that keeps the graph of ``preds_S``.

    Two options make the environment term carry its own weight (both off
    by default, which is the formula above):

    * ``exclude='box'`` leaves every cell of the target's own box out of
      :math:`R_i` (not only its centre cell), so that the environment is
      what lies around the target: neighbours, look-alikes and background,
      not the target's own body. A box covering the whole map falls back to
      its centre cell.
    * ``lambda_env`` replaces the :math:`\tau^2` factor of the KL term
      (0.01 at the default tau, which leaves the environment about 2 % of
      this loss's gradient) by a weight of its own.

    Args:
        tau (float): temperature of the environment softmax. Default 0.1.
        lambda_sim (float): weight of the target-target term. Default 1.0.
        lambda_env (float, optional): weight of the environment KL term;
            None: :math:`\tau^2`. Default None.
        exclude (str): what of the target is left out of its environment
            response: ``'cell'`` (its centre cell) or ``'box'`` (every cell
            of its box). Default ``'cell'``.
        loss_weight (float): overall weight. Default 1.0.
    """

    #: Read by ``MOTDistiller``: student and teacher widths may differ.
    allow_channel_mismatch = True

    def __init__(self,
                 tau: float = 0.1,
                 lambda_sim: float = 1.0,
                 lambda_env: Optional[float] = None,
                 exclude: str = 'cell',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'IDResponseConsistencyLoss: tau must be > 0, '
                             f'got {tau}')
        if exclude not in ('cell', 'box'):
            raise ValueError("IDResponseConsistencyLoss: exclude must be "
                             f"'cell' or 'box', got {exclude!r}")
        if lambda_env is not None and not lambda_env >= 0:
            raise ValueError('IDResponseConsistencyLoss: lambda_env must be '
                             f'>= 0 or None, got {lambda_env}')
        self.tau = float(tau)
        self.lambda_sim = float(lambda_sim)
        self.lambda_env = self.tau**2 if lambda_env is None else float(
            lambda_env)
        self.exclude = exclude
        self.loss_weight = float(loss_weight)

    def target_cells(self, bboxes: Tensor, frame: Tensor, n: int,
                     feat_hw: Sequence[int],
                     batch_input_shape: Sequence[int],
                     with_own: bool = True) -> tuple:
        """Where the targets sit on an (H, W) map, the same for the
        student's and the teacher's: each target's slot in its frame's row
        of (N, K_max), the (N, K_max) cell of each slot, and the (K, H*W)
        bool mask of the cells left out of its responses (its own cell, or
        its box with ``exclude='box'``; None without ``with_own``)."""
        h, w = int(feat_hw[0]), int(feat_hw[1])
        idx = centre_cells(bboxes, (h, w), batch_input_shape)
        # the targets of each frame in slots 0..K_i-1 of (N, K_max): one
        # batched product instead of one per frame
        slot, k_max = frame_slots(frame, n)
        cells = idx.new_zeros(n, k_max)
        cells[frame, slot] = idx
        if not with_own:
            return slot, cells, None
        own = torch.zeros(len(idx), h * w, dtype=torch.bool,
                          device=idx.device)
        own[torch.arange(len(idx), device=idx.device), idx] = True
        if self.exclude == 'box':
            box = box_cell_masks(bboxes, (h, w), batch_input_shape).flatten(
                1) > 0
            whole = box.all(1)  # nothing left around it: its cell only
            own = torch.where(whole[:, None], own, box | own)
        return slot, cells, own

    def batch_responses(self, emb_maps: Tensor, bboxes: Tensor,
                        frame: Tensor, batch_input_shape: Sequence[int],
                        targets: Optional[tuple] = None):
        """Responses of the targets of all frames at once.

        Args:
            emb_maps: (N, D, H, W) embedding maps.
            bboxes: (K, 4) GT boxes of all frames, in input pixels.
            frame: (K,) the frame of each box.
            batch_input_shape: (H_in, W_in).
            targets: :meth:`target_cells` of these boxes on this map size,
                when the caller has them.

        Returns:
            tuple: log R (K, H*W) log-softmax over the positions of each
            target's own frame (its own cell excluded: -inf), Sim (K, K)
            cosine matrix of all targets (pairs of different frames
            included; the caller keeps those of one frame), and the
            (K, H*W) bool mask of the own cells.
        """
        n, d, h, w = emb_maps.shape
        flat = emb_maps.reshape(n, d, h * w)  # (N, D, HW)
        if targets is None:
            targets = self.target_cells(bboxes, frame, n, (h, w),
                                        batch_input_shape)
        slot, cells, own = targets
        logits, e = CosineResponses.apply(flat, cells, self.tau)
        logits = logits[frame, slot]  # (K, HW)
        e = e[frame, slot]  # (K, D) unit vectors
        logits = logits.masked_fill(own, float('-inf'))
        log_r = F.log_softmax(logits, dim=1)
        return log_r, e @ e.t(), own

    def _single_level(self, preds_S: Tensor, preds_T: Tensor,
                      gt_bboxes: Sequence[Tensor],
                      batch_input_shape: Sequence[int]) -> Tensor:
        if preds_S.dim() != 4 or preds_T.dim() != 4:
            raise ValueError('IDResponseConsistencyLoss: preds_S and preds_T '
                             'must be (N, D, H, W) embedding maps')
        if preds_S.shape[0] != preds_T.shape[0] or len(gt_bboxes) != len(
                preds_S):
            raise ValueError(
                f'IDResponseConsistencyLoss: batch sizes differ: preds_S '
                f'{preds_S.shape[0]}, preds_T {preds_T.shape[0]}, gt_bboxes '
                f'{len(gt_bboxes)}')
        preds_T = preds_T.detach()
        boxes, frame = frame_index(gt_bboxes, preds_S.device)
        if len(boxes) == 0 or preds_S.shape[-2:].numel() < 2:
            zero = zero_with_grad(preds_S)
            return self.lambda_env * zero + self.lambda_sim * zero
        if preds_S.shape[-2:] != preds_T.shape[-2:]:
            raise ValueError(
                'IDResponseConsistencyLoss: student and teacher ID maps '
                f'must have the same H, W: {tuple(preds_S.shape[2:])} vs '
                f'{tuple(preds_T.shape[2:])}')
        n, h, w = len(preds_S), preds_S.shape[-2], preds_S.shape[-1]
        # the own-cell mask only for exclude='box' (its own cell alone is
        # set through its slot's cell below)
        slot, cells, own = self.target_cells(
            boxes, frame, n, (h, w), batch_input_shape,
            with_own=self.exclude == 'box')
        k_max = cells.shape[1]
        # the responses of every frame's targets in slots 0..K_i-1 of
        # (N, K_max, H*W), as batch_responses makes them but without
        # gathering the K rows out of it: the other slots are zeroed by
        # ``valid`` below (no copy of the maps' responses)
        logit_S, e_S = CosineResponses.apply(
            preds_S.reshape(n, preds_S.shape[1], h * w), cells, self.tau)
        logit_T, e_T = CosineResponses.apply(
            preds_T.reshape(n, preds_T.shape[1], h * w), cells, self.tau)
        # the cells left out of a target's responses get a logit far below
        # any other (they are cosines over tau): a probability of exactly 0
        # in both models (exp underflows), and, unlike -inf, a finite log
        # probability, so 0 * log r adds 0 (no NaN to mask out)
        low = -1. / self.tau - 1e3
        if self.exclude == 'cell':
            at = (frame, slot, cells[frame, slot])
            logit_S = logit_S.index_put(at, logit_S.new_tensor(low))
            logit_T.index_put_(at, logit_T.new_tensor(low))
        else:
            own_pad = own.new_zeros(n, k_max, h * w)
            own_pad[frame, slot] = own
            logit_S = logit_S.masked_fill(own_pad, low)
            logit_T.masked_fill_(own_pad, low)
        log_rs = F.log_softmax(logit_S, dim=2)
        log_rt = F.log_softmax(logit_T, dim=2)
        valid = logit_T.new_zeros(n, k_max)
        valid[frame, slot] = 1.
        r_t = log_rt.exp().mul_(valid[..., None]).flatten()  # 0: padding
        # sum r_T (log r_T - log r_S) as two dot products: one pass each,
        # and the student's one backward pass is -r_T times the gradient
        kl_sum = torch.dot(r_t, log_rt.flatten()) - torch.dot(
            r_t, log_rs.flatten())
        # pairs of distinct targets of one frame: one (K_max, K_max) cosine
        # matrix a frame
        sim_s = torch.bmm(e_S, e_S.transpose(1, 2))
        sim_t = torch.bmm(e_T, e_T.transpose(1, 2))
        pairs = valid[:, :, None] * valid[:, None, :] * (1. - torch.eye(
            k_max, dtype=valid.dtype, device=valid.device))
        gap = sim_t - sim_s
        sim_sum = (gap * gap * pairs).sum()
        n_pairs = int(pairs.sum())
        loss = self.lambda_env * kl_sum / len(boxes)
        loss = loss + self.lambda_sim * sim_sum / max(n_pairs, 1)
        return loss

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]],
                gt_bboxes: Sequence[Tensor],
                batch_input_shape: Sequence[int]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: student ID map (N, Ds, H, W), or a list of such maps
                (the loss is then averaged over them).
            preds_T: teacher ID map (N, Dt, H, W) (or list); detached here.
            gt_bboxes: per frame (K_i, 4) x1, y1, x2, y2 in input pixels.
            batch_input_shape: (H_in, W_in) of the padded batch, to find the
                map stride.

        Returns:
            Tensor: scalar loss.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T,
                                           'IDResponseConsistencyLoss')
        total = sum(
            self._single_level(s, t, gt_bboxes, batch_input_shape)
            for s, t in zip(levels_S, levels_T))
        return self.loss_weight * total / len(levels_S)
