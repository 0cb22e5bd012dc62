"""Export the network of a tracking model to ONNX from a config and a
checkpoint, checked against PyTorch (``tools/deploy/export_onnx.py``).

The graph maps ``input`` (N, 3, H, W) - the frames as the model's data
preprocessor leaves them (RGB, normalised, padded to 32) - to ``det_p3``,
``det_p4``, ``det_p5`` (raw YOLOv5 head maps) and ``id_map`` (raw
embeddings); see :func:`mmtrack_kd.apis.onnx_backend.export_onnx`.
"""
from typing import List, Optional, Tuple

__all__ = ['default_input_size', 'verify_onnx', 'export_tracker_onnx',
           'format_export_report']


def default_input_size(cfg) -> Tuple[int, int]:
    """(W, H) of the first Resize of the test pipeline, rounded up to 32;
    (320, 192) when the config has none."""
    def find(steps):
        for step in steps or []:
            if step.get('type') in ('Resize', 'mmdet.Resize') and \
                    step.get('scale') is not None:
                return step['scale']
            found = find(step.get('transforms'))
            if found is not None:
                return found
        return None
    try:
        steps = cfg.get('test_pipeline') or \
            cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        steps = None
    scale = find(steps)
    if scale is None:
        return 320, 192
    if isinstance(scale, int):
        scale = (scale, scale)
    return tuple(-(-int(s) // 32) * 32 for s in scale)


def verify_onnx(model, onnx_file: str,
                input_size: Tuple[int, int]) -> List[Tuple[float, float]]:
    """Run ``onnx_file`` in ONNX Runtime and ``model._forward`` in PyTorch
    on one random (1, 3, H, W) input.

    Returns:
        list[tuple[float, float]]: per output, the largest
        |ORT - PyTorch| and the output's max |value|.

    Raises:
        ImportError: onnxruntime is not installed.
    """
    import torch

    from .onnx_backend import ORTBackend
    w, h = input_size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=gen)
    with torch.no_grad():
        ref = model._forward(x)
    got = ORTBackend(onnx_file)(x)
    pairs = list(zip(ref['det_preds'] + [ref['id_map']],
                     got['det_preds'] + [got['id_map']]))
    return [(float((a - b).abs().max()), float(a.abs().max()))
            for a, b in pairs]


def export_tracker_onnx(config: str,
                        checkpoint: str,
                        out: str,
                        input_size: Optional[Tuple[int, int]] = None,
                        opset: int = 17,
                        dynamic: bool = True,
                        verify: bool = True,
                        cfg_options: Optional[dict] = None) -> dict:
    """Export the network of the tracker of ``config`` with ``checkpoint``
    loaded to ``out`` (checked with ``onnx.checker``, written atomically),
    and compare it with PyTorch.

    Args:
        config (str): Model config file.
        checkpoint (str): Plain model checkpoint (for a distillation
            checkpoint, :func:`extract_student` first).
        out (str): Output ``.onnx`` file.
        input_size (tuple[int, int], optional): Example ``(W, H)``,
            multiples of 32 (default: :func:`default_input_size`).
        opset (int): ONNX opset.
        dynamic (bool): Dynamic batch, height and width axes.
        verify (bool): Compare ONNX Runtime with PyTorch on one random
            input.
        cfg_options (dict, optional): Config overrides.

    Returns:
        dict: ``out``, ``input_size``, ``names`` (output names), ``opset``,
        ``dynamic`` and ``diffs`` (per output ``(max |ORT - PyTorch|, max
        |output|)``; ``None`` when not verified, ``'no onnxruntime'`` when
        onnxruntime is missing).

    Raises:
        FileNotFoundError: a missing config or checkpoint.
        ValueError: a checkpoint that does not fit the config.
    """
    from .inference import init_tracker, load_config
    from .onnx_backend import export_onnx
    cfg = load_config(config, cfg_options)
    # the tracker is not exported, but init_tracker needs one
    model = init_tracker(cfg, checkpoint, 'cpu')
    size = tuple(input_size) if input_size else default_input_size(cfg)
    names = export_onnx(model, out, size, opset, dynamic=dynamic)
    diffs = None
    if verify:
        try:
            diffs = verify_onnx(model, out, size)
        except ImportError:
            diffs = 'no onnxruntime'
    return dict(out=out, input_size=size, names=names, opset=opset,
                dynamic=dynamic, diffs=diffs)


def format_export_report(result: dict) -> str:
    """The printed report of :func:`export_tracker_onnx`."""
    w, h = result['input_size']
    lines = [f'exported {result["out"]}: input (N, 3, H, W), example '
             f'{w}x{h}, outputs {result["names"]}, opset {result["opset"]}, '
             f'{"dynamic" if result["dynamic"] else "static"} shapes']
    diffs = result['diffs']
    if diffs == 'no onnxruntime':
        lines.append('onnxruntime not installed: not verified')
    elif diffs is not None:
        for name, (diff, scale) in zip(result['names'], diffs):
            lines.append(f'  {name}: max |onnxruntime - pytorch| = '
                         f'{diff:.3g} (max |output| {scale:.3g})')
    return '\n'.join(lines)
