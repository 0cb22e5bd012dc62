"""Train a tracker or a distiller from an mmengine config.

Example:
    python tools/train.py configs/cstrack/cstrack_yolov5n_synthmot.py
    python tools/train.py configs/kd/cstrack_yolov5s_kd.py \
        --work-dir work_dirs/kd
    torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch
"""
import argparse
import sys

from mmtrack_kd.apis.train import train_model
from mmtrack_kd.utils.malloc import retain_freed_memory
from mmtrack_kd.utils.tools import add_common_args, parse_common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a MOT model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--epochs',
        type=int,
        help='train for this many epochs; epoch-based LR schedules are '
        'stretched to match')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision training')
    parser.add_argument(
        '--release-memory',
        action='store_true',
        help="keep glibc's default of handing freed memory back to the OS "
        'between steps (by default it stays in the process, which spares '
        'the page faults of every step; see mmtrack_kd.utils.malloc)')
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.release_memory:
        retain_freed_memory()
    train_model(args.config, work_dir=args.work_dir,
                cfg_options=args.cfg_options, launcher=args.launcher,
                resume=args.resume, epochs=args.epochs, amp=args.amp)


if __name__ == '__main__':
    sys.exit(main())
