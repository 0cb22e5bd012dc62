"""CPU time of each distillation loss and connector of a KD config, timed
alone on the tensors of a real KD step, optionally in a crowd and for
several code trees in one run.

Examples:
    # the losses of a SynthMOT config, as they are
    python tools/benchmark/loss_speed.py \
        configs/kd/cstrack_s2n_kd_synthmot.py --iters 20

    # the MOT17 config at 1088x608 with 60 people a frame, this tree against
    # another checkout (e.g. a git worktree at an older commit), alternated
    python tools/benchmark/loss_speed.py configs/kd/cstrack_yolov5s_kd.py \
        --random-teacher --people 60 --trees . /path/to/old_checkout \
        --rounds 2 --iters 5 --threads 1 --out loss_speed.json

Each measurement builds the distiller of the config (seed 0) and one
training batch (seed 0), runs the teacher and the student forward under
their recorders once per iteration, then times every connector and loss of
the config forward and backward on the recorded tensors, detached
(:func:`mmtrack_kd.apis.speed.time_components`, the "parts timed alone" of
``kd_step_overhead.py``). ``--people N`` first replaces the ground truth of
every frame of the batch by N boxes of a person's shape (seed 0; the other
fields of each instance repeated from the frame's own), so that the
box-dependent work of the losses (one row per target) is timed at a crowd's
size.

With ``--trees A B ...`` each measurement runs in its own process with
``PYTHONPATH`` set to one tree, so ``mmtrack_kd`` is imported from it (this
script and its arguments stay the same); the trees are alternated
``--rounds`` times (the order reversed every other round), and the report
gives per part and tree the median of every round and, per round, the ratio
of each tree's time to the first tree's: the ratios come from one run, the
same machine and load. The JSON (``--out``) holds the command, the date,
the load average, each tree's commit, every measurement and the ratios.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from mmengine.config import DictAction

HERE = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CPU time of each distillation loss and connector')
    parser.add_argument('config', help='a MOTDistiller config')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed iterations per measurement (after one '
                        'warm-up)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='cpu',
                        help='cpu (default): CPU time of the process; '
                        'wall: elapsed time')
    parser.add_argument('--people', type=int, default=None, metavar='N',
                        help='replace the ground truth of every frame by N '
                        'person-shaped boxes (seed 0)')
    parser.add_argument('--random-teacher', action='store_true',
                        help='a teacher of random weights (for configs whose '
                        'teacher is not trained, e.g. the MOT17 ones)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE', help='config overrides, as '
                        'tools/train.py takes them')
    parser.add_argument('--trees', nargs='+', default=None, metavar='DIR',
                        help='code trees to compare (each a checkout whose '
                        'mmtrack_kd package is imported); the first is the '
                        'reference of the ratios')
    parser.add_argument('--rounds', type=int, default=2,
                        help='with --trees: alternations of the trees')
    parser.add_argument('--out', metavar='FILE.json',
                        help='also write the report as JSON')
    parser.add_argument('--worker', action='store_true',
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def crowd(data_samples, people: int, seed: int = 0) -> None:
    """Replace the ground truth of every frame of ``data_samples`` by
    ``people`` person-shaped boxes inside the frame (height 10-40 % of the
    frame's, width 0.4 of the height), in place. Other per-instance fields
    repeat the frame's own instances (a frame without any is refused)."""
    import torch
    from mmengine.structures import InstanceData

    from mmtrack_kd.models.distill.mappings import video_frames
    gen = torch.Generator().manual_seed(seed)
    for i, frame in enumerate(video_frames(data_samples)):
        inst = frame.gt_instances
        k = len(inst)
        if k == 0:
            raise ValueError(f'--people: frame {i} of the batch has no '
                             'ground truth to repeat the fields of')
        shape = frame.metainfo.get('img_shape',
                                   frame.metainfo.get('batch_input_shape'))
        if shape is None:
            raise ValueError(f'--people: frame {i} of the batch has neither '
                             'img_shape nor batch_input_shape in its '
                             'metainfo')
        h_img, w_img = shape[:2]
        idx = torch.arange(people) % k
        new = InstanceData()
        for key, value in inst.items():
            new[key] = value[idx]
        h = h_img * (0.1 + 0.3 * torch.rand(people, generator=gen))
        w = 0.4 * h
        cx = w / 2 + (w_img - w) * torch.rand(people, generator=gen)
        cy = h / 2 + (h_img - h) * torch.rand(people, generator=gen)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2,
                             cy + h / 2], 1)
        old = inst.bboxes
        if hasattr(old, 'tensor'):  # an mmdet box type
            boxes = type(old)(boxes.to(old.tensor))
        else:
            boxes = boxes.to(old)
        new.bboxes = boxes
        frame.gt_instances = new


def measure_once(args) -> Dict[str, float]:
    """Median seconds per call of each ``connector.*`` / ``loss.*`` part
    (forward and backward) and ``losses`` (their sum), in this process."""
    import torch

    from mmtrack_kd.apis.speed import build_distiller_batch, time_components
    from mmtrack_kd.utils.malloc import retain_freed_memory
    sys.path.insert(0, HERE)
    from kd_step_overhead import random_teacher  # noqa: E402
    options = dict(args.cfg_options or {})
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as tools/train.py runs
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_teacher:
            options['model.teacher_ckpt'] = random_teacher(
                args.config, options, osp.join(tmp, 'teacher.pth'))
        model, inputs, samples = build_distiller_batch(args.config, options)
    if args.people:
        crowd(samples, args.people)
    times = time_components(model, inputs, samples, args.iters, args.clock)
    med = {k: statistics.median(v) for k, v in times.items()
           if k.startswith(('connector.', 'loss.'))}
    med['losses'] = sum(v for k, v in med.items() if k.startswith('loss.'))
    return med


def tree_commit(tree: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', tree, 'rev-parse', 'HEAD'],
                             capture_output=True, text=True, check=True)
        dirty = subprocess.run(['git', '-C', tree, 'status', '--porcelain',
                                '--untracked-files=no'],
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')


def run_tree(tree: str, argv: List[str]) -> Dict[str, float]:
    """One measurement in a process that imports ``mmtrack_kd`` from
    ``tree``."""
    env = dict(os.environ)
    env['PYTHONPATH'] = osp.abspath(tree) + (
        os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    proc = subprocess.run([sys.executable, osp.abspath(__file__), '--worker']
                          + argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'loss_speed: the measurement of tree {tree} '
                           f'failed:\n{proc.stderr[-3000:]}')
    found = osp.realpath(proc.stdout.strip().splitlines()[0])
    if not found.startswith(osp.realpath(tree) + os.sep):
        raise RuntimeError(f'loss_speed: tree {tree}: mmtrack_kd was '
                           f'imported from {found}, not from the tree '
                           '(an installed copy shadows it?)')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_table(trees: List[str], runs: Dict[str, List[dict]]) -> str:
    parts = sorted({k for r in runs.values() for m in r for k in m})
    head = '| part | ' + ' | '.join(f'{t} ms (per round)' for t in trees)
    if len(trees) > 1:
        head += ' | ' + ' | '.join(f'{t} / {trees[0]} (per round)'
                                   for t in trees[1:])
    head += ' |'
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for part in parts:
        row = [part]
        for t in trees:
            row.append(', '.join(f'{1e3 * m[part]:.2f}' if part in m else '-'
                                 for m in runs[t]))
        for t in trees[1:]:
            row.append(', '.join(
                f'{m[part] / r[part]:.2f}' if part in m and part in r and
                r[part] > 0 else '-'
                for m, r in zip(runs[t], runs[trees[0]])))
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        import mmtrack_kd
        print(osp.dirname(mmtrack_kd.__file__))
        print(json.dumps(measure_once(args)))
        return 0
    if not osp.isfile(args.config):
        print(f'loss_speed: config file not found: {args.config}',
              file=sys.stderr)
        return 2
    if args.iters < 1 or args.rounds < 1:
        print('loss_speed: --iters and --rounds must be >= 1',
              file=sys.stderr)
        return 2
    if args.people is not None and args.people < 1:
        print('loss_speed: --people must be >= 1', file=sys.stderr)
        return 2
    trees = args.trees
    if trees and len({osp.realpath(t) for t in trees}) < len(trees):
        print(f'loss_speed: --trees {" ".join(trees)}: a tree is listed '
              'twice', file=sys.stderr)
        return 2
    for tree in trees or []:
        if not osp.isdir(osp.join(tree, 'mmtrack_kd')):
            print(f'loss_speed: --trees {tree}: no mmtrack_kd package there',
                  file=sys.stderr)
            return 2
    runs: Dict[str, List[dict]] = {}
    if not trees:
        trees = ['.']
        runs['.'] = [measure_once(args)]
    else:
        for r in range(args.rounds):
            for tree in (trees if r % 2 == 0 else trees[::-1]):
                # the same arguments: a worker measures once and ignores
                # --trees, --rounds and --out
                runs.setdefault(tree, []).append(run_tree(tree, argv))
    print(format_table(trees, runs))
    if args.out:
        from mmtrack_kd.apis.speed import write_json
        doc = dict(
            command=['python', 'tools/benchmark/loss_speed.py'] + argv,
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec='seconds'),
            load_average=list(os.getloadavg()),
            config=args.config, people=args.people, iters=args.iters,
            threads=args.threads, clock=args.clock,
            trees={t: tree_commit(t) for t in trees},
            seconds=runs,
            ratios={t: [{k: m[k] / r[k] for k in m if r.get(k)}
                        for m, r in zip(runs[t], runs[trees[0]])]
                    for t in trees[1:]})
        write_json(doc, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
