"""Test launcher: what ``tools/train.py`` does (``train_model``, whose
config loading applies ``mmtrack_kd.engine.auto_dist_backend``), with
``DumpTeacherStateHook`` registered for the distillation test.

Usage: torchrun --nproc_per_node=2 tests/engine/dist_train.py CONFIG \
    --launcher pytorch [--work-dir DIR] [--cfg-options k=v ...]
"""
import argparse
import os.path as osp
import sys

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmtrack_kd.apis.train import train_model
from mmtrack_kd.utils.tools import add_common_args, parse_common


@HOOKS.register_module()
class DumpTeacherStateHook(Hook):
    """After training, save the state of a distiller's frozen teacher to
    ``work_dir/rank{RANK}_teacher.pth`` on every rank: its parameters and
    buffers (``state``), the names of parameters that hold a gradient
    (``with_grad``) or require one (``requires_grad``), whether it is in
    training mode, and the names of teacher parameters that the DDP wrapper
    or the optimizer see (``in_ddp``, ``in_optim``; both should be empty).
    """

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        teacher = model.teacher
        named = dict(teacher.named_parameters())
        ids = {id(p): n for n, p in named.items()}
        optim_ids = {
            id(p)
            for g in runner.optim_wrapper.optimizer.param_groups
            for p in g['params']
        }
        torch.save(
            dict(
                state={k: v.detach().cpu().clone()
                       for k, v in teacher.state_dict().items()},
                with_grad=[n for n, p in named.items() if p.grad is not None],
                requires_grad=[n for n, p in named.items() if p.requires_grad],
                training=any(m.training for m in teacher.modules()),
                in_ddp=[ids[id(p)] for p in runner.model.parameters()
                        if id(p) in ids],
                in_optim=[n for i, n in ids.items() if i in optim_ids]),
            osp.join(runner.work_dir, f'rank{get_rank()}_teacher.pth'))


def main():
    parser = argparse.ArgumentParser(description='Train (test launcher)')
    parser.add_argument('config', help='train config file path')
    add_common_args(parser)
    args = parse_common(parser)
    train_model(args.config, work_dir=args.work_dir,
                cfg_options=args.cfg_options, launcher=args.launcher)


if __name__ == '__main__':
    sys.exit(main())
