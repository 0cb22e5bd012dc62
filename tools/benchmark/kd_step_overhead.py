"""Cost of a KD training step against the plain student step.

Example:
    python tools/benchmark/kd_step_overhead.py \
        configs/kd/cstrack_s2n_kd_synthmot.py --iters 10 \
        --cfg-options model.teacher_ckpt=work_dirs/s/epoch_12.pth

On one training batch of the config, in one process, interleaved, after
one untimed warm-up of each: ``student`` (``student.loss`` + backward),
``kd`` (``MOTDistiller.loss`` + backward) and ``teacher`` (the teacher's
tensor forward under ``no_grad``). Prints the median times and the ratios
``kd / student`` and ``(kd - teacher) / student`` (the overhead beyond the
teacher's forward), then the parts of the KD step (recorders, batch data,
each connector and each loss, forward and backward) timed alone. With
``--out FILE`` the report is also written as JSON (key
``overhead_beyond_teacher``: a fraction of a student step). See
:mod:`mmtrack_kd.apis.speed`.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from mmtrack_kd.apis.speed import report_kd_step_overhead


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='KD training-step overhead vs the student step')
    parser.add_argument('config', help='a MOTDistiller config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--out', metavar='FILE.json',
                        help='also write the report as JSON')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='wall: elapsed time (default); cpu: CPU time '
                        'of the process, steadier on a shared machine')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        print(f'kd_step_overhead: config file not found: {args.config}',
              file=sys.stderr)
        return 2
    if args.iters < 1:
        print('kd_step_overhead: --iters must be >= 1', file=sys.stderr)
        return 2
    command = ['python', 'tools/benchmark/kd_step_overhead.py'] + list(
        sys.argv[1:] if argv is None else argv)
    print(report_kd_step_overhead(args.config, args.iters, args.cfg_options,
                                  args.threads, args.out, command,
                                  args.clock))
    return 0


if __name__ == '__main__':
    sys.exit(main())
