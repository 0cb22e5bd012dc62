"""A threshold sweep: several detection/tracker settings (candidates) scored
on one network pass per frame (``tools/test.py --sweep``).

Every frame goes through the network once
(:meth:`~mmtrack_kd.models.mot.split.FrameSplit.network`); each candidate
then runs the model's own post-processing on those outputs with its
``test_cfg`` and its own tracker (built from its config, so fresh and with
its thresholds), and is scored by its own evaluator. A candidate's metrics
are those of ``tools/test.py --cfg-options KEY=VALUE ...``: the network
reads no test setting, and the post-processing and tracker are the same
code with the same settings.

Only keys that the network does not read can be swept: the model's
post-processing settings (``model.test_cfg.*`` for CSTrack and FairMOT,
``model.detector.test_cfg.*`` for ByteTrack: the
:attr:`~mmtrack_kd.models.mot.split.FrameSplit.test_cfg_key` of the model)
and the tracker's (``model.tracker.*``). Since the post-processing is run
again per candidate rather than filtered from one loose run, its every
setting (score threshold, NMS, top-k cap) is exact, not only the score
threshold.
"""
import copy
import json
import os.path as osp
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmdet.registry import LOOPS, MODELS
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast

from ..engine.hooks import TrackFPSHook
from ..models.mot.split import frame_split, track_frame
from ..utils.config import load_config

#: Config keys under this prefix are the tracker's (swept).
TRACKER_PREFIX = 'model.tracker.'

Candidates = Dict[str, Dict[str, Any]]


def unsweepable_keys(options: Dict[str, Any], test_cfg_key: str) -> List[str]:
    """The keys of ``options`` that a sweep cannot vary without running the
    network again: all but ``model.tracker.*`` and
    ``model.<test_cfg_key>.*``."""
    allowed = (TRACKER_PREFIX, f'model.{test_cfg_key}.')
    return [k for k in options if not k.startswith(allowed)]


def check_sweep(candidates: Candidates, test_cfg_key: str,
                where: str = '--sweep') -> None:
    """Refuse a candidate key that cannot be swept.

    Raises:
        ValueError: naming the candidate and the key.
    """
    for label, options in candidates.items():
        bad = unsweepable_keys(options, test_cfg_key)
        if bad:
            raise ValueError(
                f'{where}: candidate {label!r}: key {bad[0]!r} cannot be '
                'swept on one network pass (only model.tracker.* and '
                f'model.{test_cfg_key}.* can); run tools/test.py once per '
                'candidate with --cfg-options instead')


def load_sweep(path: str) -> Candidates:
    """The candidates of a sweep file: a JSON object, candidate label ->
    {config key: value} (``--cfg-options`` style keys), in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an object of non-empty objects (named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'--sweep: file not found: {path}')
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not data:
        raise ValueError(f'--sweep {path}: expected a JSON object of '
                         'candidates (label -> {config key: value})')
    for label, options in data.items():
        if not isinstance(options, dict) or not options:
            raise ValueError(f'--sweep {path}: candidate {label!r}: '
                             'expected a non-empty object {config key: '
                             f'value}}, got {options!r}')
    return data


def sweep_out_paths(out: str, labels: Sequence[str]) -> Dict[str, str]:
    """Where each candidate's metrics go: ``out`` with ``{i}`` (its index
    in the sweep) and/or ``{label}`` filled in, or, without either,
    ``out/LABEL.json`` (``out`` a folder).

    Raises:
        ValueError: two candidates would share a file, a pattern names
            another field, or a label is no file name (folder form).
    """
    if '{' in out:
        try:
            paths = {label: out.format(i=i, label=label)
                     for i, label in enumerate(labels)}
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f'--out {out}: a pattern takes only {{i}} and '
                             f'{{label}} ({err!r})') from None
    else:
        for label in labels:
            if osp.basename(label) != label or label in ('', '.', '..'):
                raise ValueError(f'--out folder: candidate label {label!r} '
                                 'is no file name; give --out a pattern '
                                 'with {i}')
        paths = {label: osp.join(out, f'{label}.json') for label in labels}
    if len(set(paths.values())) != len(paths):
        raise ValueError(f'--out {out}: candidates share a file; put {{i}} '
                         'or {label} in the pattern')
    return paths


def _output_copy(samples: Sequence) -> list:
    """A candidate's own copy of a batch's samples: new video and frame
    objects (metainfo copied) that share the input's data fields (the
    ground truth, which the tracker and the evaluator only read), so that
    each candidate sets its own ``pred_instances`` and
    ``pred_track_instances``. A deep copy per candidate and frame took
    about a sixth of a 13-candidate sweep."""
    out = []
    for video in samples:
        new = video.new()
        new.video_data_samples = [frame.new() for frame in
                                  video.video_data_samples]
        out.append(new)
    return out


class _Candidate:
    """One candidate of a sweep: its settings, tracker and evaluator, and
    the seconds of its own post-processing and tracking."""

    def __init__(self, label: str, options: dict, test_cfg: dict, tracker,
                 evaluator) -> None:
        self.label = label
        self.options = options
        self.test_cfg = test_cfg
        self.tracker = tracker
        self.evaluator = evaluator
        self.seconds = 0.0


@LOOPS.register_module()
class ThresholdSweepLoop(TestLoop):
    """A test loop that scores every candidate of a sweep on one network
    pass per frame (see the module's doc).

    Each candidate's config is the runner's config with the candidate's
    options merged (as ``--cfg-options``); its tracker is built from that
    config's ``model.tracker``, its post-processing settings read from it
    by the model's :class:`~mmtrack_kd.models.mot.split.FrameSplit`, its
    evaluator built from the test evaluator's config (with
    ``outfile_prefix``, each candidate writes under ``PREFIX/LABEL``).

    ``FPS`` of a candidate (with a ``TrackFPSHook``, after its warm-up
    frames): frames per second of the shared part (data preprocessing and
    network) plus the candidate's own post-processing and tracking, what a
    run of that candidate alone would time.

    Args:
        runner: the runner.
        dataloader: the test dataloader (or its config).
        evaluator: the test evaluator's config (dict or list of dicts).
        candidates: label -> {config key: value}.
        fp16: run the network under autocast.

    Raises:
        TypeError: the model has no frame split, or ``evaluator`` is
            already built.
        ValueError: a key that cannot be swept (:func:`check_sweep`).
        KeyError: a candidate's config has no ``model.tracker``.
    """

    def __init__(self, runner, dataloader, evaluator, candidates: Candidates,
                 fp16: bool = False) -> None:
        if not isinstance(evaluator, (dict, list)):
            raise TypeError('ThresholdSweepLoop: the test evaluator must be '
                            'given as a config (each candidate builds its '
                            f'own), got {type(evaluator).__name__}')
        ev_cfg = copy.deepcopy(evaluator)
        super().__init__(runner, dataloader, evaluator, fp16)
        model = runner.model
        self.model = model.module if is_model_wrapper(model) else model
        self.split = frame_split(self.model)
        check_sweep(candidates, self.split.test_cfg_key)
        meta = getattr(self.dataloader.dataset, 'metainfo', None)
        self.candidates: List[_Candidate] = []
        for label, options in candidates.items():
            model_cfg = load_config(runner.cfg, dict(options)).model
            if model_cfg.get('tracker') is None:
                raise KeyError(f'--sweep: candidate {label!r}: the config '
                               'has no model.tracker')
            ev = runner.build_evaluator(self._with_prefix(ev_cfg, label))
            ev.dataset_meta = meta
            self.candidates.append(_Candidate(
                label, dict(options), self.split.test_cfg(model_cfg),
                MODELS.build(model_cfg.tracker), ev))
        self.shared_seconds = 0.0
        self.timed_frames = 0

    @staticmethod
    def _with_prefix(ev_cfg, label: str):
        """The evaluator config of candidate ``label``: an
        ``outfile_prefix`` gets ``/LABEL`` appended."""
        ev_cfg = copy.deepcopy(ev_cfg)
        for ev in ev_cfg if isinstance(ev_cfg, list) else [ev_cfg]:
            if ev.get('outfile_prefix'):
                ev['outfile_prefix'] = osp.join(ev['outfile_prefix'], label)
        return ev_cfg

    def _fps_warmup(self) -> Optional[int]:
        """Frames a ``TrackFPSHook`` of the runner leaves untimed (None:
        no such hook, no FPS)."""
        for hook in self.runner.hooks:
            if isinstance(hook, TrackFPSHook):
                return hook.num_warmup
        return None

    def run(self) -> Dict[str, dict]:
        """Track the split once for every candidate and score each.

        Returns:
            dict: label -> metrics (``FPS`` included with a
            ``TrackFPSHook``).
        """
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.warmup = self._fps_warmup()
        self.shared_seconds, self.timed_frames = 0.0, 0
        for cand in self.candidates:
            cand.seconds = 0.0
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        logger = self.runner.logger
        results, flat = {}, {}
        for cand in self.candidates:
            logger.info(f'sweep candidate {cand.label}: {cand.options}')
            metrics = dict(cand.evaluator.evaluate(
                len(self.dataloader.dataset)))
            total = self.shared_seconds + cand.seconds
            if self.warmup is not None and self.timed_frames and total > 0:
                metrics['FPS'] = round(self.timed_frames / total, 3)
            results[cand.label] = metrics
            flat.update({f'{cand.label}/{k}': v for k, v in metrics.items()})
        self.runner.call_hook('after_test_epoch', metrics=flat)
        self.runner.call_hook('after_test')
        return results

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """Run the network on the batch's frames once and every candidate's
        post-processing and tracker on its outputs."""
        self.runner.call_hook('before_test_iter', batch_idx=idx,
                              data_batch=data_batch)
        clock = time.perf_counter
        own = [0.0] * len(self.candidates)
        with autocast(enabled=self.fp16):
            t0 = clock()
            data = self.model.data_preprocessor(data_batch, False)
            inputs, samples = data['inputs'], data['data_samples']
            shared = clock() - t0
            if inputs.dim() != 5 or inputs.size(0) != 1 or len(samples) != 1:
                raise ValueError(
                    'ThresholdSweepLoop takes one video per batch: inputs '
                    f'(1, T, 3, H, W), got {tuple(inputs.shape)}')
            outputs = [_output_copy(samples) for _ in self.candidates]
            for t in range(len(samples[0])):
                t0 = clock()
                img = inputs[:, t].contiguous()
                outs = self.split.network(img)
                shared += clock() - t0
                for i, cand in enumerate(self.candidates):
                    t0 = clock()
                    track_frame(self.split, cand.tracker, outs, img,
                                outputs[i][0][t], cand.test_cfg)
                    own[i] += clock() - t0
        for cand, out in zip(self.candidates, outputs):
            cand.evaluator.process(data_samples=out, data_batch=data_batch)
        if self.warmup is not None and idx >= self.warmup:
            self.shared_seconds += shared
            self.timed_frames += 1
            for cand, seconds in zip(self.candidates, own):
                cand.seconds += seconds
        self.runner.call_hook('after_test_iter', batch_idx=idx,
                              data_batch=data_batch, outputs=outputs[0])
