"""Balance of distillation against the task, by gradient scale.

A distillation loss and the detection/ID losses of the student have
unrelated units: their weights only mean something next to each other, for
one batch size, one model pair and one clip of the gradient. The
:class:`GradientBalancer` makes the balance a designed quantity instead:
every ``interval`` training iterations it measures, on the student's shared
layers (by default the neck, which feeds every head), the gradient norm of
the task (the sum of the student's own losses) and of each distillation
loss, and rescales each distillation loss so that its gradient norm is
``ratios[name]`` times the task's. Between measurements the scales are
kept; across measurements they are smoothed (``momentum``).

What this buys:

- the ratio is the share of the step a loss gets, whatever the loss's
  units, the batch size (task losses grow with it, most distillation
  losses do not) or the teacher's feature scale;
- gradient clipping then shortens every term alike and no longer decides
  the mixture: with the measured ratios, the clipped step points where the
  ratios say;
- the measured norms are logged (``gnorm_task``, ``gnorm_<loss>``,
  ``kd_scale_<loss>``), so a run shows its balance.

Config (a ``MOTDistiller`` argument)::

    loss_balance=dict(
        ratios=dict(kd_resp=8.0, kd_feat=2.0, kd_id=1.0),
        interval=20, momentum=0.8, shared=['neck'])

A loss's first measured gradient (the first measured iteration, or the
first one where the loss reaches the shared layers, e.g. after a
connector's warm-up) sets its scale directly; later ones are smoothed in.

``loss_shared=dict(kd_feat=['backbone'])`` measures those losses, and the
task they are weighed against, on other modules than ``shared``: for a loss
that reads a module upstream of ``shared`` (a feature loss on the backbone's
stages, whose gradient never reaches the neck), its ratio is then the share
of the step it gets on the layers it reaches. The task's norm on each such
group is logged as ``gnorm_task_<loss>``.

``ratios=None`` measures and logs without rescaling. A distillation loss
left out of ``ratios`` keeps its ``loss_weight`` (scale 1) and is still
measured.

``decay=dict(kd_feat=0.0, kd_id=0.0)`` multiplies those losses by a factor
that goes linearly from 1 at the first iteration to the given end factor at
``decay_iters`` (then stays there): hints that guide the student early and
hand the late steps back to the task and the other losses. ``decay_iters``
defaults to the run's ``max_iters`` (set by ``DistillStopHook``, which the
KD configs add). The factor multiplies the balanced scale at every
iteration (``kd_factor_<loss>`` in the log).
"""
import logging
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn

from .errors import DistillConfigError

__all__ = ['GradientBalancer', 'build_balancer', 'module_params', 'summed']


def _grad_norm(loss: torch.Tensor, params: List[nn.Parameter]) -> float:
    """The L2 norm of d loss / d params (0 when ``loss`` does not reach
    them); the graph is kept for the real backward."""
    if not loss.requires_grad:
        return 0.0
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    sq = [g.detach().pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


def module_params(student: nn.Module, paths: Sequence[str],
                  where: str) -> List[nn.Parameter]:
    """The trainable parameters of the modules ``paths`` of ``student``.

    Raises:
        DistillConfigError: a path is not a module of the student, or they
            hold no trainable parameter (the message starts with
            ``where``, the config key or option that gave the paths).
    """
    params = []
    for path in paths:
        try:
            module = student.get_submodule(path)
        except AttributeError:
            raise DistillConfigError(
                f'{where}: the student has no module {path!r}') from None
        params += [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise DistillConfigError(
            f'{where}: {list(paths)} hold no trainable parameter')
    return params


class GradientBalancer(nn.Module):
    """Scale distillation losses to set ratios of the task's gradient norm
    on the student's shared layers (see the module docstring).

    Args:
        loss_names (Sequence[str]): the distiller's distillation losses.
        ratios (dict, optional): loss name -> gradient-norm ratio to the
            task (>= 0). None: measure and log only.
        interval (int): training iterations between measurements (the
            first iteration is measured). Defaults to 20.
        momentum (float): weight of the previous scale in the smoothing of
            the log-scale across measurements, in [0, 1). Defaults to 0.8.
        shared (Sequence[str]): module paths, in the student, whose
            parameters the norms are taken on. Defaults to ``['neck']``.
        max_scale (float): upper bound on a scale, against a loss whose
            gradient nearly vanishes for a batch. Defaults to 1e4.
        min_scale (float): lower bound on a scale (> 0). Defaults to 1e-8:
            low enough for a loss whose raw gradient is 1e4 times the
            task's (AttTrack's attention term at weight 1000) to reach a
            ratio of 0.01. A scale held at either bound misses its ratio;
            that is logged once per loss (``print_log``, level WARNING).
        loss_shared (dict, optional): loss name -> module paths (a str or
            a sequence) on which that loss and the task are measured
            instead of ``shared``.
        decay (dict, optional): loss name -> end factor (>= 0) of a linear
            decay of that loss over ``decay_iters`` iterations.
        decay_iters (int, optional): length of the decay; None: the run's
            ``max_iters``, set before training by ``DistillStopHook``.
        cfg_key (str): config key named in errors.
    """

    def __init__(self,
                 loss_names: Sequence[str],
                 ratios: Optional[Dict[str, float]] = None,
                 interval: int = 20,
                 momentum: float = 0.8,
                 shared: Union[str, Sequence[str]] = ('neck', ),
                 max_scale: float = 1e4,
                 min_scale: float = 1e-8,
                 loss_shared: Optional[Dict[str, Union[str, Sequence[str]]]]
                 = None,
                 decay: Optional[Dict[str, float]] = None,
                 decay_iters: Optional[int] = None,
                 cfg_key: str = 'model.loss_balance') -> None:
        super().__init__()
        self.loss_names = list(loss_names)
        self.cfg_key = cfg_key
        ratios = None if ratios is None else self._checked(
            'ratios', ratios, 'finite numbers >= 0')
        if not (isinstance(interval, int) and interval >= 1):
            raise DistillConfigError(
                f'{cfg_key}.interval: expected an int >= 1, got '
                f'{interval!r}')
        if not 0 <= momentum < 1:
            raise DistillConfigError(
                f'{cfg_key}.momentum: expected a value in [0, 1), got '
                f'{momentum!r}')
        if not max_scale > 1:
            raise DistillConfigError(
                f'{cfg_key}.max_scale: expected > 1, got {max_scale!r}')
        if not 0 < min_scale < 1:
            raise DistillConfigError(
                f'{cfg_key}.min_scale: expected a value in (0, 1), got '
                f'{min_scale!r}')
        decay = self._checked('decay', decay or {}, 'end factors >= 0')
        if decay_iters is not None and not (isinstance(decay_iters, int)
                                            and decay_iters >= 1):
            raise DistillConfigError(
                f'{cfg_key}.decay_iters: expected an int >= 1 or None, got '
                f'{decay_iters!r}')
        self.decay = {k: float(v) for k, v in decay.items()}
        self.decay_iters = decay_iters
        self.ratios = ratios
        self.interval = interval
        self.momentum = float(momentum)
        self.shared = [shared] if isinstance(shared, str) else list(shared)
        if not self.shared:
            raise DistillConfigError(f'{cfg_key}.shared: empty')
        loss_shared = dict(loss_shared or {})
        unknown = sorted(set(loss_shared) - set(self.loss_names))
        if unknown:
            raise DistillConfigError(
                f'{cfg_key}.loss_shared: unknown distillation loss(es) '
                f'{unknown}; the losses are {self.loss_names}')
        self.loss_shared = {}
        for name, paths in loss_shared.items():
            paths = [paths] if isinstance(paths, str) else list(paths)
            if not paths or not all(isinstance(p, str) for p in paths):
                raise DistillConfigError(
                    f'{cfg_key}.loss_shared.{name}: expected module paths, '
                    f'got {loss_shared[name]!r}')
            self.loss_shared[name] = paths
        self.max_scale = float(max_scale)
        self.min_scale = float(min_scale)
        self._warned = set()  # losses whose scale was held at a bound
        # saved with the model, so that a resumed run goes on with them
        self.register_buffer('scales', torch.ones(len(self.loss_names)))
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        # whether a loss's scale was set from a measurement yet
        self.register_buffer('measured',
                             torch.zeros(len(self.loss_names),
                                         dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before ``measured``: every loss with a scale
        # other than 1, or any once a step was run, counts as measured
        key = prefix + 'measured'
        if key not in state_dict and prefix + 'step' in state_dict:
            ran = bool(state_dict[prefix + 'step'] > 0)
            state_dict[key] = torch.full((len(self.loss_names), ), ran,
                                         dtype=torch.bool)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _checked(self, key: str, table: Dict[str, float],
                 expected: str) -> Dict[str, float]:
        """A copy of a loss name -> number table of ``cfg_key.key``.

        Raises:
            DistillConfigError: an unknown loss, or a value that is not a
                finite number >= 0 (names the key).
        """
        table = dict(table)
        unknown = sorted(set(table) - set(self.loss_names))
        if unknown:
            raise DistillConfigError(
                f'{self.cfg_key}.{key}: unknown distillation loss(es) '
                f'{unknown}; the losses are {self.loss_names}')
        bad = {k: v for k, v in table.items()
               if not (isinstance(v, (int, float)) and v >= 0
                       and math.isfinite(v))}
        if bad:
            raise DistillConfigError(
                f'{self.cfg_key}.{key}: expected {expected}, got {bad}')
        return table

    def extra_repr(self) -> str:
        return (f'ratios={self.ratios}, interval={self.interval}, '
                f'momentum={self.momentum}, shared={self.shared}, '
                f'loss_shared={self.loss_shared}, '
                f'decay={self.decay}, decay_iters={self.decay_iters}, '
                f'min_scale={self.min_scale}, max_scale={self.max_scale}')

    # ................................................................ parts
    def shared_params(self, student: nn.Module,
                      loss: Optional[str] = None) -> List[nn.Parameter]:
        """The trainable parameters of the ``shared`` modules, or of those
        ``loss_shared`` gives ``loss``.

        Raises:
            DistillConfigError: a path is not a module of the student, or
                they hold no trainable parameter (names the config key).
        """
        key, paths = 'shared', self.shared
        if loss in self.loss_shared:
            key, paths = f'loss_shared.{loss}', self.loss_shared[loss]
        return module_params(student, paths, f'{self.cfg_key}.{key}')

    def check_paths(self, student: nn.Module) -> None:
        """Check every ``shared`` and ``loss_shared`` path on ``student``
        (raises as :meth:`shared_params`)."""
        self.shared_params(student)
        for name in self.loss_shared:
            self.shared_params(student, name)

    def scale_of(self, name: str) -> torch.Tensor:
        return self.scales[self.loss_names.index(name)]

    def factor(self, name: str, step: Optional[int] = None) -> float:
        """The decay factor of loss ``name`` at iteration ``step``
        (default: the iteration being run, i.e. the last one counted).

        Raises:
            DistillConfigError: a decay without ``decay_iters`` (no
                ``DistillStopHook`` set it from the run's ``max_iters``).
        """
        if name not in self.decay:
            return 1.0
        if self.decay_iters is None:
            raise DistillConfigError(
                f'{self.cfg_key}.decay_iters: not set; give it, or add '
                'DistillStopHook to custom_hooks (it sets the run\'s '
                'max_iters)')
        if step is None:
            step = max(int(self.step) - 1, 0)
        t = min(step / self.decay_iters, 1.0)
        return 1.0 + (self.decay[name] - 1.0) * t

    def due(self) -> bool:
        """Whether this training iteration is measured."""
        return int(self.step) % self.interval == 0

    @torch.no_grad()
    def _update(self, task: Dict[str, float],
                raw: Dict[str, float]) -> None:
        """New scales from the measured norms (unscaled losses) against the
        task's (loss name -> the task's norm where that loss is measured);
        a loss's first measured (non-zero) norm sets its scale, later ones
        are smoothed in."""
        if self.ratios is None:
            return
        for name, ratio in self.ratios.items():
            norm, task_norm = raw.get(name, 0.0), task[name]
            if not (norm > 0 and task_norm > 0):
                continue  # no gradient this batch: keep the scale
            target = 0.0
            if ratio > 0:
                wanted = ratio * task_norm / norm
                target = min(max(wanted, self.min_scale), self.max_scale)
                if target != wanted:
                    self._warn_bound(name, ratio, wanted, target)
            i = self.loss_names.index(name)
            old = float(self.scales[i])
            if target == 0.0 or old == 0.0 or not bool(self.measured[i]):
                new = target
            else:  # smooth in log space: ratios of scales, not differences
                new = math.exp(self.momentum * math.log(old) +
                               (1 - self.momentum) * math.log(target))
            self.scales[i] = new
            self.measured[i] = True

    def _warn_bound(self, name: str, ratio: float, wanted: float,
                    held: float) -> None:
        if name in self._warned:
            return
        self._warned.add(name)
        from mmengine.logging import print_log
        bound = 'min_scale' if held > wanted else 'max_scale'
        print_log(
            f'{self.cfg_key}: the scale of {name} needed for ratio '
            f'{ratio:g} is {wanted:.3g}, held at {self.cfg_key}.{bound}='
            f'{held:.3g}, so its gradient is {ratio * held / wanted:.3g} '
            "times the task's, not the ratio (logged once; widen "
            f'{bound} if that is not meant)',
            logger='current', level=logging.WARNING)

    def skip(self) -> Dict[str, float]:
        """Count a training iteration that is not measured (:meth:`due`
        is False): what :meth:`forward` does on it, without the losses it
        would not read.

        Raises:
            RuntimeError: the iteration is a measured one.
        """
        if self.due():
            raise RuntimeError('GradientBalancer.skip: this iteration is '
                               'measured; call the balancer with the losses')
        self.step += 1
        return {}

    def forward(self, student: nn.Module, task_loss: torch.Tensor,
                kd_losses: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """Count one training iteration; on a measured one, take the
        gradient norms of the task and of each (unscaled) distillation loss
        on the shared parameters and update the scales.

        Args:
            student (nn.Module): the student model.
            task_loss (Tensor): the sum of the student's losses.
            kd_losses (dict[str, Tensor]): loss name -> its (summed) value,
                before any scale.

        Returns:
            dict[str, float]: on a measured iteration, ``gnorm_task`` and
            ``gnorm_<name>`` (the norm of the scaled loss, i.e. what the
            step gets); empty otherwise.
        """
        due = self.due()
        self.step += 1
        if not due:
            return {}
        params = self.shared_params(student)
        own = [n for n in self.loss_names if n in self.loss_shared]
        own_params = {n: self.shared_params(student, n) for n in own}
        norms = torch.tensor(
            [_grad_norm(task_loss, params)] +
            [_grad_norm(kd_losses[n], own_params.get(n, params))
             if n in kd_losses else 0.0 for n in self.loss_names] +
            [_grad_norm(task_loss, own_params[n]) for n in own])
        from mmengine.dist import all_reduce, get_world_size
        if get_world_size() > 1:  # one set of scales on every rank
            all_reduce(norms, op='mean')
        values = norms.tolist()
        k = len(self.loss_names)
        task = values[0]
        raw = dict(zip(self.loss_names, values[1:k + 1]))
        task_own = dict(zip(own, values[k + 1:]))
        self._update({n: task_own.get(n, task) for n in self.loss_names},
                     raw)
        out = dict(gnorm_task=task)
        out.update({f'gnorm_task_{n}': v for n, v in task_own.items()})
        for name in self.loss_names:
            out[f'gnorm_{name}'] = raw[name] * float(
                self.scale_of(name)) * self.factor(name)
        return out


def build_balancer(cfg: Optional[dict],
                   loss_names: Sequence[str]) -> Optional[GradientBalancer]:
    """A :class:`GradientBalancer` from a ``loss_balance`` config (None:
    no balancer).

    Raises:
        DistillConfigError: an unknown key (names it).
    """
    if cfg is None:
        return None
    cfg = dict(cfg)
    cfg.pop('type', None)
    allowed = {'ratios', 'interval', 'momentum', 'shared', 'loss_shared',
               'max_scale', 'min_scale', 'decay', 'decay_iters'}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise DistillConfigError(
            f'model.loss_balance: unknown key(s) {unknown}; expected some '
            f'of {sorted(allowed)}')
    return GradientBalancer(loss_names, **cfg)


def summed(value) -> torch.Tensor:
    """A loss value as one scalar as mmengine's ``parse_losses`` counts it:
    a tensor's mean, the means of a list's or a dict's values summed."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        parts = [summed(v) for v in value]
        return torch.stack(parts).sum() if parts else torch.zeros(())
    return value.mean()
