"""Test helper imported by the distributed training test through
``custom_imports``: each rank saves its final parameters."""
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
