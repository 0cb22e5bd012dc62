"""Stop training at the first non-finite loss, before it reaches the
weights."""
import math
from typing import Dict, Optional, Sequence, Union

import torch
import torch.distributed as torch_dist
from mmdet.registry import HOOKS
from mmengine.dist import get_world_size, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf during training.

    Attributes:
        epoch (int): 1-based epoch of the failing iteration.
        iter (int): 1-based global iteration that failed.
        terms (dict): the non-finite loss terms, name -> float value.
    """

    def __init__(self, message: str, epoch: int, iter: int,
                 terms: Dict[str, float]) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.iter = iter
        self.terms = terms


def _term_value(value: Union[torch.Tensor, Sequence[torch.Tensor]]) -> float:
    """Sum of a loss entry as mmengine's ``parse_losses`` sums it: a tensor
    is averaged, a list of tensors is the sum of their means."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(sum(v.detach().float().mean() for v in value))


def non_finite_terms(losses: dict) -> Dict[str, float]:
    """The loss terms of ``losses`` whose value is NaN or +-Inf.

    Only the keys that mmengine adds to the total loss are checked: those
    containing ``'loss'`` whose value is a tensor or a list of tensors.

    Args:
        losses (dict): the model's ``loss()`` output, name -> Tensor (any
            shape) or list of Tensors.

    Returns:
        dict: name -> value (float, nan or +-inf) of each non-finite term,
        in the order of ``losses``.
    """
    bad = {}
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        if isinstance(value, torch.Tensor) or (
                isinstance(value, (list, tuple)) and value
                and all(isinstance(v, torch.Tensor) for v in value)):
            total = _term_value(value)
            if not math.isfinite(total):
                bad[name] = total
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` as soon as a training loss term is
    NaN or Inf, before the backward pass, so that no non-finite update is
    applied and no checkpoint is written after it.

    The check runs in a forward hook on the model (the unwrapped module
    under DDP): the output of ``model(..., mode='loss')`` is the dict of
    loss terms, which is checked term by term. The error names the epoch,
    the iteration and the non-finite terms, and points to the last saved
    checkpoint. The forward hook is added in ``before_train`` and removed in
    ``after_train``, or just before the error is raised (mmengine has no
    hook stage for a failed run).

    With several processes every rank learns whether some rank saw a
    non-finite loss (one all-reduce of a scalar per iteration), so that all
    ranks stop at the same iteration instead of the healthy ranks hanging in
    the gradient all-reduce.

    A finite loss can still give non-finite gradients (e.g. ``sqrt`` at 0);
    then the update is applied. When gradient clipping logs the gradient
    norm (``optim_wrapper.clip_grad``), ``after_train_iter`` checks it and
    raises before the checkpoint hook (lower priority) can save the damaged
    weights. It is skipped with ``AmpOptimWrapper``, whose loss scaler skips
    steps with non-finite gradients by design.

    Args:
        sync_ranks (bool): agree on the failure across ranks when training
            is distributed. Defaults to True.
        check_grad_norm (bool): check the logged gradient norm after each
            iteration. Defaults to True.

    Example:
        >>> custom_hooks = [dict(type='NonFiniteLossHook')]
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 sync_ranks: bool = True,
                 check_grad_norm: bool = True) -> None:
        self.sync_ranks = sync_ranks
        self.check_grad_norm = check_grad_norm
        self._handle = None
        self._runner = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._runner = runner
        self._remove()
        self._handle = model.register_forward_hook(self._check_output)

    def after_train(self, runner) -> None:
        self._remove()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.check_grad_norm or isinstance(runner.optim_wrapper,
                                                  AmpOptimWrapper):
            return
        # the norm is all-reduced with the gradients: equal on all ranks
        for name in ('grad_norm', 'grad_value'):
            buffer = runner.message_hub.log_scalars.get(f'train/{name}')
            if buffer is None or not len(buffer.data[0]):
                continue
            value = float(buffer.current())
            if not math.isfinite(value):
                self._raise({name: value}, applied=True)

    def _remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _check_output(self, module: torch.nn.Module, args, output) -> None:
        """Forward hook: check a training loss dict (other outputs, e.g. the
        predictions of validation, pass unchecked)."""
        if not module.training or not isinstance(output, dict):
            return
        bad = non_finite_terms(output)
        if self.sync_ranks and is_distributed() and get_world_size() > 1:
            device = (torch.device('cuda', torch.cuda.current_device())
                      if torch_dist.get_backend() == 'nccl' else
                      torch.device('cpu'))
            flag = torch.tensor([float(bool(bad))], device=device)
            torch_dist.all_reduce(flag)
            if flag.item() > 0 and not bad:
                self._raise(None)
        if bad:
            self._raise(bad)

    def _raise(self,
               bad: Optional[Dict[str, float]],
               applied: bool = False) -> None:
        runner = self._runner
        self._remove()
        epoch, it = runner.epoch + 1, runner.iter + 1
        if bad is None:
            what = 'another rank saw a non-finite loss'
            terms: Dict[str, float] = {}
        else:
            kind = 'gradient' if applied else 'loss'
            what = f'non-finite {kind} ' + ', '.join(
                f'{name}={value}' for name, value in bad.items())
            terms = bad
        last = runner.message_hub.get_info('last_ckpt', None)
        where = (f'the last checkpoint is {last}' if last else
                 'no checkpoint was saved in this run')
        done = ('the update was applied in memory but is not saved'
                if applied else 'training stopped before applying the update')
        raise NonFiniteLossError(
            f'{what} at epoch {epoch}, iteration {it} (global, 1-based); '
            f'{done}, {where}',
            epoch=epoch, iter=it, terms=terms)

