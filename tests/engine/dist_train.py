"""Test launcher: ``tools/train.py`` with
``mmtrack_kd.engine.auto_dist_backend`` applied to the config before the
runner is built (what tools/train.py itself should do; this wrapper is
harmless once it does, the function being idempotent).

It also registers ``DumpTeacherStateHook`` for the distillation test.

Usage: torchrun --nproc_per_node=2 tests/engine/dist_train.py CONFIG ...
"""
import importlib.util
import os.path as osp
import sys

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
    spec = importlib.util.spec_from_file_location(
        'mmtrack_kd_train_tool', osp.join(ROOT, 'tools/train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    from mmtrack_kd.engine import auto_dist_backend
    build_cfg = train.build_cfg

    def build_cfg_with_backend(args):
        cfg = build_cfg(args)
        auto_dist_backend(cfg)
        return cfg

    train.build_cfg = build_cfg_with_backend
    return train.main()


if __name__ == '__main__':
    sys.exit(main())
