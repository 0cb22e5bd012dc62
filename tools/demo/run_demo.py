"""The whole story on SynthMOT in one command (``make demo``).

1. makes the SynthMOT ``quick`` data (if missing),
2. trains a teacher (CSTrack-S), a student (CSTrack-N) and a KD student
   (CSTrack-N taught by the teacher with the three losses of this project),
   all with the same schedule and seed,
3. tracks the test split with each and scores it (MOTA, IDF1, MT, HOTA,
   FPS, parameters),
4. prints a table, writes a plot and a tracking GIF of the KD student.

Every step runs the project's own command-line tools, whose logs go to
``OUT/logs/``; a finished step is skipped when the demo is run again.

Example:
    python tools/demo/run_demo.py --out outputs/demo
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER_CFG = 'configs/cstrack/cstrack_yolov5s_synthmot.py'
STUDENT_CFG = 'configs/cstrack/cstrack_yolov5n_synthmot.py'
KD_CFG = 'configs/kd/cstrack_s2n_kd_synthmot.py'
METRICS = (('MOTA', 'mot/MOTA'), ('IDF1', 'mot/IDF1'), ('MT%', 'mot/MT%'),
           ('HOTA', 'mot/HOTA'), ('IDs', 'mot/IDs'), ('FPS', 'FPS'))
ITER_RE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')


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


class Step:
    """Run one tool as a subprocess with its log in a file; a tqdm bar
    follows training iterations in the log."""

    def __init__(self, args):
        self.args = args
        self.logs = osp.join(args.out, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
                        MKL_NUM_THREADS=str(args.threads))

    def __call__(self, name, cmd, total_iters=None):
        log = osp.join(self.logs, f'{name}.log')
        t0 = time.time()
        bar = None
        if total_iters and not self.args.no_progress:
            from tqdm import tqdm
            bar = tqdm(total=total_iters, desc=f'{name:>10}', unit='it')
        else:
            print(f'[demo] {name} ...', flush=True)
        with open(log, 'w') as f:
            proc = subprocess.Popen([sys.executable] + cmd, cwd=ROOT,
                                    env=self.env, stdout=f,
                                    stderr=subprocess.STDOUT)
            done = 0
            while proc.poll() is None:
                time.sleep(2)
                if bar is not None:
                    done = max(done, _progress(log))
                    bar.n = min(done, total_iters)
                    bar.refresh()
        if bar is not None:
            bar.n = total_iters if proc.returncode == 0 else bar.n
            bar.close()
        if proc.returncode != 0:
            tail = open(log).read()[-3000:]
            raise SystemExit(f'[demo] step {name!r} failed (exit '
                             f'{proc.returncode}); log: {log}\n{tail}')
        return time.time() - t0


def _progress(log):
    """Global training iteration reached, from the last mmengine line."""
    last = 0
    try:
        with open(log) as f:
            for m in ITER_RE.finditer(f.read()):
                epoch, it, per = map(int, m.groups())
                last = (epoch - 1) * per + it
    except OSError:
        pass
    return last


def iters_per_epoch(data_root, batch_size=4):
    with open(osp.join(data_root, 'annotations',
                       'train_cocoformat.json')) as f:
        n = len(json.load(f)['images'])
    return -(-n // batch_size)


def count_params(ckpt):
    """Learnable parameters of a plain model checkpoint (BN statistics and
    counters excluded)."""
    from mmtrack_kd.apis.inference import read_state_dict
    state = read_state_dict(ckpt)
    return sum(v.numel() for k, v in state.items()
               if v.is_floating_point() and 'running_' not in k)


def main(argv=None):
    args = parse_args(argv)
    os.chdir(ROOT)
    out = args.out
    os.makedirs(out, exist_ok=True)
    step = Step(args)
    t_start = time.time()

    if not osp.isfile(osp.join(args.data, 'annotations',
                               'test_cocoformat.json')):
        knobs = []
        for kv in args.data_knobs:
            key, _, value = kv.partition('=')
            knobs += ['--' + key.replace('_', '-'), value]
        step('data', ['tools/data/make_synthmot.py', '--out', args.data,
                      '--preset', 'quick', '--seed', '0', '--no-progress'] +
             knobs)
    data = args.data.rstrip('/') + '/'
    data_opts = [f'{k}.dataset.data_root={data}' for k in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]
    common = ['--epochs', str(args.epochs), '--cfg-options',
              f'randomness.seed={args.seed}',
              'train_cfg.val_interval=1000'] + data_opts
    total = args.epochs * iters_per_epoch(args.data)
    ckpt_name = f'epoch_{args.epochs}.pth'

    runs = {}
    for name, cfg, extra in (
            ('teacher', TEACHER_CFG, []),
            ('student', STUDENT_CFG, []),
            ('kd_student', KD_CFG, None)):
        work = osp.join(out, name)
        ckpt = osp.join(work, ckpt_name)
        if extra is None:  # the KD student learns from the teacher
            extra = [f'model.teacher_ckpt={runs["teacher"]["ckpt"]}']
        if not osp.isfile(ckpt):
            runs.setdefault(name, {})['train_s'] = step(
                f'{name}', ['tools/train.py', cfg, '--work-dir', work] +
                common + extra, total_iters=total)
        runs.setdefault(name, {}).update(cfg=cfg, ckpt=ckpt)

    # the KD checkpoint holds the student and connectors: extract the student
    kd_plain = osp.join(out, 'kd_student', 'student_only.pth')
    step('extract', ['tools/extract_student.py', runs['kd_student']['ckpt'],
                     kd_plain])
    runs['kd_student'].update(cfg=STUDENT_CFG, ckpt=kd_plain)

    for name, run in runs.items():
        res = osp.join(out, name, 'test_metrics.json')
        step(f'test_{name}', ['tools/test.py', run['cfg'], run['ckpt'],
                              '--work-dir', osp.join(out, name, 'test'),
                              '--out', res, '--results-dir',
                              osp.join(out, name, 'results'),
                              '--cfg-options'] + data_opts)
        with open(res) as f:
            run['metrics'] = json.load(f)
        run['params_M'] = count_params(run['ckpt']) / 1e6

    table = format_table(runs)
    print('\n' + table)
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(osp.join(out, 'summary.md')) as f:
        f.write(table + '\n')
    with atomic_write(osp.join(out, 'summary.json')) as f:
        json.dump(runs, f, indent=2, default=float)
    plot = write_plot(runs, osp.join(out, 'demo_metrics.png'))

    seq_dir = osp.join(args.data, 'test')
    seq = sorted(os.listdir(seq_dir))[0]
    gif = osp.join(out, 'kd_student_tracks.gif')
    step('video', ['tools/demo/track_video.py',
                   osp.join(seq_dir, seq, 'img1'), STUDENT_CFG, kd_plain,
                   '--out', gif, '--no-progress', '--fps', '10'])
    print(f'\n[demo] done in {(time.time() - t_start) / 60:.1f} min')
    print(f'[demo] table: {osp.join(out, "summary.md")}')
    print(f'[demo] plot:  {plot}')
    print(f'[demo] video: {gif}')
    print(f'[demo] logs:  {osp.join(out, "logs")}')


def format_table(runs):
    head = ['model', 'params (M)'] + [m for m, _ in METRICS]
    rows = ['| ' + ' | '.join(head) + ' |',
            '|' + '---|' * len(head)]
    for name, run in runs.items():
        m = run['metrics']
        cells = [name, f'{run["params_M"]:.2f}']
        for _, key in METRICS:
            v = m.get(key)
            cells.append('-' if v is None else (
                f'{v:.1f}' if isinstance(v, float) else str(v)))
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def write_plot(runs, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(runs)
    keys = [('MOTA', 'mot/MOTA'), ('IDF1', 'mot/IDF1'), ('HOTA', 'mot/HOTA'),
            ('MT%', 'mot/MT%')]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [runs[name]['metrics'].get(k) or 0.0 for _, k in keys]
        axes[0].bar([j + i * width for j in range(len(keys))], vals, width,
                    label=name)
    axes[0].set_xticks([j + width * (len(names) - 1) / 2
                        for j in range(len(keys))])
    axes[0].set_xticklabels([k for k, _ in keys])
    axes[0].set_ylabel('score (test split)')
    axes[0].legend()
    for name in names:
        axes[1].scatter(runs[name]['metrics'].get('FPS', 0),
                        runs[name]['metrics'].get('mot/IDF1', 0), s=60)
        axes[1].annotate(name, (runs[name]['metrics'].get('FPS', 0),
                                runs[name]['metrics'].get('mot/IDF1', 0)))
    axes[1].set_xlabel('tracking FPS (CPU, batch 1)')
    axes[1].set_ylabel('IDF1')
    fig.suptitle('SynthMOT quick: teacher, student, KD student')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == '__main__':
    main()
