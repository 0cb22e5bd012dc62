"""Cost of a KD training step against the plain student step.

Example:
    python tools/benchmark/kd_step_overhead.py \
        configs/kd/cstrack_s2n_kd_synthmot.py --iters 10 \
        --cfg-options model.teacher_ckpt=work_dirs/s/epoch_12.pth

On one training batch of the config, in one process, interleaved, after
one untimed warm-up of each:

- ``student``: ``student.loss`` + backward (what training without KD does);
- ``kd``: ``MOTDistiller.loss`` + backward (student, teacher forward,
  recorders, connectors, distillation losses);
- ``teacher``: the teacher's tensor forward under ``no_grad`` alone.

Prints the median times and the ratios ``kd / student`` and
``(kd - teacher) / student`` (the overhead beyond the teacher's forward:
recorders, connectors and the losses with their backward). The optimizer
update is left out (equal for both, apart from the connector parameters).
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _loss_step(fn: Callable[[], Dict[str, torch.Tensor]],
               params: List[torch.nn.Parameter]) -> None:
    losses = fn()
    total = sum(v.sum() for k, v in losses.items()
                if k.startswith('loss') and isinstance(v, torch.Tensor))
    total.backward()
    for p in params:
        p.grad = None


def time_steps(model, inputs: torch.Tensor, data_samples,
               iters: int) -> Dict[str, List[float]]:
    """Seconds per call of the three steps, ``iters`` times each,
    interleaved (see module docstring)."""
    from mmtrack_kd.models.distill.distiller import tensor_forward
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def student():
        _loss_step(lambda: model.student.loss(inputs, data_samples), params)

    def kd():
        _loss_step(lambda: model.loss(inputs, data_samples), params)

    def teacher():
        with torch.no_grad():
            tensor_forward(model.teacher, model._teacher_inputs(inputs))

    steps = dict(student=student, kd=kd, teacher=teacher)
    for fn in steps.values():  # warm-up
        fn()
    times = {k: [] for k in steps}
    for _ in range(iters):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def build(config: str, cfg_options=None):
    """The distiller of ``config`` and one pre-processed training batch."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmtrack_kd  # noqa: F401
    from mmtrack_kd.utils import resolve_num_ids
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') != 'MOTDistiller':
        raise ValueError(f'{config}: model.type must be MOTDistiller, got '
                         f'{cfg.model.get("type")!r}')
    resolve_num_ids(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch = next(iter(loader))
    data = model.data_preprocessor(batch, True)
    return model, data['inputs'], data['data_samples']


def main(argv=None) -> int:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='KD training-step overhead vs the student step')
    parser.add_argument('config', help='a MOTDistiller config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        print(f'kd_step_overhead: config file not found: {args.config}',
              file=sys.stderr)
        return 2
    if args.iters < 1:
        print('kd_step_overhead: --iters must be >= 1', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model, inputs, samples = build(args.config, args.cfg_options)
    times = time_steps(model, inputs, samples, args.iters)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'torch threads: {torch.get_num_threads()}; batch '
          f'{tuple(inputs.shape)}; {args.iters} iterations, medians')
    for k in ('student', 'kd', 'teacher'):
        print(f'{k:>8}: {1e3 * med[k]:.1f} ms')
    print(f'ratio kd / student: {med["kd"] / med["student"]:.3f}')
    print(f'ratio teacher forward / student: '
          f'{med["teacher"] / med["student"]:.3f}')
    print(f'ratio (kd - teacher) / student: '
          f'{(med["kd"] - med["teacher"]) / med["student"]:.3f} '
          f'(overhead beyond the teacher forward: '
          f'{(med["kd"] - med["teacher"] - med["student"]) / med["student"]:+.3f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
