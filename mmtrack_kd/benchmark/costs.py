"""Measuring the per-iteration costs that ``--dry-run`` multiplies out
(``costs`` of ``presets.yaml``): ``kd_benchmark.py --measure-costs N``.

The teacher, the plain student and the student under ``ours`` of the
plan's family and preset are each trained for ``N`` iterations, one
subprocess each (``python -m mmtrack_kd.benchmark.costs CONFIG N OUT``),
with the benchmark's generated configs (the KD run learns from a teacher
of initial weights: the cost of a step does not depend on them). A hook
takes the process CPU time and the wall time at the end of every
iteration, so an interval covers loading the batch, the training step and
the hooks; the first two intervals (warm-up) are left out and the median
of the others is reported. The training stops after ``N`` iterations
(the checkpoints of the epochs that ended before are saved, in
``OUT/costs/``).

Nothing of the run folder's records is touched: the configs, the teacher
weights and the logs go to ``OUT/costs/``.
"""
import json
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List

from .plan import TEACHER_SEED

# iterations left out of the median (warm-up)
WARMUP = 2


class _Stop(Exception):
    """Raised by the timing hook after the wanted iterations."""


def time_training(config: str, iters: int, work_dir: str) -> Dict[str, float]:
    """Train ``config`` for ``iters`` iterations in this process; the
    median CPU and wall seconds per iteration (see the module doc).

    Raises:
        ValueError: ``iters`` leaves no interval after the warm-up.
    """
    if iters < WARMUP + 2:
        raise ValueError(f'--measure-costs: at least {WARMUP + 2} '
                         f'iterations, got {iters}')
    from mmengine.hooks import Hook

    from mmtrack_kd.apis.train import build_runner, build_train_config

    marks: List[tuple] = []

    class TimingHook(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            marks.append((time.process_time(), time.perf_counter()))
            if len(marks) > iters:
                raise _Stop

    cfg = build_train_config(config, work_dir=work_dir)
    runner = build_runner(cfg)
    runner.register_hook(TimingHook())
    marks.append((time.process_time(), time.perf_counter()))
    try:
        runner.train()
    except _Stop:
        pass
    steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
    kept = steps[WARMUP:]
    if len(steps) < iters:
        raise RuntimeError(f'{config}: only {len(steps)} iterations ran '
                           f'(the training is shorter than {iters})')
    return dict(cpu_s_per_iter=statistics.median(s[0] for s in kept),
                wall_s_per_iter=statistics.median(s[1] for s in kept),
                iters=len(kept))


def measure_costs(bench, iters: int, method: str = 'ours') -> dict:
    """Time the teacher, the student and ``method`` of a benchmark's
    family and preset (``bench``: a :class:`~.runner.Benchmark`), each in
    its own subprocess; return the measurements and the ``costs`` entry
    they give (``sec_per_iter``: the student's CPU seconds per
    iteration; ``kd_factor``, ``teacher_factor``: the KD and teacher
    iterations over the student's)."""
    import os

    from . import configs
    if iters < WARMUP + 2:
        raise ValueError(f'--measure-costs: at least {WARMUP + 2} '
                         f'iterations, got {iters}')
    from .init_state import build_initial_state, save_state
    from .runner import run_cmd
    work = osp.join(bench.out, 'costs')
    os.makedirs(work, exist_ok=True)
    bench.make_data()
    teacher_cfg = configs.model_cfg(bench, 'teacher', TEACHER_SEED)
    student_cfg = configs.model_cfg(bench, 'student', 0)
    bench.make_init(0)
    ckpt = osp.join(work, 'teacher_init.pth')
    save_state(build_initial_state(teacher_cfg, TEACHER_SEED), ckpt,
               dict(note='initial weights, for timing only'))
    kd_cfg = configs.kd_cfg(bench, method, 0, teacher_cfg, ckpt)
    out = {}
    for role, cfg in (('student', student_cfg), (method, kd_cfg),
                      ('teacher', teacher_cfg)):
        res = osp.join(work, f'{role}.json')
        run_cmd(['-m', 'mmtrack_kd.benchmark.costs', cfg, str(iters), res,
                 osp.join(work, f'work_{role}')],
                osp.join(work, f'{role}.log'), bench.threads)
        with open(res) as f:
            out[role] = json.load(f)
    student = out['student']['cpu_s_per_iter']
    return dict(
        family=bench.family.name, preset=bench.preset_name, iters=iters,
        measured=out,
        costs=dict(sec_per_iter=round(student, 3),
                   kd_factor=round(out[method]['cpu_s_per_iter'] / student,
                                   2),
                   teacher_factor=round(
                       out['teacher']['cpu_s_per_iter'] / student, 2)))


def main(argv=None) -> int:
    """``python -m mmtrack_kd.benchmark.costs CONFIG ITERS OUT WORK``."""
    config, iters, out, work = (argv or sys.argv[1:])
    import mmtrack_kd  # noqa: F401 (registers the models)
    result = time_training(config, int(iters), work)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
