"""The knowledge-distillation benchmark on SynthMOT.

Trains the teacher, the student without KD and the student with every KD
method (ours, its ablations, the baselines) on identical data, schedule and
seeds, evaluates each model on the val and test splits, and writes
``results.json``, ``results.md`` and PNG plots. See docs/benchmark.md.

Example:
    python tools/benchmark/kd_benchmark.py --preset quick --seeds 1 \
        --out outputs/bench_quick
    python tools/benchmark/kd_benchmark.py --preset full --seeds 3 \
        --out outputs/bench_full --dry-run

Every finished (method, seed) is recorded atomically in
``OUT/records/METHOD__seedS.json`` and skipped on a rerun; a training that
was killed half-way restarts from scratch, or resumes from its last
checkpoint with ``--resume``.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import pprint
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CFG = osp.join(ROOT, 'configs')
TEACHER_CFG = osp.join(CFG, 'cstrack', 'cstrack_yolov5s_synthmot.py')
STUDENT_CFG = osp.join(CFG, 'cstrack', 'cstrack_yolov5n_synthmot.py')
KD_CFG = osp.join(CFG, 'kd', 'cstrack_s2n_kd_synthmot.py')
DATA_CFG = osp.join(CFG, '_base_', 'datasets', 'synthmot.py')
DISTILL = osp.join(CFG, '_base_', 'distill')

# fragment file (relative to configs/_base_/distill) -> variable name
FRAGMENTS = {
    'id': ('id_response.py', 'kd_id_response'),
    'feat': ('key_feature.py', 'kd_key_feature'),
    'resp': ('prediction_difference.py', 'kd_pred_diff'),
    'fitnets': ('baselines/fitnets.py', 'kd_fitnets'),
    'fgd': ('baselines/fgd.py', 'kd_fgd'),
    'cwd': ('baselines/cwd.py', 'kd_cwd'),
    'pkd': ('baselines/pkd.py', 'kd_pkd'),
    'mgd': ('baselines/mgd.py', 'kd_mgd'),
    'objectness': ('baselines/objectness.py', 'kd_objectness'),
}

# method -> (kind, fragments, description); order = table order
METHODS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    'teacher': ('teacher', (), 'teacher, no KD'),
    'student': ('student', (), 'student, no KD (baseline)'),
    'ours': ('kd', ('id', 'feat', 'resp'), 'ours: ID + feature + response'),
    'ours_no_id': ('kd', ('feat', 'resp'), 'ours without ID response loss'),
    'ours_no_feat': ('kd', ('id', 'resp'), 'ours without key-feature loss'),
    'ours_no_resp': ('kd', ('id', 'feat'),
                     'ours without prediction-difference loss'),
    'only_id': ('kd', ('id', ), 'ID response consistency loss alone'),
    'only_feat': ('kd', ('feat', ), 'key-feature loss alone'),
    'only_resp': ('kd', ('resp', ), 'prediction-difference loss alone'),
    'fitnets': ('kd', ('fitnets', ), 'FitNets (neck)'),
    'fgd': ('kd', ('fgd', ), 'FGD (neck)'),
    'cwd': ('kd', ('cwd', ), 'CWD (neck)'),
    'pkd': ('kd', ('pkd', ), 'PKD (neck)'),
    'mgd': ('kd', ('mgd', ), 'MGD (neck)'),
    'objectness': ('kd', ('objectness', ), 'objectness logit KD (head)'),
}


def _model(widen: float, channels: int) -> dict:
    return dict(
        backbone=dict(widen_factor=widen),
        neck=dict(out_channels=channels),
        id_head=dict(embed_channels=channels,
                     saan=dict(mid_channels=channels)))


# Sizes, data and schedule per preset. ``sec_per_iter`` and ``eval_s`` are
# the measured costs on the 2-core dev machine (1 torch thread) that
# ``--dry-run`` multiplies out.
PRESETS = {
    # tests only: a tiny dataset, one epoch, val skipped
    'micro': dict(
        data_preset='quick',
        data_knobs=dict(num_seqs_train=1, num_seqs_val=1, num_seqs_test=1,
                        num_frames=6, min_people=2, max_people=3,
                        empty_start=1),
        # untrained heads fire everywhere: cap the boxes to keep tests fast
        teacher=dict(_model(0.125, 32), test_cfg=dict(max_per_img=10)),
        student=dict(_model(0.0625, 16), test_cfg=dict(max_per_img=10)),
        epochs=1, teacher_epochs=1, batch_size=2, img_scale=None,
        log_interval=1, eval_splits=('test', ), sec_per_iter=0.15,
        kd_factor=1.6, teacher_factor=2.0, startup_s=6, eval_s=7),
    # the 10-minute smoke benchmark on data/synthmot_quick
    'quick': dict(
        data_preset='quick', data_knobs={},
        teacher=_model(0.25, 64), student=_model(0.125, 32),
        epochs=3, teacher_epochs=6, batch_size=4, img_scale=None,
        log_interval=2, eval_splits=('test', ), sec_per_iter=0.3,
        kd_factor=1.6, teacher_factor=2.0, startup_s=7, eval_s=9),
    # the benchmark of the README: many short sequences per split (the
    # split-to-split swing of 2 long ones was 10-20 points), frames made at
    # the training size. Every student gets 480 iterations of batch 4 (4
    # epochs); the teacher, trained once (seed 0), gets 3x that (12 epochs)
    # so that there is a gap to distil.
    'full': dict(
        data_preset='bench',
        data_knobs=dict(num_seqs_train=6, num_seqs_val=3, num_seqs_test=5,
                        num_frames=80, width=320, height=192),
        teacher=_model(0.25, 64), student=_model(0.125, 32),
        epochs=4, teacher_epochs=12, batch_size=4, img_scale=None,
        log_interval=10, eval_splits=('test', ), sec_per_iter=0.16,
        kd_factor=1.9, teacher_factor=2.0, startup_s=15, eval_s=15),
}
# the teacher is trained once, with this seed, and serves every KD seed
TEACHER_SEED = 0
MICRO_METHODS = ('teacher', 'student', 'only_feat')
METRIC_KEYS = ('MOTA', 'IDF1', 'HOTA', 'MT%', 'ML%', 'IDs')


# -------------------------------------------------------------- utilities
def _json_dump(obj, path: str) -> None:
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, default=float, allow_nan=True)


def _children_cpu_s() -> float:
    import resource
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(cmd: List[str], log: str, threads: int) -> Tuple[float, float]:
    """Run ``cmd`` (python args) with its output to ``log``; return the
    wall time and the CPU time (user + system) in seconds. The CPU time
    is what a loaded machine does not inflate much. Raises RuntimeError
    naming the log on failure."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    os.makedirs(osp.dirname(log), exist_ok=True)
    start, cpu = time.time(), _children_cpu_s()
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd)}\n')
        f.flush()
        proc = subprocess.run([sys.executable] + cmd, cwd=ROOT, env=env,
                              stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd[:2])} failed (exit '
                           f'{proc.returncode}); see {log}')
    return time.time() - start, _children_cpu_s() - cpu


def _py(value) -> str:
    return pprint.pformat(value, width=78, sort_dicts=False)


def _load_var(path: str, var: str) -> dict:
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if var not in cfg:
        raise KeyError(f'{path}: no variable {var!r}')
    value = cfg[var]
    return value.to_dict() if hasattr(value, 'to_dict') else dict(value)


def _tool(name: str):
    """Import ``tools/NAME.py`` (tools/ is not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(ROOT, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _param_count(ckpt: str) -> int:
    """Learnable tensors of a checkpoint (BN running stats excluded)."""
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    skip = ('running_mean', 'running_var', 'num_batches_tracked')
    return int(sum(v.numel() for k, v in state.items()
                   if hasattr(v, 'numel') and not k.endswith(skip)))


# ------------------------------------------------------------- the plan
class Benchmark:
    """One benchmark run folder.

    Args:
        out (str): the run folder (configs/, logs/, work/, records/ ...).
        preset (str): a key of :data:`PRESETS`.
        seeds (int): seeds 0..seeds-1.
        methods (Sequence[str]): keys of :data:`METHODS`; the teacher and
            student are added when missing (every KD method needs both).
        data (str, optional): SynthMOT folder; made when missing.
        threads (int): torch threads of each subprocess.
        resume (bool): resume half-finished trainings instead of restarting.
        jobs (int): trainings run at once (one per core is the fastest).
        loss_scale (dict, optional): fragment key (see :data:`FRAGMENTS`)
            -> factor on the ``loss_weight`` of that fragment's losses (the
            val-split weight search).
        splits (Sequence[str], optional): splits every model is evaluated
            on; default the preset's ``eval_splits``.
        loss_options (dict, optional): fragment key -> dict of arguments
            set on that fragment's losses (e.g. ``{'feat': {'normalize':
            True}}``).
        teacher_from (str, optional): another run folder of the same preset
            and data whose teacher and plain students (models that no loss
            scale changes) are reused instead of trained.
    """

    def __init__(self, out: str, preset: str, seeds: int,
                 methods: Sequence[str], data: Optional[str] = None,
                 threads: int = 1, resume: bool = False, jobs: int = 1,
                 loss_scale: Optional[Dict[str, float]] = None,
                 splits: Optional[Sequence[str]] = None,
                 teacher_from: Optional[str] = None,
                 loss_options: Optional[Dict[str, dict]] = None) -> None:
        if preset not in PRESETS:
            raise ValueError(f'--preset: unknown {preset!r}, expected one '
                             f'of {sorted(PRESETS)}')
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f'--methods: unknown {unknown}, expected some '
                             f'of {list(METHODS)}')
        if seeds < 1:
            raise ValueError('--seeds must be >= 1')
        if jobs < 1:
            raise ValueError('--jobs must be >= 1')
        self.loss_scale = dict(loss_scale or {})
        bad = [k for k in self.loss_scale
               if k.rpartition('.')[2] not in FRAGMENTS or
               k.rpartition('.')[0] not in ('', 'ours', *METHODS)]
        if bad:
            raise ValueError(f'--loss-scale: unknown loss {bad}, expected '
                             f'some of {list(FRAGMENTS)}')
        if any(not v >= 0 for v in self.loss_scale.values()):
            raise ValueError(f'--loss-scale: factors must be >= 0, got '
                             f'{self.loss_scale}')
        self.loss_options = {k: dict(v) for k, v in
                             (loss_options or {}).items()}
        bad = [k for k in self.loss_options if k not in FRAGMENTS]
        if bad:
            raise ValueError(f'--loss-option: unknown loss {bad}, expected '
                             f'some of {list(FRAGMENTS)}')
        self.splits = list(splits or PRESETS[preset]['eval_splits'])
        bad = [x for x in self.splits if x not in ('val', 'test')]
        if bad:
            raise ValueError(f'--splits: unknown {bad}, expected val/test')
        self.out = osp.abspath(out)
        self.preset_name = preset
        self.preset = PRESETS[preset]
        self.seeds = list(range(seeds))
        wanted = set(methods) | {'teacher', 'student'}
        self.methods = [m for m in METHODS if m in wanted]
        if data is None:  # owned by the run: nobody regenerates it midway
            data = osp.join(self.out, 'data',
                            f'synthmot_{self.preset["data_preset"]}')
        self.data = osp.abspath(data)
        self.threads = threads
        self.resume = resume
        self.jobs = jobs
        self.teacher_from = (osp.abspath(teacher_from)
                             if teacher_from else None)

    # .................................................................. plan
    def runs(self) -> List[Tuple[str, int]]:
        """(method, seed) pairs in run order: the teacher once, with
        :data:`TEACHER_SEED`, then method by method (every seed of one
        before the next; the ``ours_no_*`` ablations last), so that a run
        cut short has complete seeds of the main comparison."""
        order = sorted((m for m in self.methods if m != 'teacher'),
                       key=lambda m: (m.startswith('ours_no_'),
                                      list(METHODS).index(m)))
        return [('teacher', TEACHER_SEED)] + [
            (m, s) for m in order for s in self.seeds]

    def epochs(self, method: str) -> int:
        return self.preset['teacher_epochs' if method == 'teacher' else
                           'epochs']

    def batch_size(self, method: str) -> int:
        if method == 'teacher':
            return self.preset.get('teacher_batch_size',
                                   self.preset['batch_size'])
        return self.preset['batch_size']

    def iters_per_epoch(self, method: str = 'student') -> int:
        ann = osp.join(self.data, 'annotations', 'train_cocoformat.json')
        if osp.isfile(ann):
            with open(ann) as f:
                frames = len(json.load(f)['images'])
        else:
            from mmtrack_kd.datasets.synthmot import resolve_knobs
            knobs = resolve_knobs(self.preset['data_preset'],
                                  **self.preset['data_knobs'])
            frames = knobs['num_seqs_train'] * knobs['num_frames']
        return math.ceil(frames / self.batch_size(method))

    def estimate_s(self, method: str) -> float:
        p = self.preset
        iters = self.iters_per_epoch(method) * self.epochs(method)
        # a KD step also runs the teacher forward and the losses
        factor = dict(kd=p['kd_factor'], teacher=p['teacher_factor']).get(
            METHODS[method][0], 1.0)
        return p['startup_s'] + iters * p['sec_per_iter'] * factor + \
            len(self.splits) * p['eval_s']

    def plan(self) -> str:
        lines = [f'preset {self.preset_name}: data {self.data} '
                 f'({self.preset["data_preset"]}), {self.preset["epochs"]} '
                 f'epochs x {self.iters_per_epoch()} iters of batch '
                 f'{self.batch_size("student")} (teacher '
                 f'{self.preset["teacher_epochs"]} epochs x '
                 f'{self.iters_per_epoch("teacher")} iters of batch '
                 f'{self.batch_size("teacher")}, once), teacher '
                 f'{self.preset["teacher"]["backbone"]}, student '
                 f'{self.preset["student"]["backbone"]}, evaluated on '
                 f'{"+".join(self.splits)}'
                 + (f', loss scale {self.loss_scale}'
                    if self.loss_scale else ''),
                 f'{len(self.methods) - 1} student method(s) x '
                 f'{len(self.seeds)} seeds + the teacher = '
                 f'{len(self.runs())} trainings']
        total = 0.
        for m, s in self.runs():
            est = self.estimate_s(m)
            done = self.load_record(m, s) is not None
            total += 0 if done else est
            lines.append(f'  {m:<14} seed {s}  ~{est:6.0f} s  '
                         f'{"done" if done else ""}  '
                         f'{METHODS[m][2]}')
        lines.append(f'estimated time left: '
                     f'{total / 60 / min(self.jobs, 2):.1f} min '
                     f'({self.jobs} job(s) of {self.threads} torch '
                     'thread(s))')
        return '\n'.join(lines)

    # ................................................................ paths
    def name(self, method: str, seed: int) -> str:
        return f'{method}__seed{seed}'

    def record_path(self, method: str, seed: int) -> str:
        return osp.join(self.out, 'records', self.name(method, seed) + '.json')

    def work_dir(self, method: str, seed: int) -> str:
        return osp.join(self.out, 'work', self.name(method, seed))

    def final_ckpt(self, method: str, seed: int) -> str:
        return osp.join(self.work_dir(method, seed),
                        f'epoch_{self.epochs(method)}.pth')

    # ................................................................. data
    def make_data(self) -> None:
        ann = osp.join(self.data, 'annotations', 'test_cocoformat.json')
        if osp.isfile(ann):
            return
        from mmtrack_kd.datasets.synthmot import generate_synthmot
        print(f'making SynthMOT ({self.preset["data_preset"]}) in '
              f'{self.data}', flush=True)
        generate_synthmot(self.data, preset=self.preset['data_preset'],
                          seed=0, overwrite=True, show_progress=False,
                          **self.preset['data_knobs'])

    # .............................................................. configs
    def _common(self, seed: int, method: str) -> dict:
        """Overrides shared by every generated config (data, schedule,
        seed, hooks)."""
        p = self.preset
        root = self.data.rstrip('/') + '/'
        loader = dict(num_workers=0, persistent_workers=False)
        over = dict(
            train_dataloader=dict(batch_size=self.batch_size(method),
                                  dataset=dict(data_root=root), **loader),
            val_dataloader=dict(dataset=dict(data_root=root), **loader),
            test_dataloader=dict(dataset=dict(data_root=root), **loader),
            # no validation inside training (evaluated afterwards)
            train_cfg=dict(max_epochs=self.epochs(method),
                           val_begin=self.epochs(method) + 1,
                           val_interval=self.epochs(method) + 1),
            param_scheduler=self._scheduler(method),
            default_hooks=dict(
                logger=dict(interval=p['log_interval']),
                checkpoint=dict(interval=1, max_keep_ckpts=1)),
            randomness=dict(seed=seed, deterministic=False))
        if p['img_scale'] is not None:
            data_cfg = _load_var(DATA_CFG, 'train_dataloader')
            test_cfg = _load_var(DATA_CFG, 'test_dataloader')
            for key, pipe in (('train_dataloader',
                               data_cfg['dataset']['pipeline']),
                              ('val_dataloader',
                               test_cfg['dataset']['pipeline']),
                              ('test_dataloader',
                               test_cfg['dataset']['pipeline'])):
                over[key]['dataset']['pipeline'] = _rescale(
                    pipe, tuple(p['img_scale']))
        return over

    def _scheduler(self, method: str) -> list:
        epochs = self.epochs(method)
        warm = min(100, self.iters_per_epoch(method) * epochs // 4 or 1)
        return [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False,
                 begin=0, end=warm),
            dict(type='CosineAnnealingLR', eta_min_ratio=0.05, begin=0,
                 end=epochs, T_max=epochs, by_epoch=True,
                 convert_to_iter_based=True)
        ]

    def _write_cfg(self, name: str, bases: List[str], over: dict,
                   header: str) -> str:
        path = osp.join(self.out, 'configs', name + '.py')
        lines = [f'# {header}', '# generated by tools/benchmark/kd_benchmark'
                 '.py; edit the benchmark, not this file',
                 f'_base_ = {_py(bases)}']
        for key, value in over.items():
            lines.append(f'{key} = {_py(value)}')
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(path) as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def model_cfg(self, role: str, seed: int) -> str:
        """The plain teacher or student config of ``seed``."""
        over = self._common(seed, role)
        over['model'] = self.preset[role]
        base = TEACHER_CFG if role == 'teacher' else STUDENT_CFG
        return self._write_cfg(
            f'{role}__seed{seed}', [base], over,
            f'{role}: {base} with the {self.preset_name} preset, seed '
            f'{seed}')

    def scale_of(self, method: str, key: str) -> float:
        """The loss-weight factor of fragment ``key`` in ``method``:
        ``GROUP.KEY`` of ``loss_scale`` (GROUP is ``ours`` for ours and its
        ablations, else the method), else ``KEY``, else 1."""
        group = 'ours' if method.startswith('ours') else method
        return float(self.loss_scale.get(f'{group}.{key}',
                                         self.loss_scale.get(key, 1.0)))

    def distill_cfgs(self, method: str) -> List[dict]:
        teacher_ch = self.preset['teacher']['neck']['out_channels']
        frags = []
        for key in METHODS[method][1]:
            fname, var = FRAGMENTS[key]
            frag = _load_var(osp.join(DISTILL, fname), var)
            for loss in frag.get('distill_losses', {}).values():
                loss.update(self.loss_options.get(key, {}))
                scale = self.scale_of(method, key)
                if scale != 1.0:
                    loss['loss_weight'] = loss.get('loss_weight', 1.0) * scale
                if 'channels' in loss:  # MGD/FGD: the teacher's neck
                    loss['channels'] = [teacher_ch] * 3
            frags.append(frag)
        return frags

    def kd_cfg(self, method: str, seed: int, teacher_cfg: str,
               teacher_ckpt: str) -> str:
        over = self._common(seed, method)
        over['model'] = dict(
            student=self.preset['student'],
            teacher=teacher_cfg,
            teacher_ckpt=teacher_ckpt,
            distill_cfgs=self.distill_cfgs(method))
        frags = ', '.join(osp.join('configs/_base_/distill', FRAGMENTS[k][0])
                          for k in METHODS[method][1])
        return self._write_cfg(
            f'{method}__seed{seed}', [KD_CFG], over,
            f'{method}: {METHODS[method][2]}; distill_cfgs from {frags}')

    # ............................................................ execution
    def _train(self, method: str, seed: int,
               cfg: str) -> Tuple[float, float]:
        work = self.work_dir(method, seed)
        log = osp.join(self.out, 'logs', self.name(method, seed) +
                       '.train.log')
        cmd = ['tools/train.py', cfg, '--work-dir', work]
        half = osp.isfile(osp.join(work, 'last_checkpoint'))
        if half and self.resume:
            cmd.append('--resume')
            print(f'  resuming {self.name(method, seed)}', flush=True)
        elif osp.isdir(work):
            shutil.rmtree(work)
            if osp.isfile(log):
                os.remove(log)
        return _run(cmd, log, self.threads)

    def _test(self, method: str, seed: int, cfg: str, ckpt: str,
              split: str) -> dict:
        name = self.name(method, seed)
        out = osp.join(self.out, 'metrics', f'{name}.{split}.json')
        _run(['tools/test.py', cfg, ckpt, '--split', split, '--out', out,
              '--work-dir', osp.join(self.work_dir(method, seed), 'test')],
             osp.join(self.out, 'logs', f'{name}.{split}.log'), self.threads)
        with open(out) as f:
            raw = json.load(f)
        metrics = {k.split('/', 1)[-1]: v for k, v in raw.items()}
        return metrics

    def run_one(self, method: str, seed: int) -> dict:
        kind = METHODS[method][0]
        teacher_rec = None
        if kind == 'kd':
            teacher_rec = self.load_record('teacher', TEACHER_SEED)
            if teacher_rec is None:
                raise RuntimeError(f'{method} seed {seed}: the teacher is '
                                   'not trained')
        if kind in ('teacher', 'student'):
            cfg = self.model_cfg(kind, seed)
            eval_cfg = cfg
        else:
            cfg = self.kd_cfg(method, seed, teacher_rec['config'],
                              teacher_rec['checkpoint'])
            eval_cfg = self.model_cfg('student', seed)
        train_s, train_cpu_s = self._train(method, seed, cfg)
        ckpt = self.final_ckpt(method, seed)
        if not osp.isfile(ckpt):
            raise RuntimeError(f'{method} seed {seed}: no {ckpt} after '
                               'training')
        if kind == 'kd':
            extract_student = _tool('extract_student').extract_student
            student_ckpt = osp.join(self.work_dir(method, seed),
                                    'student.pth')
            extract_student(ckpt, student_ckpt)
            ckpt = student_ckpt
        rec = dict(method=method, seed=seed, kind=kind,
                   description=METHODS[method][2],
                   fragments=[FRAGMENTS[k][0] for k in METHODS[method][1]],
                   config=cfg, eval_config=eval_cfg, checkpoint=ckpt,
                   train_time_s=round(train_s, 2),
                   train_cpu_s=round(train_cpu_s, 2),
                   params=_param_count(ckpt), metrics={},
                   data_fingerprint=self.data_fingerprint())
        rec['loss_scale'] = {k: self.scale_of(method, k)
                             for k in METHODS[method][1]}
        rec['loss_options'] = {k: v for k, v in self.loss_options.items()
                               if k in METHODS[method][1]}
        for split in self.splits:
            rec['metrics'][split] = self._test(method, seed, eval_cfg, ckpt,
                                               split)
        rec['loss_curve'] = loss_curve(self.work_dir(method, seed))
        _json_dump(rec, self.record_path(method, seed))
        return rec

    def data_fingerprint(self) -> str:
        """sha1 of the three annotation files (records of different data
        must not be compared)."""
        import hashlib
        digest = hashlib.sha1()
        for split in ('train', 'val', 'test'):
            with open(osp.join(self.data, 'annotations',
                               f'{split}_cocoformat.json'), 'rb') as f:
                digest.update(f.read())
        return digest.hexdigest()

    def load_record(self, method: str, seed: int) -> Optional[dict]:
        path = self.record_path(method, seed)
        if not osp.isfile(path) and METHODS[method][0] != 'kd' and \
                self.teacher_from:
            path = osp.join(self.teacher_from, 'records',
                            osp.basename(path))
        if not osp.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def _check_teacher_from(self) -> None:
        """The reused teacher must exist and be trained on this data."""
        if not self.teacher_from:
            return
        rec = self.load_record('teacher', TEACHER_SEED)
        if rec is None:
            raise RuntimeError(f'--teacher-from: no teacher record in '
                               f'{self.teacher_from}/records')
        if rec.get('data_fingerprint') != self.data_fingerprint():
            raise RuntimeError(f'--teacher-from: the teacher of '
                               f'{self.teacher_from} was trained on other '
                               f'data than {self.data}')

    def missing_splits(self, rec: dict) -> List[str]:
        return [x for x in self.splits if x not in rec['metrics']]

    def complete(self, method: str, seed: int) -> dict:
        """Evaluate a recorded model on the splits its record lacks (e.g.
        val, for a search that reuses the models of a test-only run) and
        write the completed record into this run folder."""
        rec = self.load_record(method, seed)
        for split in self.missing_splits(rec):
            rec['metrics'][split] = self._test(method, seed,
                                               rec['eval_config'],
                                               rec['checkpoint'], split)
        _json_dump(rec, self.record_path(method, seed))
        return rec

    def _run_and_report(self, method: str, seed: int,
                        eval_only: bool = False) -> None:
        t0 = time.time()
        print(f'{"evaluate" if eval_only else "run"} '
              f'{self.name(method, seed)} ...', flush=True)
        rec = (self.complete if eval_only else self.run_one)(method, seed)
        split = self.splits[-1]
        m = rec['metrics'].get(split, {})
        print(f'  {self.name(method, seed)} done in {time.time() - t0:.0f} '
              f's: {split} IDF1 {m.get("IDF1", float("nan")):.2f}, MOTA '
              f'{m.get("MOTA", float("nan")):.2f}, FPS '
              f'{m.get("FPS", float("nan")):.1f}', flush=True)

    def tasks(self) -> List[tuple]:
        """``(self, method, seed, eval_only)`` of every run left to do."""
        todo = []
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            if rec is None:
                todo.append((self, method, seed, False))
            elif self.missing_splits(rec):
                todo.append((self, method, seed, True))
            else:
                print(f'skip {self.name(method, seed)} (recorded)',
                      flush=True)
        return todo

    def run(self) -> dict:
        """Train and evaluate every unrecorded run, ``jobs`` at a time (KD
        runs wait for the teacher). A failed run does not stop the others;
        the failures are raised together at the end, after the summary."""
        start = time.time()
        self.make_data()
        self._check_teacher_from()
        failures = execute(self.tasks(), self.jobs)
        results = self.summarize()
        if failures:
            raise RuntimeError(
                f'{len(failures)} run(s) failed: ' + '; '.join(
                    f'{name}: {err}' for name, err in failures))
        print(f'benchmark finished in {time.time() - start:.0f} s; see '
              f'{osp.join(self.out, "results.md")}', flush=True)
        return results

    # .............................................................. outputs
    def summarize(self) -> dict:
        records = {}
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            if rec is not None:
                records.setdefault(method, {})[str(seed)] = rec
        prints = {r.get('data_fingerprint') for recs in records.values()
                  for r in recs.values()}
        if len(prints) > 1:
            print(f'WARNING: the records were made on {len(prints)} '
                  f'different versions of {self.data}; they are not '
                  'comparable (see data_fingerprint in records/)',
                  flush=True)
        results = dict(
            preset=self.preset_name,
            data=self.data,
            seeds=self.seeds,
            sizes=dict(teacher=self.preset['teacher'],
                       student=self.preset['student'],
                       epochs=self.preset['epochs'],
                       teacher_epochs=self.preset['teacher_epochs'],
                       batch_size=self.preset['batch_size'],
                       teacher_batch_size=self.batch_size('teacher'),
                       img_scale=self.preset['img_scale']),
            torch_threads=self.threads,
            jobs=self.jobs,
            loss_scale=self.loss_scale,
            loss_options=self.loss_options,
            splits=self.splits,
            data_fingerprints=sorted(p or '' for p in prints),
            methods={})
        for method in self.methods:
            per_seed = {}
            for seed, rec in records.get(method, {}).items():
                per_seed[seed] = dict(
                    metrics=rec['metrics'],
                    train_time_s=rec['train_time_s'],
                    train_cpu_s=rec.get('train_cpu_s'),
                    params=rec['params'],
                    checkpoint=rec['checkpoint'])
            results['methods'][method] = dict(
                kind=METHODS[method][0],
                description=METHODS[method][2],
                fragments=[FRAGMENTS[k][0] for k in METHODS[method][1]],
                seeds=per_seed,
                summary={split: aggregate(per_seed, split)
                         for split in ('val', 'test')})
        _json_dump(results, osp.join(self.out, 'results.json'))
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(osp.join(self.out, 'results.md')) as f:
            f.write(markdown(results))
        plot(results, records, self.out)
        return results


def execute(tasks: List[tuple], jobs: int) -> List[Tuple[str, object]]:
    """Run ``(bench, method, seed, eval_only)`` tasks ``jobs`` at a time,
    in order, except that a KD training waits until its benchmark's teacher
    is recorded. Returns ``[(run name, error), ...]`` of the failures."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    queue = list(tasks)
    teacher_ok = {b: b.load_record('teacher', TEACHER_SEED) is not None
                  for b, *_ in queue}
    failures, pending = [], {}
    with ThreadPoolExecutor(jobs) as pool:
        while queue or pending:
            while len(pending) < jobs:
                ready = [t for t in queue if METHODS[t[1]][0] != 'kd' or
                         t[3] or teacher_ok[t[0]]]
                if not ready:
                    break
                queue.remove(ready[0])
                bench, method, seed, eval_only = ready[0]
                fut = pool.submit(bench._run_and_report, method, seed,
                                  eval_only)
                pending[fut] = ready[0]
            if not pending:  # KD runs whose teacher failed
                failures += [(t[0].name(t[1], t[2]), 'the teacher failed')
                             for t in queue]
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                bench, method, seed, _ = pending.pop(fut)
                err = fut.exception()
                if err is not None:
                    print(f'FAILED {bench.name(method, seed)}: {err}',
                          flush=True)
                    failures.append((bench.name(method, seed), err))
                elif method == 'teacher':
                    teacher_ok[bench] = True
    return failures


def _rescale(pipeline: list, scale: Tuple[int, int]) -> list:
    """``pipeline`` with every Resize/RandomResize ``scale`` set."""
    out = []
    for step in pipeline:
        step = dict(step)
        if 'transforms' in step:
            step['transforms'] = _rescale(step['transforms'], scale)
        if step.get('type') in ('Resize', 'RandomResize'):
            step['scale'] = scale
        out.append(step)
    return out


def loss_curve(work: str) -> List[List[float]]:
    """[[iter, loss], ...] from mmengine's ``WORK/*/vis_data/scalars.json``
    (all runs of a resumed training, later runs win)."""
    points = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if 'loss' in row and 'step' in row:
                    points[int(row['step'])] = float(row['loss'])
    return [[k, points[k]] for k in sorted(points)]


def _stats(values: List[float]) -> Dict[str, float]:
    vals = [float(v) for v in values
            if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return dict(mean=float('nan'), std=float('nan'), n=0)
    mean = sum(vals) / len(vals)
    var = (sum((v - mean)**2 for v in vals) / (len(vals) - 1)
           if len(vals) > 1 else 0.)
    return dict(mean=mean, std=math.sqrt(var), n=len(vals))


def aggregate(per_seed: dict, split: str) -> dict:
    """Mean/std/n over seeds of each metric (and FPS, train time)."""
    keys = METRIC_KEYS + ('FPS', )
    out = {}
    for key in keys:
        vals = [r['metrics'][split].get(key) for r in per_seed.values()
                if split in r['metrics']]
        if vals:
            out[key] = _stats(vals)
    if per_seed:
        out['train_time_s'] = _stats(
            [r['train_time_s'] for r in per_seed.values()])
        out['train_cpu_s'] = _stats(
            [r.get('train_cpu_s') for r in per_seed.values()])
        out['params'] = _stats([r['params'] for r in per_seed.values()])
    return out


def _fmt(stat: Optional[dict], digits: int = 3) -> str:
    if not stat or stat['n'] == 0:
        return 'n/a'
    if stat['n'] == 1:
        return f'{stat["mean"]:.{digits}f}'
    return f'{stat["mean"]:.{digits}f} ± {stat["std"]:.{digits}f}'


def gap_recovered(results: dict, method: str, split: str,
                  key: str = 'IDF1') -> Optional[float]:
    """100 * (KD - student) / (teacher - student) of the seed means, or
    None when the gap is not positive or a model is missing."""
    def mean(m):
        s = results['methods'].get(m, {}).get('summary', {}).get(split, {})
        return s.get(key, {}).get('mean') if s.get(key, {}).get('n') else None
    t, s, k = mean('teacher'), mean('student'), mean(method)
    if None in (t, s, k) or not t > s:
        return None
    return 100. * (k - s) / (t - s)


# the targets for ``ours`` against the student, test split
TARGET_GAINS = (('IDF1', 3.9), ('MOTA', 2.5), ('MT%', 5.9))
BASELINES = ('fitnets', 'fgd', 'cwd', 'pkd', 'mgd', 'objectness')


def check_targets(results: dict, split: str = 'test') -> List[dict]:
    """Each target as ``dict(target, value, met)``; ``met`` is None when
    a model it needs is missing. A gain must reach its floor and exceed
    twice the larger of the two models' std over seeds."""
    summ = {n: m['summary'].get(split, {})
            for n, m in results['methods'].items()}

    def stat(method, key):
        st = summ.get(method, {}).get(key)
        return st if st and st.get('n') else None

    out = []
    for key, floor in TARGET_GAINS:
        o, s = stat('ours', key), stat('student', key)
        if o is None or s is None:
            out.append(dict(target=f'ours - student {key} >= +{floor}',
                            value='n/a', met=None))
            continue
        gain = o['mean'] - s['mean']
        noise = 2 * max(o['std'], s['std'])
        out.append(dict(
            target=f'ours - student {key} >= +{floor} and > 2 std',
            value=f'{gain:+.2f} (2 std = {noise:.2f}, n = {o["n"]})',
            met=gain >= floor and gain > noise))
    gap = gap_recovered(results, 'ours', split)
    out.append(dict(target='IDF1 gap recovered >= 50 %',
                    value='n/a (teacher not ahead)' if gap is None else
                    f'{gap:.0f} %',
                    met=None if gap is None else gap >= 50))
    def idf1_lead(a, b, floor, strict):
        target = f'{a} - {b} IDF1 {">" if strict else ">="} {floor:+.1f}'
        sa, sb = stat(a, 'IDF1'), stat(b, 'IDF1')
        if sa is None or sb is None:
            return dict(target=target, value='n/a', met=None)
        d = sa['mean'] - sb['mean']
        return dict(target=target, value=f'{d:+.2f}',
                    met=d > floor if strict else d >= floor)

    out += [idf1_lead('ours', b, 1.0, strict=False) for b in BASELINES]
    out += [idf1_lead(m, 'student', 0.0, strict=True)
            for m in ('only_id', 'only_feat', 'only_resp')]
    return out


def target_lines(results: dict) -> List[str]:
    rows = check_targets(results)
    met = sum(r['met'] is True for r in rows)
    lines = [f'## Targets (test split, means over seeds): {met} of '
             f'{len(rows)} met', '', '| target | value | met |',
             '|---|---|---|']
    for r in rows:
        flag = {True: 'yes', False: '**no**', None: 'n/a'}[r['met']]
        lines.append(f'| {r["target"]} | {r["value"]} | {flag} |')
    return lines + ['']


def markdown(results: dict) -> str:
    lines = [f'# KD benchmark ({results["preset"]} preset)', '',
             f'Data: `{results["data"]}`; seeds {results["seeds"]}; sizes '
             f'{json.dumps(results["sizes"])}; torch threads '
             f'{results["torch_threads"]}.', '',
             'Mean ± std over seeds. Δ = difference of means against the '
             'student without KD; gap recovered = 100 (IDF1_KD - '
             'IDF1_student) / (IDF1_teacher - IDF1_student).', '']
    for split in ('test', 'val'):
        if not any(m['summary'].get(split, {}).get('IDF1')
                   for m in results['methods'].values()):
            continue
        lines += [f'## {split} split', '',
                  '| method | MOTA | IDF1 | HOTA | MT% | ML% | IDs | FPS | '
                  'ΔMOTA | ΔIDF1 | gap recovered % | train s | train CPU s | '
                  'params |',
                  '|' + '---|' * 14]
        base = results['methods'].get('student', {}).get('summary', {}).get(
            split, {})
        for name, m in results['methods'].items():
            s = m['summary'].get(split, {})
            if not s.get('IDF1'):
                lines.append(f'| {name} | (not run) |' + ' |' * 13)
                continue
            row = [name] + [_fmt(s.get(k)) for k in METRIC_KEYS[:5]]
            row += [_fmt(s.get('IDs'), 1), _fmt(s.get('FPS'), 1)]
            for key in ('MOTA', 'IDF1'):
                if m['kind'] in ('kd', ) and base.get(key, {}).get('n'):
                    row.append(f'{s[key]["mean"] - base[key]["mean"]:+.3f}')
                else:
                    row.append('')
            gap = gap_recovered(results, name, split) \
                if m['kind'] == 'kd' else None
            row.append('' if gap is None else f'{gap:.0f}')
            row.append(_fmt(s.get('train_time_s'), 0))
            row.append(_fmt(s.get('train_cpu_s'), 0))
            row.append(f'{s["params"]["mean"] / 1e6:.3f}M'
                       if s.get('params') else '')
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    lines += target_lines(results)
    return '\n'.join(lines)


def plot(results: dict, records: dict, out: str) -> List[str]:
    """metric_bars.png, loss_curves.png and acc_vs_fps.png in ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    names = [n for n, m in results['methods'].items()
             if m['summary'].get('test', {}).get('IDF1')]
    if not names:
        return written
    summ = {n: results['methods'][n]['summary']['test'] for n in names}

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key in zip(axes, ('MOTA', 'IDF1', 'HOTA')):
        means = [summ[n][key]['mean'] for n in names]
        stds = [summ[n][key]['std'] for n in names]
        colors = ['tab:gray' if n in ('teacher', 'student') else
                  'tab:red' if n.startswith(('ours', 'only')) else
                  'tab:blue' for n in names]
        ax.bar(range(len(names)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha='right', fontsize=8)
        ax.set_title(f'test {key} (mean ± std over seeds)')
    fig.tight_layout()
    written.append(osp.join(out, 'metric_bars.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        recs = records.get(name, {})
        if not recs:
            continue
        rec = recs[sorted(recs)[0]]
        curve = rec.get('loss_curve') or []
        if curve:
            ax.plot([p[0] for p in curve], [p[1] for p in curve],
                    label=name, lw=1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('total training loss (first seed)')
    ax.set_yscale('log')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    written.append(osp.join(out, 'loss_curves.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for name in names:
        s = summ[name]
        if 'FPS' not in s:
            continue
        main = name in ('teacher', 'student', 'ours')
        ax.errorbar(s['FPS']['mean'], s['IDF1']['mean'],
                    xerr=s['FPS']['std'], yerr=s['IDF1']['std'],
                    fmt='o' if main else '.', ms=8 if main else 4,
                    alpha=1.0 if main else 0.5, label=name if main else None)
        ax.annotate(name, (s['FPS']['mean'], s['IDF1']['mean']), fontsize=7)
    ax.set_xlabel('tracking FPS (model + tracker, batch 1, CPU)')
    ax.set_ylabel('test IDF1')
    ax.legend()
    fig.tight_layout()
    written.append(osp.join(out, 'acc_vs_fps.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='KD benchmark on SynthMOT (see docs/benchmark.md)')
    parser.add_argument('--preset', choices=['quick', 'full', 'micro'],
                        default='quick',
                        help='sizes, data and schedule (micro: tests only)')
    parser.add_argument('--seeds', type=int, default=1,
                        help='number of seeds (0..N-1)')
    parser.add_argument('--out', required=True, help='run folder')
    parser.add_argument('--methods', nargs='+', default=None,
                        help=f'subset of {list(METHODS)} (teacher and '
                        'student always run)')
    parser.add_argument('--data', default=None,
                        help='SynthMOT folder (made when missing); default '
                        'OUT/data/synthmot_quick or OUT/data/synthmot_bench')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per subprocess (default 1)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='trainings at once (default 2: one per core '
                        'of the 2-core reference machine)')
    parser.add_argument('--loss-scale', nargs='+', default=[],
                        metavar='LOSS=FACTOR',
                        help=f'multiply the loss_weight of a loss fragment '
                        f'({", ".join(FRAGMENTS)}), e.g. id=0.3 feat=0.3; '
                        'METHOD.LOSS=FACTOR sets it for one method only '
                        '(ours.LOSS also for the ours_no_* ablations)')
    parser.add_argument('--loss-option', nargs='+', default=[],
                        metavar='LOSS.ARG=VALUE',
                        help='set an argument of a fragment\'s losses, e.g. '
                        'feat.normalize=True (VALUE is a Python literal)')
    parser.add_argument('--splits', nargs='+', choices=['val', 'test'],
                        default=None,
                        help='splits to evaluate on (default: the '
                        "preset's, test)")
    parser.add_argument('--teacher-from', default=None, metavar='DIR',
                        help='reuse the teacher and the plain students of '
                        'another run folder (same preset and data)')
    parser.add_argument('--resume', action='store_true',
                        help='resume half-finished trainings from their '
                        'last checkpoint instead of restarting them')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan and the time estimate only')
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite results.json/md and the plots from '
                        'the finished records, training nothing')
    return parser.parse_args(argv)


def parse_loss_scale(items: Sequence[str]) -> Dict[str, float]:
    """``['id=0.3', 'feat=1']`` -> ``{'id': 0.3, 'feat': 1.0}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        try:
            out[key] = float(value)
        except ValueError:
            sep = ''
        if not sep:
            raise ValueError(f'--loss-scale: expected LOSS=FACTOR, got '
                             f'{item!r}')
    return out


def parse_loss_options(items: Sequence[str]) -> Dict[str, dict]:
    """``['feat.normalize=True']`` -> ``{'feat': {'normalize': True}}``."""
    import ast
    out: Dict[str, dict] = {}
    for item in items:
        target, sep, value = item.partition('=')
        key, dot, arg = target.partition('.')
        try:
            if not (sep and dot and arg):
                raise ValueError
            out.setdefault(key, {})[arg] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f'--loss-option: expected LOSS.ARG=VALUE with a '
                             f'Python literal VALUE, got {item!r}') from None
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    methods = args.methods
    if methods is None:
        methods = MICRO_METHODS if args.preset == 'micro' else list(METHODS)
    try:
        bench = Benchmark(args.out, args.preset, args.seeds, methods,
                          args.data, args.threads, args.resume,
                          jobs=args.jobs,
                          loss_scale=parse_loss_scale(args.loss_scale),
                          splits=args.splits,
                          teacher_from=args.teacher_from,
                          loss_options=parse_loss_options(
                              args.loss_option))
    except ValueError as err:
        print(f'kd_benchmark: {err}', file=sys.stderr)
        return 2
    print(bench.plan(), flush=True)
    if args.dry_run:
        return 0
    if args.report_only:
        bench.summarize()
        print(f'wrote {osp.join(bench.out, "results.md")}')
        return 0
    bench.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
