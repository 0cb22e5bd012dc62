"""export_tracker_onnx (``tools/deploy/export_onnx.py``): a checked graph
with named outputs that matches PyTorch, and clear errors."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmtrack_kd.apis import ORTBackend, init_tracker
from mmtrack_kd.apis.export import (
    default_input_size,
    export_tracker_onnx,
    format_export_report,
)

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'deploy', 'export_onnx.py')
CONFIG = osp.join(ROOT, 'configs', 'cstrack', 'cstrack_yolov5n_synthmot.py')
TINY = {
    'model.backbone.widen_factor': 0.125,
    'model.neck.out_channels': 32,
    'model.id_head.embed_channels': 32,
    'model.id_head.saan.mid_channels': 32,
}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = init_tracker(CONFIG, None, cfg_options=dict(
        TINY, **{'model.id_head.num_ids': 4}))
    ckpt = tmp_path_factory.mktemp('export') / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return model, str(ckpt)


@pytest.mark.parametrize('static', [False, True])
def test_export(tiny, tmp_path, static):
    model, ckpt = tiny
    out = tmp_path / 'deploy' / 'tiny.onnx'
    if static:  # through the command line
        args = [CONFIG, ckpt, '--out', str(out), '--input-size', '160',
                '96', '--opset', '17', '--static', '--cfg-options'] + \
            [f'{k}={v}' for k, v in TINY.items()]
        proc = subprocess.run([sys.executable, TOOL] + args, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        printed = proc.stdout
    else:
        result = export_tracker_onnx(CONFIG, ckpt, str(out), (160, 96), 17,
                                     dynamic=True, cfg_options=TINY)
        assert result['names'] == ['det_p3', 'det_p4', 'det_p5', 'id_map']
        assert len(result['diffs']) == 4
        printed = format_export_report(result)
    assert 'max |onnxruntime - pytorch|' in printed
    assert ('static' if static else 'dynamic') + ' shapes' in printed
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version == 17
    assert [o.name for o in graph.graph.output] == [
        'det_p3', 'det_p4', 'det_p5', 'id_map']
    assert os.listdir(out.parent) == ['tiny.onnx']  # no temporary left
    x = torch.rand(1, 3, 96, 160)
    got = ORTBackend(str(out))(x)
    with torch.no_grad():
        ref = model._forward(x)
    assert got['id_map'].shape == (1, 32, 12, 20)
    torch.testing.assert_close(got['id_map'], ref['id_map'], atol=1e-4,
                               rtol=1e-4)
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    if static:
        assert [d.dim_value for d in dims] == [1, 3, 96, 160]
    else:
        assert dims[2].dim_param == 'height'


def test_default_input_size_from_test_pipeline():
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    assert default_input_size(cfg) == (320, 192)


@pytest.mark.parametrize('case', ['no_ckpt', 'bad_size'])
def test_clear_errors(tiny, tmp_path, case):
    ckpt = tiny[1] if case == 'bad_size' else str(tmp_path / 'missing.pth')
    args = [CONFIG, ckpt, '--out', str(tmp_path / 'm.onnx')]
    if case == 'bad_size':
        args += ['--input-size', '100', '64']
    proc = subprocess.run([sys.executable, TOOL] + args, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'Traceback' not in proc.stderr
    expected = 'missing.pth' if case == 'no_ckpt' else 'multiples of 32'
    assert expected in proc.stderr
    assert not (tmp_path / 'm.onnx').exists()
