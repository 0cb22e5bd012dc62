"""How the gradients of a distiller's terms relate on the student's shared
layers (``tools/analysis/kd_grad_alignment.py``).

On training batches of a ``MOTDistiller`` config, in train mode, each term
of the loss the optimizer sees, the task (the student's own losses summed)
and every distillation loss (as the step gets it: after the gradient
balancer's scale, which the analysis reads but does not update), is
differentiated alone with respect to the parameters of the ``shared``
modules of the student. Per batch it reports:

- ``norm``: each term's gradient norm;
- ``cos``: the cosine of every pair of terms' gradients (1: the same
  direction, 0: unrelated, < 0: they pull against each other);
- ``unique``: for each term, the share of its gradient that the other terms'
  gradients do not span: ``||g - P g|| / ||g||`` with ``P`` the projection
  onto the span of the others (0: the step would move the same way without
  it, up to scale; 1: orthogonal to all of them);
- ``step_share``: each term's part of the step, ``g . G / ||G||^2`` with
  ``G`` the sum of all terms' gradients (the shares add up to 1; a term
  that pulls against the others has a negative share).

Batches are averaged per run, runs (e.g. seeds) are then summarised by their
mean, standard deviation and 95 % t interval.
"""
import contextlib
import itertools
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..models.distill.balance import module_params, summed

__all__ = ['term_losses', 'gradient_alignment', 'alignment_of_run',
           'summarise_runs', 'format_alignment']

PARTS = ('norm', 'cos', 'unique', 'step_share')


def term_losses(model: nn.Module, losses: Dict[str, torch.Tensor]
                ) -> Dict[str, torch.Tensor]:
    """Split ``MOTDistiller.loss``'s output into its terms: ``task`` (every
    ``loss`` entry that no distillation loss logged) and one scalar per
    distillation loss, by its name in ``distill_losses``."""
    terms, taken = {}, set()
    for name, log_name in model.log_names.items():
        # a dict-valued loss logs one entry per key (MOTDistiller.loss)
        sub = model._dict_keys.get(name)
        keys = [f'{log_name}_{k}' for k in sub] if sub else [log_name]
        keys = [k for k in keys if k in losses]
        taken.update(keys)
        terms[name] = summed({k: losses[k] for k in keys}) if keys else None
    task = {k: v for k, v in losses.items() if 'loss' in k and k not in taken}
    out = {'task': summed(task)}
    out.update({k: v for k, v in terms.items() if v is not None})
    return out


def _flat_grad(loss: torch.Tensor, params: List[nn.Parameter]) -> torch.Tensor:
    if not loss.requires_grad:
        return torch.zeros(sum(p.numel() for p in params))
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    return torch.cat([
        (g if g is not None else torch.zeros_like(p)).detach().flatten()
        for g, p in zip(grads, params)
    ])


def gradient_alignment(grads: Dict[str, torch.Tensor]) -> dict:
    """Norms, pairwise cosines and unique shares of flat gradients (see the
    module docstring). A zero gradient has cosine and unique share NaN."""
    names = list(grads)
    norms = {n: float(g.norm()) for n, g in grads.items()}
    cos = {}
    for a, b in itertools.combinations(names, 2):
        den = norms[a] * norms[b]
        cos[f'{a}|{b}'] = float(grads[a] @ grads[b] / den) if den > 0 \
            else math.nan
    unique = {}
    for n in names:
        others = [grads[m].double() for m in names
                  if m != n and norms[m] > 0]
        g = grads[n].double()
        if norms[n] == 0:
            unique[n] = math.nan
            continue
        if not others:
            unique[n] = 1.0
            continue
        basis = torch.stack(others, 1)  # (P, k)
        coef = torch.linalg.lstsq(basis, g[:, None]).solution
        resid = g - (basis @ coef)[:, 0]
        unique[n] = float(resid.norm() / g.norm())
    total = torch.stack([g.double() for g in grads.values()]).sum(0)
    den = float(total @ total)
    share = {n: float(g.double() @ total) / den if den > 0 else math.nan
             for n, g in grads.items()}
    return dict(norm=norms, cos=cos, unique=unique, step_share=share)


@contextlib.contextmanager
def _balancer_frozen(model: nn.Module):
    """The balancer keeps its scales and step count while the analysis runs
    (its measurement is skipped; the step's terms are scaled as in
    training)."""
    bal = getattr(model, 'loss_balance', None)
    if bal is None:
        yield
        return
    bal.forward = lambda *args, **kwargs: {}
    try:
        yield
    finally:
        del bal.forward


def alignment_of_run(model: nn.Module,
                     batches: Iterable[Tuple[torch.Tensor, list]],
                     shared: Sequence[str] = ('neck', )) -> dict:
    """:func:`gradient_alignment` on each batch of ``batches`` (pre-processed
    ``(inputs, data_samples)``), then averaged: ``{'batches': [...],
    'mean': {'norm': .., 'cos': .., 'unique': .., 'step_share': ..}}``."""
    params = module_params(model.student, shared, '--shared')
    model.train()
    per_batch = []
    with _balancer_frozen(model):
        for inputs, data_samples in batches:
            terms = term_losses(model, model.loss(inputs, data_samples))
            grads = {n: _flat_grad(v, params) for n, v in terms.items()}
            per_batch.append(gradient_alignment(grads))
            model.zero_grad(set_to_none=True)
    if not per_batch:
        raise ValueError('no batch to analyse')
    mean = {}
    for part in PARTS:
        keys = per_batch[0][part]
        mean[part] = {k: _nanmean([b[part][k] for b in per_batch])
                      for k in keys}
    return dict(batches=per_batch, mean=mean)


def _nanmean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def summarise_runs(runs: Sequence[dict]) -> dict:
    """Across runs (their ``mean``): mean, std and 95 % t interval of each
    norm, cosine, unique share and step share (no interval with one run;
    the benchmark's statistics, :mod:`mmtrack_kd.benchmark.stats`)."""
    from ..benchmark.stats import paired_test, summary_stats
    out = {}
    for part in PARTS:
        out[part] = {}
        for key in runs[0]['mean'][part]:
            vals = [r['mean'][part][key] for r in runs]
            entry = summary_stats(vals)
            if entry['n'] > 1:  # the t interval of the mean
                test = paired_test(vals)
                entry.update(ci95_low=test['ci95_low'],
                             ci95_high=test['ci95_high'])
            else:
                entry.pop('std')
            out[part][key] = entry
    return out


def format_alignment(summary: dict, runs: Optional[int] = None) -> str:
    """A text table of :func:`summarise_runs`'s output."""
    lines = [f'over {runs} run(s)' if runs else '']

    def fmt(e):
        if 'ci95_low' in e:
            return (f"{e['mean']:+.3f} [{e['ci95_low']:+.3f}, "
                    f"{e['ci95_high']:+.3f}]")
        return f"{e['mean']:+.3f}"

    for part, title in (('norm', 'gradient norm'),
                        ('cos', 'cosine'),
                        ('unique', 'share not spanned by the other terms'),
                        ('step_share', 'share of the step')):
        lines.append(f'{title}:')
        for key, e in summary[part].items():
            lines.append(f'  {key:<28} {fmt(e)}')
    return '\n'.join(lines).lstrip('\n')
