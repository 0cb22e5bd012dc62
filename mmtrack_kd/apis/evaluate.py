"""Tracking and scoring a trained model (``tools/test.py``)."""
import json
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from mmtrack_kd.utils.tools import load_run_config

from .train import build_runner

__all__ = ['build_test_config', 'evaluate_checkpoint', 'sweep_test_cfg']


def build_test_config(config: str,
                      checkpoint: str,
                      work_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None,
                      launcher: str = 'none',
                      split: str = 'test',
                      results_dir: Optional[str] = None) -> Config:
    """The test config of ``config`` that tracks with ``checkpoint``.

    Args:
        config (str): Test config file.
        checkpoint (str): Checkpoint file (``load_from``).
        work_dir (str, optional): Folder for logs.
        cfg_options (dict, optional): Config overrides.
        launcher (str): Job launcher.
        split (str): ``'test'``, or ``'val'`` to run the val dataloader and
            evaluator instead.
        results_dir (str, optional): Every evaluator writes one
            MOTChallenge ``SEQ.txt`` per sequence to this folder.

    Returns:
        Config: the config, with a ``TrackFPSHook`` that times every test
        iteration (model + tracker).

    Raises:
        FileNotFoundError: the checkpoint or the config is missing.
    """
    # the cheap check first: loading the config may already read data
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    cfg = load_run_config(config, work_dir, cfg_options, launcher)
    if split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = cfg.val_evaluator
    if results_dir is not None:
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        for ev in evaluators:
            ev['outfile_prefix'] = results_dir
    cfg.load_from = checkpoint
    # time every test iteration (model + tracker) to report FPS
    custom_hooks = list(cfg.get('custom_hooks', []))
    if not any(h.get('type') == 'TrackFPSHook' for h in custom_hooks):
        custom_hooks.append(dict(type='TrackFPSHook'))
    cfg.custom_hooks = custom_hooks
    return cfg


def sweep_test_cfg(cfg: Config, candidates: Dict[str, dict]) -> dict:
    """The ``test_cfg`` (loop) of ``cfg`` that scores ``candidates`` on one
    network pass (:class:`~mmtrack_kd.evaluation.ThresholdSweepLoop`).

    Raises:
        ValueError: the config's test loop is not mmengine's ``TestLoop``.
    """
    loop = dict(cfg.get('test_cfg') or {})
    if loop.get('type', 'TestLoop') != 'TestLoop':
        raise ValueError(f'--sweep: the config\'s test_cfg.type is '
                         f'{loop["type"]!r}; a sweep replaces TestLoop only')
    loop.pop('type', None)
    return dict(loop, type='ThresholdSweepLoop',
                candidates={k: dict(v) for k, v in candidates.items()})


def write_metrics(metrics: dict, path: str) -> None:
    """Write ``metrics`` as JSON to ``path`` (atomically)."""
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(path) as f:
        json.dump(metrics, f, indent=2, default=float)
    print(f'metrics written to {path}')


def evaluate_checkpoint(config: str,
                        checkpoint: str,
                        out: Optional[str] = None,
                        onnx: Optional[str] = None,
                        sweep: Optional[Dict[str, dict]] = None,
                        **kwargs) -> Dict[str, float]:
    """Track the test (or val) split with ``checkpoint`` and score it.

    Args:
        config (str): Test config file.
        checkpoint (str): Checkpoint file.
        out (str, optional): Write the metrics (and ``FPS``) as JSON to
            this file (rank 0 only); with ``sweep``, a pattern or a folder
            (:func:`~mmtrack_kd.evaluation.sweep_out_paths`): one file per
            candidate, as its own run would write it.
        onnx (str, optional): Run the network in ONNX Runtime (CPU, as many
            intra-op threads as torch has) from this exported file (fp32 or
            int8); post-processing and tracker stay the model's own, with
            ``checkpoint`` loaded.
        sweep (dict, optional): Candidates, label -> {config key: value}
            (``--cfg-options`` keys of the post-processing and the tracker):
            each is scored as ``config`` with its options, all on one
            network pass per frame
            (:class:`~mmtrack_kd.evaluation.ThresholdSweepLoop`).
        **kwargs: As :func:`build_test_config`.

    Returns:
        dict: the metrics, ``FPS`` included; with ``sweep``, label ->
        metrics.

    Raises:
        FileNotFoundError: a missing ``onnx`` file.
        ValueError: with ``sweep``: a key that cannot be swept (named), or
            an ``out`` that would put two candidates in one file.
    """
    if onnx is not None and not osp.isfile(onnx):
        raise FileNotFoundError(f'--onnx: file not found: {onnx}')
    cfg = build_test_config(config, checkpoint, **kwargs)
    paths = {}
    if sweep is not None:
        from mmtrack_kd.evaluation import sweep_out_paths
        if out:
            paths = sweep_out_paths(out, list(sweep))
        cfg.test_cfg = sweep_test_cfg(cfg, sweep)
    runner = build_runner(cfg)
    if onnx is not None:
        import torch

        from .inference import forward_backend
        from .speed import ort_backend
        backend = ort_backend(onnx, torch.get_num_threads())
        with forward_backend(runner.model, backend):
            metrics = dict(runner.test() or {})
    else:
        metrics = dict(runner.test() or {})
    if out and runner.rank == 0:
        if sweep is None:
            write_metrics(metrics, out)
        for label, path in paths.items():
            write_metrics(metrics[label], path)
    return metrics
