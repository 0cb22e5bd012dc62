"""Running the KD benchmark: trainings and evaluations in subprocesses,
several at once, KD trainings waiting for the teacher; every finished
(method, seed) recorded and skipped on a rerun."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import List, Optional, Sequence, Tuple

from . import configs, records
from .plan import FRAGMENTS, METHODS, REPO_ROOT, TEACHER_SEED, BenchmarkPlan

# (benchmark, method, seed, eval_only)
Task = Tuple['Benchmark', str, int, bool]


def children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes."""
    import resource
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def run_cmd(cmd: List[str], log: str, threads: int) -> Tuple[float, float]:
    """Run ``python CMD...`` in the repository with its output appended to
    ``log`` and ``threads`` OpenMP/MKL threads.

    Returns:
        tuple[float, float]: wall and CPU (user + system) seconds. The CPU
        time is what a loaded machine does not inflate much.

    Raises:
        RuntimeError: a non-zero exit, naming the log.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    os.makedirs(osp.dirname(log), exist_ok=True)
    start, cpu = time.time(), children_cpu_s()
    with open(log, 'a') as f:
        f.write(f'\n$ {" ".join(cmd)}\n')
        f.flush()
        proc = subprocess.run([sys.executable] + cmd, cwd=REPO_ROOT, env=env,
                              stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd[:2])} failed (exit '
                           f'{proc.returncode}); see {log}')
    return time.time() - start, children_cpu_s() - cpu


class Benchmark(BenchmarkPlan):
    """One benchmark run folder: the plan (see
    :class:`~mmtrack_kd.benchmark.plan.BenchmarkPlan` for the arguments)
    and its execution."""

    # .............................................................. records
    def load_record(self, method: str, seed: int) -> Optional[dict]:
        return records.load_record(self, method, seed)

    def is_done(self, method: str, seed: int) -> bool:
        return self.load_record(method, seed) is not None

    def plan_text(self) -> str:
        return self.describe(self.is_done)

    def check_teacher_from(self) -> None:
        records.check_teacher_from(self)

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

    def evaluate(self, method: str, seed: int, cfg: str, ckpt: str,
                 split: str) -> dict:
        """``tools/test.py --split SPLIT``; its metrics without the
        ``mot/`` prefix."""
        import json
        out = osp.join(self.out, 'metrics',
                       f'{self.name(method, seed)}.{split}.json')
        run_cmd(['tools/test.py', cfg, ckpt, '--split', split, '--out', out,
                 '--work-dir', osp.join(self.work_dir(method, seed), 'test')],
                self.log_path(method, seed, split), self.threads)
        with open(out) as f:
            raw = json.load(f)
        return {k.split('/', 1)[-1]: v for k, v in raw.items()}

    def run_one(self, method: str, seed: int) -> dict:
        """Train, (KD: extract the student,) evaluate on every split and
        record one (method, seed); return the record."""
        kind = METHODS[method][0]
        teacher_rec = None
        if kind == 'kd':
            teacher_rec = self.load_record('teacher', TEACHER_SEED)
            if teacher_rec is None:
                raise RuntimeError(f'{method} seed {seed}: the teacher is '
                                   'not trained')
        if kind in ('teacher', 'student'):
            cfg = configs.model_cfg(self, kind, seed)
            eval_cfg = cfg
        else:
            cfg = configs.kd_cfg(self, method, seed, teacher_rec['config'],
                                 teacher_rec['checkpoint'])
            eval_cfg = configs.model_cfg(self, 'student', seed)
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
                   description=METHODS[method][2],
                   fragments=[FRAGMENTS[k][0] for k in METHODS[method][1]],
                   config=cfg, eval_config=eval_cfg, checkpoint=ckpt,
                   train_time_s=round(train_s, 2),
                   train_cpu_s=round(train_cpu_s, 2),
                   params=records.param_count(ckpt), metrics={},
                   data_fingerprint=records.data_fingerprint(self.data))
        rec['loss_scale'] = {k: self.scale_of(method, k)
                             for k in METHODS[method][1]}
        rec['loss_options'] = {k: v for k, v in self.loss_options.items()
                               if k in METHODS[method][1]}
        for split in self.splits:
            rec['metrics'][split] = self.evaluate(method, seed, eval_cfg,
                                                  ckpt, split)
        rec['loss_curve'] = records.loss_curve(self.work_dir(method, seed))
        records.json_dump(rec, self.record_path(method, seed))
        return rec

    def complete(self, method: str, seed: int) -> dict:
        """Evaluate a recorded model on the splits its record lacks (e.g.
        val, for a search that reuses the models of a test-only run) and
        write the completed record into this run folder."""
        rec = self.load_record(method, seed)
        for split in records.missing_splits(self, rec):
            rec['metrics'][split] = self.evaluate(method, seed,
                                                  rec['eval_config'],
                                                  rec['checkpoint'], split)
        records.json_dump(rec, self.record_path(method, seed))
        return rec

    def run_and_report(self, method: str, seed: int,
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

    def tasks(self) -> List[Task]:
        """``(self, method, seed, eval_only)`` of every run left to do."""
        todo = []
        for method, seed in self.runs():
            rec = self.load_record(method, seed)
            if rec is None:
                todo.append((self, method, seed, False))
            elif records.missing_splits(self, rec):
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
        self.check_teacher_from()
        failures = execute(self.tasks(), self.jobs)
        results = self.summarize()
        raise_failures(failures)
        print(f'benchmark finished in {time.time() - start:.0f} s; see '
              f'{osp.join(self.out, "results.md")}', flush=True)
        return results

    # .............................................................. outputs
    def summarize(self) -> dict:
        """Rewrite results.json, results.md and the plots from every
        record; return the results."""
        from .plots import plot
        from .report import build_results, write_reports
        recs = records.collect_records(self)
        results = build_results(self, recs)
        write_reports(self.out, results)
        plot(results, recs, self.out)
        return results


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
    """
    print(bench.plan_text(), flush=True)
    if dry_run:
        return None
    if report_only:
        results = bench.summarize()
        print(f'wrote {osp.join(bench.out, "results.md")}')
        return results
    return bench.run()
