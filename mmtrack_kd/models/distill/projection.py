"""Projection of conflicting distillation gradients (PCGrad-style, on
features).

Several distillation losses and the task pull on the same student layers.
A hint loss (features, ID embeddings) may point against the task or the
response loss on some images; summed, it then takes away from their step
instead of adding its own. :class:`GradientProjector` removes that part:
for every image, the gradient of each projected loss with respect to a
student feature (the neck's outputs by default, which every head reads) is
compared with the gradient of each ``against`` term; where their dot
product is negative, the component along that term is removed (Yu et al.,
"Gradient Surgery for Multi-Task Learning", NeurIPS 2020, applied to
activations instead of parameters, so that it costs backward passes
through the heads and losses only).

The projected loss gets a term ``e - e.detach()`` with ``e = <f, g' - g>``
(``g`` its gradient on the feature ``f``, ``g'`` the projected one): its
value (what is logged) is unchanged, its gradient with respect to ``f``
becomes ``g'``, and what it reaches only through other paths (its
connectors) keeps its own gradient.

Config (a ``MOTDistiller`` argument)::

    grad_projection=dict(losses=['kd_feat', 'kd_id'],
                         against=['task', 'kd_resp'], recorder='neck')

``task`` stands for the sum of the student's own losses. The projection
logs ``proj_frac_<loss>``: the fraction of images whose gradient was
projected on that iteration.
"""
from typing import Dict, List, Optional, Sequence

import torch

from .errors import DistillConfigError

__all__ = ['GradientProjector', 'build_projector']


def _flat_grads(loss: torch.Tensor, feats: List[torch.Tensor],
                n: int) -> Optional[torch.Tensor]:
    """(N, D): d loss / d feats per image, levels concatenated (None when
    ``loss`` does not reach them)."""
    if not loss.requires_grad:
        return None
    grads = torch.autograd.grad(loss, feats, retain_graph=True,
                                allow_unused=True)
    parts = [g.reshape(n, -1) if g is not None else
             f.new_zeros(n, f[0].numel()) for g, f in zip(grads, feats)]
    flat = torch.cat(parts, dim=1)
    return flat if bool(flat.any()) else None


class GradientProjector:
    """Project the feature gradient of some distillation losses off the
    directions of other terms where they conflict (see the module
    docstring).

    Args:
        losses (Sequence[str]): distillation losses to project.
        against (Sequence[str]): the terms they must not oppose:
            distillation losses, or ``'task'``.
        recorder (str): the student recorder whose outputs (a tensor or a
            list of (N, ...) tensors) the gradients are taken on. Defaults
            to ``'neck'``.
    """

    def __init__(self, losses: Sequence[str], against: Sequence[str],
                 recorder: str = 'neck') -> None:
        self.losses = list(losses)
        self.against = list(against)
        self.recorder = recorder

    def __call__(self, feats, task: torch.Tensor,
                 kd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The zero-valued term to add to each projected loss, and the
        logs.

        Args:
            feats (Tensor | list[Tensor]): the recorded student feature.
            task (Tensor): the summed task loss.
            kd (dict[str, Tensor]): loss name -> its summed, scaled value.

        Returns:
            dict: ``loss name -> the term to add to it`` (value 0) for the
            projected losses, and ``proj_frac_<name>`` (floats).
        """
        feats = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        n = feats[0].shape[0]
        terms = dict(kd, task=task)
        refs = [g for g in (_flat_grads(terms[a], feats, n)
                            for a in self.against) if g is not None]
        out = {}
        for name in self.losses:
            g = _flat_grads(kd[name], feats, n)
            if g is None:
                out[f'proj_frac_{name}'] = 0.0
                continue
            new = g.clone()
            hit = torch.zeros(n, dtype=torch.bool, device=g.device)
            for ref in refs:
                dot = (new * ref).sum(1)
                sq = ref.pow(2).sum(1)
                neg = (dot < 0) & (sq > 0)
                coef = torch.where(neg, dot / sq.clamp_min(1e-30),
                                   torch.zeros_like(dot))
                new = new - coef[:, None] * ref
                hit |= neg
            delta = (new - g).detach()
            extra = sum((f.reshape(n, -1) * d).sum() for f, d in zip(
                feats, delta.split([f[0].numel() for f in feats], dim=1)))
            # value 0; moves the loss's gradient on the feature to new
            out[name] = extra - extra.detach()
            out[f'proj_frac_{name}'] = float(hit.float().mean())
        return out


def build_projector(cfg: Optional[dict], loss_names: Sequence[str],
                    recorders: Sequence[str]
                    ) -> Optional[GradientProjector]:
    """A :class:`GradientProjector` from a ``grad_projection`` config
    (None: none).

    Raises:
        DistillConfigError: an unknown key, loss or recorder (names the
            key).
    """
    if cfg is None:
        return None
    cfg = dict(cfg)
    key = 'model.grad_projection'
    unknown = sorted(set(cfg) - {'losses', 'against', 'recorder'})
    if unknown:
        raise DistillConfigError(
            f'{key}: unknown key(s) {unknown}; expected some of '
            "['against', 'losses', 'recorder']")
    losses = list(cfg.get('losses') or [])
    against = list(cfg.get('against') or [])
    if not losses or not against:
        raise DistillConfigError(f'{key}: losses and against must both '
                                 'name at least one loss')
    bad = [n for n in losses if n not in loss_names]
    bad += [n for n in against if n != 'task' and n not in loss_names]
    if bad:
        raise DistillConfigError(
            f'{key}: unknown loss(es) {bad}; the distillation losses are '
            f"{list(loss_names)} (and 'task' in against)")
    both = sorted(set(losses) & set(against))
    if both:
        raise DistillConfigError(f'{key}: {both} both projected and '
                                 'projected against')
    recorder = cfg.get('recorder', 'neck')
    if recorder not in recorders:
        raise DistillConfigError(
            f'{key}.recorder: {recorder!r} is not a student recorder; '
            f'they are {list(recorders)}')
    return GradientProjector(losses, against, recorder)
