"""The whole story on SynthMOT in one command (``make demo``).

1. makes the SynthMOT ``quick`` data (if missing),
2. trains a teacher (CSTrack-S), a student (CSTrack-N) and a KD student
   (CSTrack-N taught by the teacher with the three losses of this project),
   all with the same schedule and seed,
3. tracks the test split with each and scores it (MOTA, IDF1, MT, HOTA,
   FPS, parameters),
4. prints a table, writes a plot and a tracking GIF of the KD student.

Every step runs the project's own command-line tools, whose logs go to
``OUT/logs/``; a finished step is skipped when the demo is run again. See
:func:`mmtrack_kd.apis.demo.run_demo`.

Example:
    python tools/demo/run_demo.py --out outputs/demo
"""
import argparse
import os

from mmtrack_kd.apis.demo import run_demo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='outputs/demo', help='output folder')
    p.add_argument('--data', default='data/synthmot_quick',
                   help='SynthMOT root (made with --preset quick if absent)')
    p.add_argument('--epochs', type=int, default=8,
                   help='training epochs of every model')
    p.add_argument('--seed', type=int, default=0, help='training seed')
    p.add_argument('--threads', type=int, default=int(
        os.environ.get('OMP_NUM_THREADS', '2')), help='torch threads')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument(
        '--data-knobs', nargs='*', default=[],
        help='SynthMOT knobs for the generated data, e.g. num_frames=10 '
        '(the default is the quick preset as it is)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run_demo(out=args.out, data=args.data, epochs=args.epochs,
             seed=args.seed, threads=args.threads,
             show_progress=not args.no_progress, data_knobs=args.data_knobs)


if __name__ == '__main__':
    main()
