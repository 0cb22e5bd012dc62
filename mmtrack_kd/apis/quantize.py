"""int8 post-training quantization of an exported tracking network
(``tools/deploy/quantize_int8.py``).

ONNX Runtime static quantization in the QDQ format: weights int8 (per
output channel by default), activations uint8, activation ranges calibrated
on training frames. The frames are read through the config's test pipeline
and the model's data preprocessor, so the calibration inputs are exactly
what the deployed network sees. The int8 graph keeps the input and output
names of the fp32 export (``input`` -> ``det_p*``, ``id_map``), so it plugs
into the same :class:`~mmtrack_kd.apis.onnx_backend.ORTBackend`, the same
post-processing and the same tracker (``track_video.py --backend onnx``,
``fps.py --onnx``, ``tools/test.py --onnx``).
"""
import glob
import os
import os.path as osp
import tempfile
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

__all__ = [
    'CALIB_METHODS', 'find_calibration_frames', 'CalibrationFrames',
    'quantize_onnx_int8', 'compare_backends', 'int8_accuracy',
    'summarise_accuracy', 'add_accuracy_run', 'quantize_tracker_int8',
    'format_quantize_report'
]

#: ``--calib-method`` names -> ONNX Runtime ``CalibrationMethod`` members.
CALIB_METHODS = dict(minmax='MinMax', entropy='Entropy',
                     percentile='Percentile')
_IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def _images_in(folder: str) -> List[str]:
    return sorted(f for f in glob.glob(osp.join(folder, '*'))
                  if f.lower().endswith(_IMAGE_EXTS))


def find_calibration_frames(data_root: str, num_frames: int,
                            split: str = 'train') -> List[str]:
    """``num_frames`` image files spread evenly over the frames of
    ``data_root`` (every sequence contributes, in order).

    The frames are looked for, in this order, in
    ``DATA_ROOT/SPLIT/SEQ/img1/``, ``DATA_ROOT/SEQ/img1/`` (a split folder
    given directly) and ``DATA_ROOT/`` itself (a folder of images).

    Args:
        data_root (str): Dataset root (MOTChallenge layout) or image folder.
        num_frames (int): How many frames; all of them when there are fewer.
        split (str): Split folder under ``data_root``.

    Returns:
        list[str]: image paths.

    Raises:
        FileNotFoundError: the folder is missing or holds no frames; the
            message names ``--calib-data``.
        ValueError: ``num_frames`` < 1.
    """
    if num_frames < 1:
        raise ValueError(f'--calib-frames must be >= 1, got {num_frames}')
    if not osp.isdir(data_root):
        raise FileNotFoundError(f'--calib-data: folder not found: '
                                f'{data_root}')
    files: List[str] = []
    for pattern in (osp.join(data_root, split, '*', 'img1'),
                    osp.join(data_root, '*', 'img1')):
        for seq in sorted(glob.glob(pattern)):
            files += _images_in(seq)
        if files:
            break
    if not files:
        files = _images_in(data_root)
    if not files:
        raise FileNotFoundError(
            f'--calib-data: no frames in {data_root} (looked for '
            f'{split}/SEQ/img1/*.jpg, SEQ/img1/*.jpg and *.jpg)')
    if len(files) <= num_frames:
        return files
    picks = np.linspace(0, len(files) - 1, num_frames).round().astype(int)
    return [files[i] for i in picks]


class CalibrationFrames:
    """Calibration inputs for ONNX Runtime: each frame through the model's
    test pipeline (:func:`~mmtrack_kd.apis.inference.build_frame_pipeline`)
    and data preprocessor, as (1, 3, H, W) float32 arrays.

    It has the ``get_next`` / ``rewind`` interface of ONNX Runtime's
    ``CalibrationDataReader``.

    Args:
        model (nn.Module): From :func:`~mmtrack_kd.apis.init_tracker`.
        files (Sequence[str]): Image files.
        input_name (str): The graph's input name.
    """

    def __init__(self, model, files: Sequence[str],
                 input_name: str = 'input') -> None:
        self.model = model
        self.files = list(files)
        self.input_name = input_name
        self._iter: Optional[Iterator[str]] = None

    def array(self, path: str) -> np.ndarray:
        """The network input of one image file."""
        import cv2
        import torch
        img = cv2.imread(path)
        if img is None:
            raise FileNotFoundError(f'--calib-data: cannot read image {path}')
        data = self.model.frame_pipeline(
            dict(img=[img], frame_id=[0], img_id=[1],
                 ori_shape=[img.shape[:2]]))
        batch = dict(inputs=[data['inputs']],
                     data_samples=[data['data_samples']])
        with torch.no_grad():
            inputs = self.model.data_preprocessor(batch, False)['inputs']
        if inputs.dim() == 5:  # (N, T, C, H, W) -> (N*T, C, H, W)
            inputs = inputs.flatten(0, 1)
        return np.ascontiguousarray(inputs.float().numpy())

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        """The next input feed, or None after the last frame."""
        if self._iter is None:
            self._iter = iter(self.files)
        path = next(self._iter, None)
        return None if path is None else {self.input_name: self.array(path)}

    def rewind(self) -> None:
        """Start again from the first frame."""
        self._iter = None

    def __len__(self) -> int:
        return len(self.files)


def quantize_onnx_int8(fp32_onnx: str,
                       out: str,
                       reader,
                       per_channel: bool = True,
                       calib_method: str = 'minmax',
                       nodes_to_exclude: Optional[Sequence[str]] = None
                       ) -> dict:
    """Quantize an exported fp32 graph to int8 (QDQ) with ONNX Runtime's
    static quantization, and check the result.

    The graph is first prepared by ONNX Runtime's ``quant_pre_process``
    (ONNX shape inference and graph optimization; the symbolic shape pass is
    skipped, as the graph's spatial sizes are dynamic). The output is
    written atomically and checked with ``onnx.checker``; its inputs and
    outputs must keep the fp32 graph's names.

    Args:
        fp32_onnx (str): The exported fp32 graph.
        out (str): Output ``.onnx`` path.
        reader: A calibration data reader (``get_next``), e.g.
            :class:`CalibrationFrames`.
        per_channel (bool): One weight scale per output channel.
        calib_method (str): A key of :data:`CALIB_METHODS`.
        nodes_to_exclude (Sequence[str], optional): Node names kept fp32.

    Returns:
        dict: ``out``, ``per_channel``, ``calib_method``, ``fp32_bytes``,
        ``int8_bytes``, ``quantized_nodes`` (QDQ pairs in the graph),
        ``names`` (output names).

    Raises:
        FileNotFoundError: ``fp32_onnx`` is missing.
        ValueError: an unknown ``calib_method``.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..utils.io import atomic_path
    from .onnx_backend import ORTBackend
    if not osp.isfile(fp32_onnx):
        raise FileNotFoundError(f'--onnx: file not found: {fp32_onnx}')
    if calib_method not in CALIB_METHODS:
        raise ValueError(f'--calib-method must be one of '
                         f'{sorted(CALIB_METHODS)}, got {calib_method!r}')
    ORTBackend(fp32_onnx)  # a graph of ours (names checked)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = osp.join(tmp, 'prepared.onnx')
        quant_pre_process(fp32_onnx, prepared, skip_symbolic_shape=True)
        with atomic_path(out) as tmp_out:
            quantize_static(
                prepared, tmp_out, reader, quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod,
                                         CALIB_METHODS[calib_method]),
                nodes_to_exclude=list(nodes_to_exclude or []),
                extra_options=dict(CalibMaxIntermediateOutputs=32))
            graph = onnx.load(tmp_out)
            onnx.checker.check_model(graph)
            ref = onnx.load(fp32_onnx)
            for kind in ('input', 'output'):
                got = [v.name for v in getattr(graph.graph, kind)]
                want = [v.name for v in getattr(ref.graph, kind)]
                if got != want:
                    raise RuntimeError(f'the int8 graph has {kind}s {got}, '
                                       f'the fp32 graph {want}')
    quantized = sum(n.op_type == 'QuantizeLinear' for n in graph.graph.node)
    return dict(out=out, per_channel=per_channel, calib_method=calib_method,
                fp32_bytes=os.path.getsize(fp32_onnx),
                int8_bytes=os.path.getsize(out), quantized_nodes=quantized,
                names=[o.name for o in graph.graph.output])


def compare_backends(reference, other, reader: CalibrationFrames,
                     frames: int = 4) -> List[float]:
    """Per output, the largest |other - reference| over the first
    ``frames`` inputs of ``reader``, relative to the largest |reference|.
    """
    import torch
    errors: List[float] = []
    for path in reader.files[:frames]:
        x = torch.from_numpy(reader.array(path))
        a, b = reference(x), other(x)
        outs = list(zip(a['det_preds'] + [a['id_map']],
                        b['det_preds'] + [b['id_map']]))
        rel = [float((p - q).abs().max() / p.abs().max().clamp(min=1e-6))
               for p, q in outs]
        errors = rel if not errors else [max(e, r)
                                         for e, r in zip(errors, rel)]
    return errors


def quantize_tracker_int8(config: str,
                          checkpoint: str,
                          out: str,
                          onnx: Optional[str] = None,
                          calib_data: Optional[str] = None,
                          calib_frames: int = 300,
                          calib_split: str = 'train',
                          per_channel: bool = True,
                          calib_method: str = 'minmax',
                          nodes_to_exclude: Optional[Sequence[str]] = None,
                          verify: bool = True,
                          cfg_options: Optional[dict] = None) -> dict:
    """Quantize the network of ``config`` + ``checkpoint`` to int8,
    calibrated on training frames.

    Args:
        config (str): Model config (a distillation config's student).
        checkpoint (str): Plain model checkpoint.
        out (str): Output int8 ``.onnx`` file.
        onnx (str, optional): The fp32 export of the same model
            (``tools/deploy/export_onnx.py``); exported at the config's
            input size to a temporary file when None.
        calib_data (str, optional): Data root or image folder (see
            :func:`find_calibration_frames`); default: the config's
            ``train_dataloader.dataset.data_root``.
        calib_frames (int): Calibration frames.
        calib_split (str): Split folder under ``calib_data``.
        per_channel (bool): Per-channel weight scales.
        calib_method (str): ``'minmax'``, ``'entropy'`` or ``'percentile'``.
        nodes_to_exclude (Sequence[str], optional): Node names kept fp32.
        verify (bool): Compare int8 and fp32 outputs on a few calibration
            frames.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: as :func:`quantize_onnx_int8`, plus ``onnx`` (the fp32 input,
        ``None`` when exported on the fly), ``calib_data``,
        ``calib_frames`` (frames used) and ``rel_errors`` (per output, max
        |int8 - fp32| / max |fp32|; ``None`` when not verified).

    Raises:
        FileNotFoundError: a missing config, checkpoint, ONNX file or
            calibration folder (the message names the option).
        ValueError: bad options, or a checkpoint that does not fit.
    """
    from .inference import init_tracker, load_config
    from .onnx_backend import ORTBackend, export_onnx
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    if onnx is not None and not osp.isfile(onnx):
        raise FileNotFoundError(f'--onnx: file not found: {onnx}')
    if calib_method not in CALIB_METHODS:
        raise ValueError(f'--calib-method must be one of '
                         f'{sorted(CALIB_METHODS)}, got {calib_method!r}')
    cfg = load_config(config, cfg_options)
    if calib_data is None:
        try:
            calib_data = cfg.train_dataloader.dataset.data_root
        except AttributeError:
            raise ValueError('--calib-data is needed: the config has no '
                             'train_dataloader.dataset.data_root') from None
    files = find_calibration_frames(calib_data, calib_frames, calib_split)
    model = init_tracker(cfg, checkpoint, 'cpu')
    reader = CalibrationFrames(model, files)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = onnx
        if fp32 is None:
            from .export import default_input_size
            fp32 = osp.join(tmp, 'fp32.onnx')
            export_onnx(model, fp32, default_input_size(cfg))
        result = quantize_onnx_int8(fp32, out, reader, per_channel,
                                    calib_method, nodes_to_exclude)
        errors = None
        if verify:
            reader.rewind()
            errors = compare_backends(ORTBackend(fp32), ORTBackend(out),
                                      reader)
    result.update(onnx=onnx, calib_data=calib_data, calib_frames=len(files),
                  rel_errors=errors)
    return result


def format_quantize_report(result: dict) -> str:
    """The printed report of :func:`quantize_tracker_int8`."""
    lines = [
        f'wrote {result["out"]}: int8 QDQ, '
        f'{"per-channel" if result["per_channel"] else "per-tensor"} '
        f'weights, {result["quantized_nodes"]} quantized tensors, '
        f'{result["calib_method"]} calibration on {result["calib_frames"]} '
        f'frames of {result["calib_data"]}; {result["int8_bytes"] / 1e6:.2f}'
        f' MB (fp32 {result["fp32_bytes"] / 1e6:.2f} MB)'
    ]
    if result.get('rel_errors') is not None:
        for name, err in zip(result['names'], result['rel_errors']):
            lines.append(f'  {name}: max |int8 - fp32| / max |fp32| = '
                         f'{err:.3g}')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# accuracy of the int8 graph against the fp32 one
# --------------------------------------------------------------------------
#: Metrics copied into the accuracy report (higher is better except IDs).
ACCURACY_KEYS = ('IDF1', 'MOTA', 'HOTA', 'IDs', 'FPS')


def int8_accuracy(config: str,
                  checkpoint: str,
                  fp32_onnx: str,
                  int8_onnx: str,
                  split: str = 'test',
                  cfg_options: Optional[dict] = None,
                  work_dir: Optional[str] = None) -> dict:
    """Track and score a split twice, the network in ONNX Runtime from the
    fp32 and from the int8 graph (same post-processing, tracker and
    thresholds), through :func:`~mmtrack_kd.apis.evaluate_checkpoint`.

    Returns:
        dict: ``fp32`` and ``int8`` (the metrics of :data:`ACCURACY_KEYS`)
        and ``delta`` (int8 minus fp32 of each).
    """
    from .evaluate import evaluate_checkpoint
    result = {}
    for kind, path in (('fp32', fp32_onnx), ('int8', int8_onnx)):
        metrics = evaluate_checkpoint(
            config, checkpoint, onnx=path, split=split,
            cfg_options=cfg_options,
            work_dir=osp.join(work_dir, kind) if work_dir else None)
        metrics = {k.split('/', 1)[-1]: v for k, v in metrics.items()}
        result[kind] = {k: float(metrics[k]) for k in ACCURACY_KEYS
                        if k in metrics}
    result['delta'] = {k: result['int8'][k] - result['fp32'][k]
                       for k in result['fp32'] if k in result['int8']}
    return result


def summarise_accuracy(runs: Dict[str, dict]) -> Dict[str, dict]:
    """Group runs named ``GROUP__seedN`` and average their IDF1 (fp32,
    int8) and IDF1 change; ``within_1_idf1``: every run's |change| <= 1;
    ``no_loss_over_1_idf1``: no run loses more than 1 point."""
    groups: Dict[str, List[dict]] = {}
    for name, run in runs.items():
        groups.setdefault(name.split('__seed')[0], []).append(run)
    out = {}
    for group, items in sorted(groups.items()):
        deltas = [r['delta']['IDF1'] for r in items]
        out[group] = dict(
            runs=len(items),
            fp32_idf1=float(np.mean([r['fp32']['IDF1'] for r in items])),
            int8_idf1=float(np.mean([r['int8']['IDF1'] for r in items])),
            delta_idf1=float(np.mean(deltas)),
            delta_idf1_min=float(np.min(deltas)),
            delta_idf1_max=float(np.max(deltas)),
            within_1_idf1=bool(all(abs(d) <= 1.0 for d in deltas)),
            no_loss_over_1_idf1=bool(all(d >= -1.0 for d in deltas)))
    return out


def add_accuracy_run(path: str, name: str, run: dict,
                     command: Optional[Sequence[str]] = None) -> dict:
    """Add (or replace) run ``name`` in the JSON report ``path`` (created
    when missing), with its date (UTC) and command, refresh the
    ``summary`` (:func:`summarise_accuracy`) and write it atomically.

    Returns:
        dict: the whole report.
    """
    import datetime
    import json
    import shlex

    from ..utils.io import atomic_write
    doc = dict(runs={})
    if osp.isfile(path):
        with open(path) as f:
            doc = json.load(f)
    run = dict(run)
    run['date'] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')
    run['command'] = shlex.join(command) if command else None
    doc.setdefault('runs', {})[name] = run
    doc['summary'] = summarise_accuracy(doc['runs'])
    with atomic_write(path) as f:
        json.dump(doc, f, indent=2)
        f.write('\n')
    return doc
