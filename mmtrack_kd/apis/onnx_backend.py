"""ONNX export of a CSTrack-style network and an ONNX Runtime backend.

The exported graph is the network alone (``model._forward``): input
``input`` (N, 3, H, W) normalised as the model's data preprocessor leaves it,
outputs ``det_p3``, ``det_p4``, ``det_p5`` (the raw YOLOv5 head maps of the
stride 8/16/32 levels, (N, A*(5+C), H_l, W_l)) and ``id_map`` (N, D, H/8,
W/8). Batch, height and width are dynamic. Decoding, NMS, embedding
gathering and tracking stay in PyTorch (the model's own ``predict``), so
both runtimes share them.
"""
import copy
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..utils.io import atomic_path

ID_MAP_NAME = 'id_map'
INPUT_NAME = 'input'


class ONNXInputError(ValueError):
    """The frames do not fit the input shape of an exported graph."""


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` written as two matrix products, which ONNX
    can express for inputs of any (dynamic) size.

    Output bin i of a side of length n averages the positions
    [floor(i*n/o), ceil((i+1)*n/o)), exactly as PyTorch's adaptive pooling.

    Args:
        output_size: (h, w) of the output.
    """

    def __init__(self, output_size: Sequence[int]) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if any(s is None for s in output_size):
            raise ValueError('ExportableAdaptiveAvgPool2d needs a fixed '
                             f'output size, got {output_size}')
        self.output_size = tuple(int(s) for s in output_size)

    @staticmethod
    def _bins(n, out: int, like: Tensor) -> Tensor:
        """(out, n) averaging matrix of one side."""
        i = torch.arange(out, device=like.device)
        pos = torch.arange(n, device=like.device)
        start = torch.div(i * n, out, rounding_mode='floor')
        end = torch.div((i + 1) * n + out - 1, out, rounding_mode='floor')
        inside = (pos[None] >= start[:, None]) & (pos[None] < end[:, None])
        weights = inside.to(like.dtype)
        return weights / weights.sum(1, keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, h, w)."""
        rows = self._bins(x.shape[-2], self.output_size[0], x)
        cols = self._bins(x.shape[-1], self.output_size[1], x)
        return torch.matmul(torch.matmul(rows, x), cols.t())


def make_exportable(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode whose ``AdaptiveAvgPool2d``
    modules (CSTrack's CCN token pooling) are replaced by
    :class:`ExportableAdaptiveAvgPool2d`; weights and outputs unchanged."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                setattr(module, child_name,
                        ExportableAdaptiveAvgPool2d(child.output_size))
    return model


def output_names(model: nn.Module) -> List[str]:
    """``det_p{log2(stride)}`` per head level, then ``id_map``."""
    strides = getattr(model, 'strides', None) or \
        model.bbox_head.strides
    return [f'det_p{int(round(math.log2(s)))}' for s in strides] + \
        [ID_MAP_NAME]


class TensorForward(nn.Module):
    """``model._forward`` as a module returning a flat tuple
    ``(*det_preds, id_map)`` (what ONNX export traces)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        outs = self.model._forward(inputs)
        return (*outs['det_preds'], outs['id_map'])


def export_onnx(model: nn.Module,
                out: str,
                input_size: Tuple[int, int] = (320, 192),
                opset: int = 17,
                dynamic: bool = True) -> List[str]:
    """Export the network forward of ``model`` to ``out`` and check it.

    The file is written beside ``out`` under a temporary name, checked by
    ``onnx.checker`` and then renamed, so a failed export leaves no (or the
    previous) ``out``.

    Args:
        model: a CSTrack-style model (``_forward`` -> ``dict(det_preds,
            id_map)``, ``strides``).
        out: output ``.onnx`` path.
        input_size: (W, H) of the example input traced (and the only size
            accepted when ``dynamic`` is False).
        opset: ONNX opset version.
        dynamic: batch, height and width dynamic.

    Returns:
        list[str]: the output names.
    """
    import onnx
    names = output_names(model)
    wrapper = TensorForward(make_exportable(model)).eval()
    w, h = (int(v) for v in input_size)
    param = next(model.parameters())
    example = torch.zeros(1, 3, h, w, dtype=param.dtype, device=param.device)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}}
        for name in names:
            dynamic_axes[name] = {0: 'batch', 2: f'{name}_h', 3: f'{name}_w'}
    with atomic_path(out) as tmp:
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (example, ), tmp, dynamo=False,
                opset_version=int(opset), input_names=[INPUT_NAME],
                output_names=names, dynamic_axes=dynamic_axes,
                do_constant_folding=True)
        onnx_model = onnx.load(tmp)
        onnx.checker.check_model(onnx_model, full_check=True)
        got = [o.name for o in onnx_model.graph.output]
        if got != names:
            raise RuntimeError(f'exported outputs {got}, expected {names}')
    return names


def session_options(threads: Optional[int] = None, spinning: bool = False):
    """ONNX Runtime session options: ``threads`` intra-op threads (None:
    its default) and one inter-op thread when set; idle threads spin only
    when ``spinning``."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or int(threads) < 1:
            raise ValueError(f'threads must be a positive int, got '
                             f'{threads!r}')
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    flag = '1' if spinning else '0'
    opts.add_session_config_entry('session.intra_op.allow_spinning', flag)
    opts.add_session_config_entry('session.inter_op.allow_spinning', flag)
    return opts


class ORTBackend:
    """Run an exported network in ONNX Runtime, as a stand-in for
    ``model._forward`` (see :func:`mmtrack_kd.apis.track_frames`).

    Args:
        onnx_file: the exported model.
        providers: ONNX Runtime execution providers.
        threads: intra-op threads of the session (None: ONNX Runtime's
            default, one per physical core).
        spinning: let the session's idle threads spin, waiting for work
            (ONNX Runtime's default). Off by default: between two frames
            the post-processing and the tracker run on the same cores, and
            threads left spinning after a run slow them down (several
            sessions in one process, each with its own threads, slow each
            other down as well).

    Attributes:
        output_names (list[str]): graph outputs; the last is ``id_map``.

    Example:
        >>> backend = ORTBackend('cstrack.onnx')
        >>> outs = backend(torch.zeros(1, 3, 192, 320))
        >>> len(outs['det_preds']), outs['id_map'].shape[1]
    """

    def __init__(self,
                 onnx_file: str,
                 providers: Sequence[str] = ('CPUExecutionProvider', ),
                 threads: Optional[int] = None,
                 spinning: bool = False) -> None:
        import onnxruntime as ort
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
        self.onnx_file = onnx_file
        self.threads, self.spinning = threads, bool(spinning)
        self.session = ort.InferenceSession(
            onnx_file, sess_options=session_options(threads, spinning),
            providers=list(providers))
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f'{onnx_file}: expected one input, the graph '
                             f'has {[i.name for i in inputs]}')
        self.input_name = inputs[0].name
        # None for dynamic axes, an int where the graph fixes the size
        self.input_shape = [d if isinstance(d, int) else None
                            for d in inputs[0].shape]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if len(self.output_names) < 2 or \
                self.output_names[-1] != ID_MAP_NAME or \
                not all(n.startswith('det_p') for n in self.output_names[:-1]):
            raise ValueError(
                f'{onnx_file}: outputs {self.output_names} are not '
                "det_p*, ..., id_map (export it with "
                'tools/deploy/export_onnx.py)')

    def __call__(self, inputs: Tensor) -> Dict[str, Union[List[Tensor],
                                                         Tensor]]:
        """(N, 3, H, W) -> ``dict(det_preds=[...], id_map=Tensor)`` on the
        device of ``inputs``, like ``CSTrack._forward``."""
        fixed = [(i, d) for i, d in enumerate(self.input_shape)
                 if d is not None]
        if inputs.dim() != len(self.input_shape) or any(
                inputs.shape[i] != d for i, d in fixed):
            raise ONNXInputError(
                f'{self.onnx_file} takes inputs of shape '
                f'{["*" if d is None else d for d in self.input_shape]}, got '
                f'{tuple(inputs.shape)}; export it without --static (or '
                'with this --input-size)')
        array = inputs.detach().to('cpu', torch.float32).contiguous().numpy()
        outs = self.session.run(self.output_names, {self.input_name: array})
        outs = [torch.from_numpy(np.ascontiguousarray(o)).to(inputs.device)
                for o in outs]
        return dict(det_preds=outs[:-1], id_map=outs[-1])
