"""Running the KD benchmark: trainings and evaluations in subprocesses,
several at once, KD trainings waiting for the teacher; every finished
(method, seed) recorded and skipped on a rerun."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

from . import configs, provenance, records
from . import thresholds as thr
from .families import DEFAULT_FAMILY
from .init_state import make_initial_students
from .plan import (
    FRAGMENTS,
    METHODS,
    REPO_ROOT,
    TEACHER_SEED,
    BenchmarkPlan,
)

# (benchmark, method, seed, eval_only): eval_only is False (train), True
# (evaluate the splits the record lacks) or 'rescore' (pick the thresholds
# again on the current grid and evaluate every split; no training)
Task = Tuple['Benchmark', str, int, Union[bool, str]]

# the family of a run folder, written before anything is trained
FAMILY_FILE = 'family.json'


def folder_family(folder: str) -> Optional[str]:
    """The family of a run folder: its ``family.json``, else ``cstrack``
    when it holds records or initial weights (made before families), else
    None (a new folder)."""
    import json
    path = osp.join(folder, FAMILY_FILE)
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)['family']
    for sub in ('records', 'init'):
        if osp.isdir(osp.join(folder, sub)) and os.listdir(
                osp.join(folder, sub)):
            return DEFAULT_FAMILY
    return None


def wait_child(proc: subprocess.Popen) -> Tuple[int, float]:
    """Wait for ``proc`` with ``os.wait4``, which returns the resource use
    of that child alone (and of the descendants it waited for), not of
    the other jobs' children as ``RUSAGE_CHILDREN`` deltas would when
    several jobs run at once.

    Returns:
        tuple[int, float]: the exit code (negative: killed by that signal)
        and the child's user + system CPU seconds.
    """
    try:
        _, status, use = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted: do not leave the child behind
        proc.kill()
        proc.wait()
        raise
    if hasattr(os, 'waitstatus_to_exitcode'):
        code = os.waitstatus_to_exitcode(status)
    else:  # Python 3.8
        code = (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else
                os.WEXITSTATUS(status))
    proc.returncode = code  # reaped here: Popen must not wait again
    return code, use.ru_utime + use.ru_stime


def run_cmd(cmd: List[str], log: str, threads: int) -> Tuple[float, float]:
    """Run ``python CMD...`` in the repository with its output appended to
    ``log`` and ``threads`` OpenMP/MKL threads.

    Returns:
        tuple[float, float]: wall and CPU (user + system) seconds of this
        process alone (:func:`wait_child`). The CPU time is what a loaded
        machine does not inflate much.

    Raises:
        RuntimeError: a non-zero exit, naming the log.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    os.makedirs(osp.dirname(log), exist_ok=True)
    start = time.time()
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd)}\n')
        f.flush()
        proc = subprocess.Popen([sys.executable] + cmd, cwd=REPO_ROOT,
                                env=env, stdout=f, stderr=subprocess.STDOUT)
        code, cpu = wait_child(proc)
    if code != 0:
        raise RuntimeError(f'{" ".join(cmd[:2])} failed (exit '
                           f'{code}); see {log}')
    return time.time() - start, cpu


class Benchmark(BenchmarkPlan):
    """One benchmark run folder: the plan (see
    :class:`~mmtrack_kd.benchmark.plan.BenchmarkPlan` for the arguments)
    and its execution.

    Before any training (:meth:`prepare`) the data fingerprint is taken,
    the teacher's data checked, records of other code, config or data
    refused (unless ``allow_stale``) and the initial student weights of
    every seed written.
    """

    # the data fingerprint taken by prepare(), before any training
    data_print: Optional[str] = None
    # [{'record': file, 'reasons': [...]}] found by prepare()
    stale: List[dict] = []

    # .............................................................. records
    def load_record(self, method: str, seed: int) -> Optional[dict]:
        return records.load_record(self, method, seed)

    def is_done(self, method: str, seed: int) -> bool:
        return self.load_record(method, seed) is not None

    def plan_text(self) -> str:
        return self.describe(self.is_done)

    def check_teacher_from(self) -> None:
        records.check_teacher_from(self, self.data_print)

    # ........................................................... provenance
    def code(self) -> dict:
        """:func:`~mmtrack_kd.benchmark.provenance.code_version`, taken
        once per run."""
        if getattr(self, '_code', None) is None:
            self._code = provenance.code_version()
        return self._code

    def fingerprint(self) -> str:
        """The data fingerprint, taken once, before any training."""
        if self.data_print is None:
            self.data_print = records.data_fingerprint(self.data)
        return self.data_print

    def config_hash(self, cfg: str) -> str:
        """:func:`~mmtrack_kd.benchmark.provenance.config_hash` with the
        data, run-folder and ``--teacher-from`` paths normalised."""
        return provenance.config_hash(cfg, {
            '<data>': self.data, '<out>': self.out,
            '<teacher_from>': self.teacher_from})

    def configs_of(self, method: str, seed: int) -> Tuple[str, str]:
        """Write the training and the evaluation config of (method, seed)
        (a KD student is scored with the plain student config); return
        their paths.

        Raises:
            RuntimeError: a KD method whose teacher is not recorded.
        """
        kind = METHODS[method][0]
        if kind in ('teacher', 'student'):
            cfg = configs.model_cfg(self, kind, seed)
            return cfg, cfg
        teacher_rec = self.load_record('teacher', TEACHER_SEED)
        if teacher_rec is None:
            raise RuntimeError(f'{method} seed {seed}: the teacher is not '
                               'trained')
        cfg = configs.kd_cfg(self, method, seed, teacher_rec['config'],
                             teacher_rec['checkpoint'])
        return cfg, configs.model_cfg(self, 'student', seed)

    def stale_reasons(self, method: str, seed: int, rec: dict) -> List[str]:
        """Why the record of (method, seed) cannot be compared with this
        run: other code, config (the config this run would train it with
        is regenerated and hashed), data, teacher checkpoint or threshold
        choice. Empty when it is current."""
        try:
            cfg_hash = self.config_hash(self.configs_of(method, seed)[0])
        except RuntimeError as err:
            cfg_hash, extra = None, [str(err)]
        else:
            extra = []
        reasons = provenance.stale_reasons(
            rec, cfg_hash, self.code()['hash'], self.fingerprint()) + extra
        if METHODS[method][0] == 'kd' and not extra:
            ckpt = self.load_record('teacher', TEACHER_SEED)['checkpoint']
            if not osp.isfile(ckpt):
                reasons.append(f'the teacher checkpoint {ckpt} is missing')
            elif rec.get('teacher_ckpt_sha1') != file_sha1(ckpt):
                reasons.append('trained with another teacher checkpoint')
        grid = list(self.threshold_candidates())
        # --rescore picks them again (a run with no grid cannot)
        if self.off_grid(rec) and not (self.rescore and grid):
            reasons.append('thresholds: ' + (
                f'not picked on val from {grid}' if grid else
                'picked on val, this run uses the configs\' thresholds'))
        return reasons

    def off_grid(self, rec: dict) -> bool:
        """Whether ``rec``'s thresholds were not picked on val from this
        run's grid (or were picked where this run picks none)."""
        tuned = rec.get('thresholds') or {}
        return list(self.threshold_candidates()) != tuned.get('grid', [])

    def find_stale(self) -> List[dict]:
        """``[{'record': file, 'reasons': [...]}]`` of every recorded run
        of the plan that :meth:`stale_reasons` finds stale."""
        out = []
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            if rec is None:
                continue
            reasons = self.stale_reasons(method, seed, rec)
            if reasons:
                out.append(dict(record=records.record_file(self, method,
                                                           seed),
                                method=method, seed=seed, reasons=reasons))
        return out

    def other_family(self) -> List[dict]:
        """``[{'record': file, 'family': name}]`` of the plan's records
        (of this folder or ``--teacher-from``) made for another family
        than the plan's; a record without ``family`` is CSTrack's (made
        before families)."""
        out = []
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            fam = (rec or {}).get('family', DEFAULT_FAMILY)
            if rec is not None and fam != self.family.name:
                out.append(dict(record=records.record_file(self, method,
                                                           seed),
                                family=fam))
        return out

    def check_family(self) -> None:
        """The run folder (and ``--teacher-from``) must be the plan's
        family's: refuse another family's records and folders, whatever
        ``allow_stale`` says (a table mixing families compares nothing,
        and another family's checkpoints and initial weights do not fit
        the plan's models); then mark the folder (``OUT/family.json``).

        Raises:
            StaleRecordsError: naming each record file or folder and its
                family.
        """
        mixed = [f'  {x["record"]}: family {x["family"]}'
                 for x in self.other_family()]
        for folder in filter(None, (self.out, self.teacher_from)):
            fam = folder_family(folder)
            if fam is not None and fam != self.family.name:
                mixed.insert(0, f'  {folder}: a run folder of family {fam}')
        if mixed:
            raise provenance.StaleRecordsError(
                f'--family {self.family.name}: {len(mixed)} record(s) or '
                'folder(s) belong to another family; a run folder holds '
                'one family (use another --out), --allow-stale or not:\n'
                + '\n'.join(mixed))
        records.json_dump(dict(family=self.family.name),
                          osp.join(self.out, FAMILY_FILE))

    def check_stale(self) -> None:
        """Refuse records of another family (:meth:`check_family`), find
        the stale records (:attr:`stale`) and refuse them unless
        ``allow_stale``.

        Raises:
            StaleRecordsError: naming each record file and why.
        """
        self.check_family()
        self.stale = self.find_stale()
        if self.stale and not self.allow_stale:
            raise provenance.StaleRecordsError(
                provenance.stale_message(self.stale))
        for s in self.stale:
            print(f'WARNING (--allow-stale): {s["record"]}: '
                  f'{"; ".join(s["reasons"])}', flush=True)

    # ................................................................. data
    def make_data(self) -> None:
        """Generate the SynthMOT data of the preset (seed 0) unless its
        annotations exist."""
        ann = osp.join(self.data, 'annotations', 'test_cocoformat.json')
        if osp.isfile(ann):
            return
        from mmtrack_kd.datasets.synthmot import generate_synthmot
        print(f'making SynthMOT ({self.preset["data_preset"]}) in '
              f'{self.data}', flush=True)
        generate_synthmot(self.data, preset=self.preset['data_preset'],
                          seed=0, overwrite=True, show_progress=False,
                          **self.preset['data_knobs'])

    def data_mismatch(self) -> List[str]:
        """How the data's ``meta.json`` differs from what the preset would
        generate (generator version, preset, seed 0, knobs); empty when it
        matches or the folder has no ``meta.json`` (other data)."""
        import json

        from mmtrack_kd.datasets.synthmot import (
            SYNTHMOT_VERSION,
            resolve_knobs,
        )
        path = osp.join(self.data, 'meta.json')
        if not osp.isfile(path):
            return []
        with open(path) as f:
            meta = json.load(f)
        want = dict(version=SYNTHMOT_VERSION,
                    preset=self.preset['data_preset'], seed=0)
        out = [f'{k} {meta.get(k)!r} (the preset makes {v!r})'
               for k, v in want.items() if meta.get(k) != v]
        knobs = resolve_knobs(self.preset['data_preset'],
                              **self.preset['data_knobs'])
        out += [f'knob {k} {meta.get("knobs", {}).get(k)!r} (the preset '
                f'makes {v!r})' for k, v in knobs.items()
                if meta.get('knobs', {}).get(k) != v]
        return out

    def make_init(self, seed: int) -> str:
        """Write the initial student weights of ``seed`` (plain and KD
        keys) unless they exist; return their sha1."""
        return make_initial_students(
            self.out, configs.model_cfg(self, 'student', seed), seed,
            source=self.teacher_from)

    def prepare(self, tasks: Sequence[Task]) -> None:
        """What comes before any training: refuse another family's folder
        or records (:meth:`check_family`), make the data and take its
        fingerprint, check the (reused) teacher's data when KD runs are
        left, refuse stale records (:meth:`check_stale`), and write the
        initial student weights of the seeds left to train."""
        self.check_family()
        self.make_data()
        self.data_print = records.data_fingerprint(self.data)
        mismatch = self.data_mismatch()
        if mismatch:
            print(f'WARNING: {self.data} is not the data of the '
                  f'{self.preset_name} preset: {"; ".join(mismatch)}',
                  flush=True)
        self.check_teacher_from()
        trainings = [(m, s) for _, m, s, eval_only in tasks if not eval_only]
        if any(METHODS[m][0] == 'kd' for m, _ in trainings):
            records.check_teacher_data(self, self.data_print)
        self.check_stale()
        for seed in sorted({s for m, s in trainings
                            if METHODS[m][0] != 'teacher'}):
            self.make_init(seed)

    # ............................................................ execution
    def train(self, method: str, seed: int, cfg: str) -> Tuple[float, float]:
        """``tools/train.py CFG``: a half-finished work dir is resumed with
        ``resume``, else wiped. Returns wall and CPU seconds."""
        work = self.work_dir(method, seed)
        log = self.log_path(method, seed, 'train')
        cmd = ['tools/train.py', cfg, '--work-dir', work]
        half = osp.isfile(osp.join(work, 'last_checkpoint'))
        if half and self.resume:
            cmd.append('--resume')
            print(f'  resuming {self.name(method, seed)}', flush=True)
        elif osp.isdir(work):
            shutil.rmtree(work)
            if osp.isfile(log):
                os.remove(log)
        return run_cmd(cmd, log, self.threads)

    def metrics_path(self, method: str, seed: int, split: str,
                     tag: str = '') -> str:
        """``OUT/metrics/NAME.SPLIT[TAG].json``."""
        return osp.join(self.out, 'metrics',
                        f'{self.name(method, seed)}.{split}{tag}.json')

    @staticmethod
    def read_metrics(path: str) -> dict:
        """The metrics of a ``tools/test.py --out`` file without the
        ``mot/`` prefix."""
        import json
        with open(path) as f:
            raw = json.load(f)
        return {k.split('/', 1)[-1]: v for k, v in raw.items()}

    def evaluate(self, method: str, seed: int, cfg: str, ckpt: str,
                 split: str, options: Optional[Dict[str, float]] = None,
                 tag: str = '') -> dict:
        """``tools/test.py --split SPLIT [--cfg-options ...]``; its metrics
        without the ``mot/`` prefix (``METRICS/NAME.SPLIT[TAG].json``)."""
        out = self.metrics_path(method, seed, split, tag)
        run_cmd(['tools/test.py', cfg, ckpt, '--split', split, '--out', out,
                 '--work-dir', osp.join(self.work_dir(method, seed), 'test')]
                + thr.cfg_option_args(options),
                self.log_path(method, seed, split), self.threads)
        return self.read_metrics(out)

    def evaluate_sweep(self, method: str, seed: int, cfg: str, ckpt: str,
                       split: str, cands: Dict[str, Dict[str, float]]
                       ) -> Dict[str, dict]:
        """``tools/test.py --split SPLIT --sweep``: every candidate on one
        network pass per frame, candidate ``i``'s metrics in
        ``METRICS/NAME.SPLIT.t{i}.json`` as :meth:`evaluate` with tag
        ``.t{i}`` writes them.

        Returns:
            dict: label -> metrics without the ``mot/`` prefix.
        """
        work = osp.join(self.work_dir(method, seed), 'test')
        sweep = osp.join(work, f'{split}_sweep.json')
        records.json_dump(cands, sweep)
        paths = [self.metrics_path(method, seed, split, f'.t{i}')
                 for i in range(len(cands))]
        pattern = self.metrics_path(method, seed, split).replace(
            '{', '{{').replace('}', '}}')[:-len('.json')] + '.t{i}.json'
        run_cmd(['tools/test.py', cfg, ckpt, '--split', split, '--sweep',
                 sweep, '--out', pattern, '--work-dir', work],
                self.log_path(method, seed, split), self.threads)
        return {label: self.read_metrics(path)
                for label, path in zip(cands, paths)}

    def pick_thresholds(self, method: str, seed: int, cfg: str,
                        ckpt: str) -> Tuple[Optional[dict], dict]:
        """Evaluate every threshold candidate on val and keep the best
        (:mod:`~mmtrack_kd.benchmark.thresholds`): one ``tools/test.py
        --sweep`` run for all of them (:meth:`evaluate_sweep`), or one run
        per candidate when the grid has a key the network reads
        (:meth:`~mmtrack_kd.benchmark.plan.BenchmarkPlan.sweepable`).
        Either way candidate ``i``'s metrics are in
        ``METRICS/NAME.val.t{i}.json``.

        Returns:
            tuple: the record's ``thresholds`` (``metric``,
            ``tie_break``, ``grid`` (labels), ``chosen`` (label),
            ``options`` (config key -> value), ``val`` (label -> IDF1,
            MOTA, HOTA)), None when the preset does not tune them; and the
            chosen candidate's val metrics ({} for none).
        """
        cands = self.threshold_candidates()
        if not cands:
            return None, {}
        spec = self.threshold_spec()
        if self.sweepable(cands):
            val = self.evaluate_sweep(method, seed, cfg, ckpt, 'val', cands)
        else:
            val = {label: self.evaluate(method, seed, cfg, ckpt, 'val', c,
                                        tag=f'.t{i}')
                   for i, (label, c) in enumerate(cands.items())}
        best = thr.choose(val, spec['metric'], spec['tie_break'])
        tuned = dict(
            metric=spec['metric'], tie_break=spec['tie_break'],
            grid=list(val), chosen=best,
            options=cands[best],
            val={k: {m: v.get(m) for m in ('IDF1', 'MOTA', 'HOTA')}
                 for k, v in val.items()})
        return tuned, val[best]

    def score(self, method: str, seed: int, cfg: str, ckpt: str,
              splits: Sequence[str],
              tuned: Optional[dict] = None) -> Tuple[Optional[dict], dict]:
        """Metrics of every split of ``splits``, with the thresholds picked
        on val (picked now unless ``tuned``, a record's ``thresholds``, is
        given).

        Returns:
            tuple: ``thresholds`` (see :meth:`pick_thresholds`) and
            ``{split: metrics}``.
        """
        metrics = {}
        if tuned is None:
            tuned, val = self.pick_thresholds(method, seed, cfg, ckpt)
            if val and 'val' in splits:
                metrics['val'] = val
        options = (tuned or {}).get('options')
        for split in splits:
            if split not in metrics:
                metrics[split] = self.evaluate(method, seed, cfg, ckpt,
                                               split, options)
        return tuned, metrics

    def run_one(self, method: str, seed: int) -> dict:
        """Train, (KD: extract the student,) pick the thresholds on val,
        evaluate on every split and record one (method, seed); return the
        record.

        Raises:
            RuntimeError: the data changed during the run (no record is
                written), or a step failed.
        """
        kind = METHODS[method][0]
        cfg, eval_cfg = self.configs_of(method, seed)
        data_print = self.fingerprint()  # taken by prepare()
        extra = {}
        if kind == 'kd':
            teacher = self.load_record('teacher', TEACHER_SEED)
            extra['teacher_ckpt_sha1'] = file_sha1(teacher['checkpoint'])
        if kind != 'teacher':
            extra['init_sha1'] = self.make_init(seed)
        cfg_hash = self.config_hash(cfg)
        train_s, train_cpu_s = self.train(method, seed, cfg)
        ckpt = self.final_ckpt(method, seed)
        if not osp.isfile(ckpt):
            raise RuntimeError(f'{method} seed {seed}: no {ckpt} after '
                               'training')
        if kind == 'kd':
            from mmtrack_kd.apis.extract import extract_student
            student_ckpt = osp.join(self.work_dir(method, seed),
                                    'student.pth')
            extract_student(ckpt, student_ckpt)
            ckpt = student_ckpt
        rec = dict(method=method, seed=seed, kind=kind,
                   family=self.family.name,
                   description=self.description(method),
                   fragments=[FRAGMENTS[k][0] for k in
                              self.fragments(method)],
                   config=cfg, eval_config=eval_cfg, checkpoint=ckpt,
                   config_hash=cfg_hash, code_version=self.code(),
                   train_time_s=round(train_s, 2),
                   train_cpu_s=round(train_cpu_s, 2),
                   params=records.param_count(ckpt), metrics={},
                   data_fingerprint=data_print, **extra)
        rec['loss_scale'] = {k: self.scale_of(method, k)
                             for k in self.fragments(method)}
        rec['loss_options'] = {k: v for k, v in self.loss_options.items()
                               if k in self.fragments(method)}
        rec['thresholds'], rec['metrics'] = self.score(
            method, seed, eval_cfg, ckpt, self.splits)
        rec['loss_curve'], rec['balance_curves'] = records.training_curves(
            self.work_dir(method, seed))
        after = records.data_fingerprint(self.data)
        if after != data_print:
            raise RuntimeError(
                f'{self.data} changed while {self.name(method, seed)} ran '
                f'(data_fingerprint {data_print[:10]} before, {after[:10]} '
                'after); its record is not written')
        records.json_dump(rec, self.record_path(method, seed))
        return rec

    def complete(self, method: str, seed: int) -> dict:
        """Evaluate a recorded model on the splits its record lacks (e.g.
        val, for a search that reuses the models of a test-only run), with
        the thresholds the record chose, and write the completed record
        into this run folder."""
        rec = self.load_record(method, seed)
        tuned = rec.get('thresholds') or {}
        cfg = self.usable_eval_config(method, seed, rec)
        _, metrics = self.score(method, seed, cfg, rec['checkpoint'],
                                records.missing_splits(self, rec), tuned)
        rec['metrics'].update(metrics)
        records.json_dump(rec, self.record_path(method, seed))
        return rec

    def usable_eval_config(self, method: str, seed: int, rec: dict) -> str:
        """The config to score a recorded model with: its own
        ``eval_config``, or, when that no longer loads (a file it inherits
        is gone, e.g. it was written from a removed git worktree) and
        ``--allow-stale`` is given, the one this run writes for the same
        (method, seed), with a warning and ``eval_config_replaced`` in the
        record.

        Raises:
            RuntimeError: it does not load and ``--allow-stale`` is not
                given, or neither loads (names the configs and why).
        """
        from mmengine.config import Config
        cfg = rec['eval_config']
        try:
            Config.fromfile(cfg)
            return cfg
        except (FileNotFoundError, OSError) as err:
            why = str(err)
        name = self.name(method, seed)
        if not self.allow_stale:
            raise RuntimeError(
                f'{name}: its eval config {cfg} does not load ({why}); give '
                '--allow-stale to score it with this run\'s config of the '
                'same method and seed') from None
        try:
            fresh = self.configs_of(method, seed)[1]
            Config.fromfile(fresh)
        except (FileNotFoundError, OSError, RuntimeError) as err:
            raise RuntimeError(
                f'{name}: its eval config {cfg} does not load ({why}), nor '
                f'does this run\'s ({err})') from None
        print(f'WARNING: {name}: its eval config {cfg} does not load '
              f'({why}); scored with {fresh}', flush=True)
        rec['eval_config_replaced'] = dict(was=cfg, reason=why)
        return fresh

    def rescore_one(self, method: str, seed: int) -> dict:
        """``--rescore``: pick the thresholds of a recorded model again on
        val from this run's grid and evaluate every split with them
        (training, checkpoint and training fields kept); write the record
        into this run folder with ``rescored`` (date, code, the earlier
        choice)."""
        import datetime
        rec = self.load_record(method, seed)
        old = rec.get('thresholds') or {}
        cfg = self.usable_eval_config(method, seed, rec)
        tuned, metrics = self.score(method, seed, cfg, rec['checkpoint'],
                                    self.splits)
        rec['rescored'] = dict(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec='seconds'),
            code_version=self.code(),
            previous=dict(grid=old.get('grid'), chosen=old.get('chosen'),
                          metrics=rec.get('metrics')))
        rec['thresholds'], rec['metrics'] = tuned, metrics
        records.json_dump(rec, self.record_path(method, seed))
        return rec

    def run_and_report(self, method: str, seed: int,
                       eval_only: Union[bool, str] = False) -> None:
        t0 = time.time()
        verb = {False: 'run', True: 'evaluate', 'rescore': 'rescore'}
        print(f'{verb[eval_only]} {self.name(method, seed)} ...', flush=True)
        step = {False: self.run_one, True: self.complete,
                'rescore': self.rescore_one}[eval_only]
        rec = step(method, seed)
        split = self.splits[-1]
        m = rec['metrics'].get(split, {})
        chosen = (rec.get('thresholds') or {}).get('chosen')
        print(f'  {self.name(method, seed)} done in {time.time() - t0:.0f} '
              f's: {split} IDF1 {m.get("IDF1", float("nan")):.2f}, MOTA '
              f'{m.get("MOTA", float("nan")):.2f}, FPS '
              f'{m.get("FPS", float("nan")):.1f}'
              + (f' (thresholds {chosen}, picked on val)' if chosen else ''),
              flush=True)

    def tasks(self) -> List[Task]:
        """``(self, method, seed, eval_only)`` of every run left to do."""
        todo = []
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            if rec is None:
                todo.append((self, method, seed, False))
            elif self.rescore and self.tune_thresholds and \
                    self.off_grid(rec):
                todo.append((self, method, seed, 'rescore'))
            elif records.missing_splits(self, rec):
                todo.append((self, method, seed, True))
            else:
                print(f'skip {self.name(method, seed)} (recorded)',
                      flush=True)
        return todo

    def run(self) -> dict:
        """Prepare (:meth:`prepare`), then train and evaluate every
        unrecorded run, ``jobs`` at a time (KD runs wait for the teacher).
        A failed run does not stop the others; the failures are raised
        together at the end, after the summary."""
        from .lock import folder_lock
        start = time.time()
        with folder_lock(self.out):
            tasks = self.tasks()
            self.prepare(tasks)
            failures = execute(tasks, self.jobs)
            results = self.summarize()
        raise_failures(failures)
        print(f'benchmark finished in {time.time() - start:.0f} s; see '
              f'{osp.join(self.out, "results.md")}', flush=True)
        return results

    # .............................................................. outputs
    def summarize(self) -> dict:
        """Rewrite results.json, results.md and the plots from every
        record (the stale ones of :attr:`stale` noted); return the
        results."""
        from .plots import plot
        from .report import build_results, write_reports
        recs = records.collect_records(self)
        results = build_results(self, recs, stale=self.stale)
        write_reports(self.out, results)
        plot(results, recs, self.out)
        return results


def file_sha1(path: str) -> str:
    """sha1 of a file's bytes."""
    import hashlib
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def raise_failures(failures: Sequence[Tuple[str, object]]) -> None:
    """RuntimeError listing ``[(run name, error), ...]``, if any."""
    if failures:
        raise RuntimeError(f'{len(failures)} run(s) failed: ' + '; '.join(
            f'{name}: {err}' for name, err in failures))


def execute(tasks: List[Task], jobs: int) -> List[Tuple[str, object]]:
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
                fut = pool.submit(bench.run_and_report, method, seed,
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


def run_benchmark(bench: Benchmark, dry_run: bool = False,
                  report_only: bool = False) -> Optional[dict]:
    """What ``tools/benchmark/kd_benchmark.py`` does with a checked run
    folder: print the plan, then (unless ``dry_run``) rewrite the reports
    from the records (``report_only``) or run everything left.

    Args:
        bench (Benchmark): the run folder.
        dry_run (bool): print the plan and the time estimate only.
        report_only (bool): train nothing; rewrite the reports.

    Returns:
        dict, optional: results.json's content (None for ``dry_run``).

    Raises:
        RuntimeError: runs failed (after the summary was written).
        StaleRecordsError: records of other code, config or data, without
            ``allow_stale`` (nothing is trained or written).
        RunFolderBusyError: another live process runs the same folder.
        FileNotFoundError: ``report_only`` without the data the records
            are checked against.
    """
    print(bench.plan_text(), flush=True)
    if dry_run:
        return None
    if report_only:
        if not osp.isfile(osp.join(bench.data, 'annotations',
                                   'test_cocoformat.json')):
            raise FileNotFoundError(
                f'--report-only: no data in {bench.data} to check the '
                'records against (--data)')
        from .lock import folder_lock
        with folder_lock(bench.out):
            bench.check_stale()
            results = bench.summarize()
        print(f'wrote {osp.join(bench.out, "results.md")}')
        return results
    return bench.run()
