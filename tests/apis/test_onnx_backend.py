import numpy as np
import pytest
import torch
import torch.nn as nn

from mmtrack_kd.apis import (
    ExportableAdaptiveAvgPool2d,
    FrameSource,
    ORTBackend,
    export_onnx,
    make_exportable,
    track_frames,
)

# requirements/runtime.txt should list onnx and onnxruntime
onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

NAMES = ['det_p3', 'det_p4', 'det_p5', 'id_map']


@pytest.fixture(scope='module')
def onnx_file(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp('onnx') / 'tiny.onnx'
    assert export_onnx(tiny_model, str(out), (320, 192)) == NAMES
    return str(out)


@pytest.mark.parametrize('size', [(24, 40), (76, 136), (7, 5), (6, 10)])
def test_exportable_pool_matches_adaptive_pool(size):
    x = torch.randn(2, 3, *size)
    ref = nn.AdaptiveAvgPool2d((6, 10))(x)
    torch.testing.assert_close(ExportableAdaptiveAvgPool2d((6, 10))(x), ref)


def test_make_exportable_keeps_the_original(tiny_model):
    copy = make_exportable(tiny_model)
    assert any(isinstance(m, nn.AdaptiveAvgPool2d)
               for m in tiny_model.modules())
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d)
                   for m in copy.modules())
    x = torch.rand(1, 3, 96, 160)
    with torch.no_grad():
        a, b = tiny_model._forward(x), copy._forward(x)
    torch.testing.assert_close(a['id_map'], b['id_map'])


def test_graph_is_valid_with_named_dynamic_outputs(onnx_file):
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == NAMES
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']


@pytest.mark.parametrize('shape', [(1, 3, 192, 320), (2, 3, 256, 224)])
def test_onnxruntime_matches_pytorch(tiny_model, onnx_file, shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = tiny_model._forward(x)
    got = ORTBackend(onnx_file)(x)
    pairs = list(zip(ref['det_preds'] + [ref['id_map']],
                     got['det_preds'] + [got['id_map']]))
    assert len(pairs) == 4
    for a, b in pairs:
        assert a.shape == b.shape
        scale = float(a.abs().max())
        assert scale > 0
        assert float((a - b).abs().max()) <= 1e-4 * max(scale, 1.0)


def test_onnx_tracks_equal_pytorch_tracks(tiny_model, onnx_file,
                                          seq_frames):
    frames = list(FrameSource(seq_frames))[:6]
    ref = list(track_frames(tiny_model, frames))
    got = list(track_frames(tiny_model, frames, ORTBackend(onnx_file)))
    assert sum(len(r) for r in ref) >= 6, 'the test needs tracks'
    assert len({i for r in ref for i in r.ids.tolist()}) >= 2
    for a, b in zip(ref, got):
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.bboxes, b.bboxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    # the backend was only swapped in: PyTorch again gives the same
    again = list(track_frames(tiny_model, frames[:3]))
    assert again[2].ids.tolist() == ref[2].ids.tolist()


def test_failed_export_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / 'broken.onnx'

    def boom(*args, **kwargs):
        raise RuntimeError('export failed')

    monkeypatch.setattr(torch.onnx, 'export', boom)
    with pytest.raises(RuntimeError, match='export failed'):
        export_onnx(tiny_model, str(out))
    assert list(tmp_path.iterdir()) == []


def test_backend_rejects_foreign_graphs(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.onnx'):
        ORTBackend(str(tmp_path / 'nope.onnx'))
    other = tmp_path / 'other.onnx'
    torch.onnx.export(nn.Conv2d(3, 4, 1), (torch.zeros(1, 3, 8, 8), ),
                      str(other), dynamo=False, input_names=['input'],
                      output_names=['logits'])
    with pytest.raises(ValueError, match='logits'):
        ORTBackend(str(other))


def test_static_graph_names_its_input_size(tiny_model, tmp_path):
    from mmtrack_kd.apis import ONNXInputError
    out = tmp_path / 'static.onnx'
    export_onnx(tiny_model, str(out), (160, 96), dynamic=False)
    backend = ORTBackend(str(out))
    assert backend.input_shape == [1, 3, 96, 160]
    assert backend(torch.zeros(1, 3, 96, 160))['id_map'].shape[-2:] == \
        (12, 20)
    with pytest.raises(ONNXInputError, match=r'\[1, 3, 96, 160\]'):
        backend(torch.zeros(1, 3, 192, 320))


def test_session_threads_and_spinning(onnx_file):
    """Idle threads do not spin unless asked (they would slow the
    post-processing and tracker between frames); threads as given."""
    from mmtrack_kd.apis.onnx_backend import session_options
    opts = session_options()
    for key in ('session.intra_op.allow_spinning',
                'session.inter_op.allow_spinning'):
        assert opts.get_session_config_entry(key) == '0'
        assert session_options(spinning=True).get_session_config_entry(
            key) == '1'
    opts = session_options(threads=2)
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (2, 1)
    assert session_options().intra_op_num_threads == 0  # runtime default
    with pytest.raises(ValueError, match='threads'):
        session_options(threads=0)
    backend = ORTBackend(onnx_file, threads=1)
    assert (backend.threads, backend.spinning) == (1, False)
    got = backend.session.get_session_options()
    assert got.get_session_config_entry(
        'session.intra_op.allow_spinning') == '0'
    assert got.intra_op_num_threads == 1
