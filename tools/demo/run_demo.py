"""The whole story on SynthMOT in one command (``make demo``).

1. makes the demo's SynthMOT data (if missing): 4 training sequences and
   5 test sequences of 60 frames at 320x192,
2. trains a teacher (CSTrack, widen 0.25), a student at half its width and
   the same student taught by the teacher (prediction-difference loss),
3. tracks the test split with each and scores it (MOTA, IDF1, MT, HOTA,
   IDs, parameters),
4. times the three models' tracking in one interleaved run on a fixed clip,
5. prints and writes a table, the demo's targets, one closing sentence with
   the numbers, a plot, and the student and the KD student side by side on
   a test sequence (GIF and MP4, ids drawn).

Every training and test runs the project's own command-line tools, whose
logs go to ``OUT/logs/``; a finished training is skipped when the demo is
run again. See :func:`mmtrack_kd.apis.demo.run_demo` and docs/demo.md.

Example:
    python tools/demo/run_demo.py --out outputs/demo
"""
import argparse
import os

from mmtrack_kd.apis.demo import (
    DEMO_DATA,
    STUDENT_EPOCHS,
    TEACHER_EPOCHS,
    run_demo,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='outputs/demo', help='output folder')
    p.add_argument('--data', default=DEMO_DATA,
                   help='SynthMOT root (made if absent)')
    p.add_argument('--epochs', type=int, default=STUDENT_EPOCHS,
                   help='training epochs of the student and the KD student')
    p.add_argument('--teacher-epochs', type=int, default=TEACHER_EPOCHS,
                   help='training epochs of the teacher')
    p.add_argument('--seed', type=int, default=0, help='training seed')
    p.add_argument('--threads', type=int, default=int(
        os.environ.get('OMP_NUM_THREADS', '2')),
        help='CPU threads for the demo; with 2 or more, two steps run side '
        'by side (default: $OMP_NUM_THREADS, else 2)')
    p.add_argument('--fps-frames', type=int, default=100,
                   help='length of the FPS clip (5 warm-up frames)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument(
        '--data-knobs', nargs='*', default=[],
        help='SynthMOT knobs over the demo\'s, e.g. num_frames=10')
    args = p.parse_args(argv)
    for name in ('epochs', 'teacher_epochs', 'threads'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.fps_frames < 6:
        p.error('--fps-frames must exceed the 5 warm-up frames')
    return args


def main(argv=None):
    args = parse_args(argv)
    run_demo(out=args.out, data=args.data, epochs=args.epochs,
             teacher_epochs=args.teacher_epochs, seed=args.seed,
             threads=args.threads, show_progress=not args.no_progress,
             data_knobs=args.data_knobs, fps_frames=args.fps_frames)


if __name__ == '__main__':
    main()
