"""Test-only hooks imported by the distributed training tests through
``custom_imports``: save each rank's final parameters, inject a NaN loss on
one rank."""
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class DumpRankParamsHook(Hook):
    """Save ``{name: parameter}`` of the unwrapped model to
    ``work_dir/rank{RANK}_params.pth`` after training, on every rank."""

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        params = {k: v.detach().cpu() for k, v in model.named_parameters()}
        torch.save(
            dict(params=params, wrapped=is_model_wrapper(runner.model),
                 iter=runner.iter),
            osp.join(runner.work_dir, f'rank{get_rank()}_params.pth'))


@HOOKS.register_module()
class InjectNaNLossHook(Hook):
    """Multiply ``loss_id`` by NaN on one rank at one iteration (0-based
    global ``runner.iter``). Its forward hook is added in ``before_run``,
    ahead of ``NonFiniteLossHook``'s (``before_train``), so the check sees
    the NaN."""

    def __init__(self, rank: int = 1, iteration: int = 1) -> None:
        self.rank = rank
        self.iteration = iteration

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model

        def inject(module, args, output):
            if (module.training and isinstance(output, dict)
                    and get_rank() == self.rank
                    and runner.iter == self.iteration):
                output = dict(output)
                output['loss_id'] = output['loss_id'] * float('nan')
                return output
            return None

        model.register_forward_hook(inject)
