"""int8 post-training quantization (mmtrack_kd.apis.quantize): calibration
frames, the quantized graph in the ONNX backend, scoring a split through
ONNX Runtime, and the accuracy report."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmtrack_kd.apis import (
    FrameSource,
    ORTBackend,
    export_onnx,
    track_frames,
)
from mmtrack_kd.apis.quantize import (
    CalibrationFrames,
    add_accuracy_run,
    find_calibration_frames,
    format_quantize_report,
    quantize_tracker_int8,
    summarise_accuracy,
)

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


def write_frames(folder, n):
    os.makedirs(folder, exist_ok=True)
    for i in range(1, n + 1):
        cv2.imwrite(osp.join(folder, f'{i:06d}.jpg'),
                    np.full((8, 8, 3), i, np.uint8))


def test_calibration_frames_spread_over_sequences(tmp_path):
    for seq in ('A', 'B'):
        write_frames(str(tmp_path / 'train' / seq / 'img1'), 10)
    write_frames(str(tmp_path / 'test' / 'C' / 'img1'), 10)
    files = find_calibration_frames(str(tmp_path), 4)
    assert len(files) == 4
    assert [f.split(os.sep)[-3] for f in files] == ['A', 'A', 'B', 'B']
    assert files[0].endswith('A/img1/000001.jpg')
    assert files[-1].endswith('B/img1/000010.jpg')
    # fewer frames than asked: all of them, in order
    assert len(find_calibration_frames(str(tmp_path), 50)) == 20
    # a split folder given directly, and a plain image folder
    assert len(find_calibration_frames(str(tmp_path / 'test'), 3)) == 3
    assert len(find_calibration_frames(
        str(tmp_path / 'test' / 'C' / 'img1'), 30)) == 10
    assert len(find_calibration_frames(str(tmp_path), 30, 'test')) == 10


@pytest.mark.parametrize('case', ['missing', 'empty', 'zero'])
def test_calibration_frames_errors_name_the_option(tmp_path, case):
    root = tmp_path / 'data'
    if case != 'missing':
        root.mkdir()
    error = ValueError if case == 'zero' else FileNotFoundError
    option = '--calib-frames' if case == 'zero' else '--calib-data'
    with pytest.raises(error, match=option):
        find_calibration_frames(str(root), 0 if case == 'zero' else 5)


def test_calibration_inputs_are_the_pipeline_inputs(tiny_model, seq_frames):
    files = sorted(os.listdir(seq_frames))[:2]
    reader = CalibrationFrames(tiny_model,
                               [osp.join(seq_frames, f) for f in files])
    feed = reader.get_next()
    x = feed['input']
    assert x.dtype == np.float32 and x.shape[:2] == (1, 3)
    assert x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.1  # /255
    assert reader.get_next() is not None and reader.get_next() is None
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()['input'], x)


@pytest.fixture(scope='module')
def int8_files(tiny_model, tiny_ckpt, config_path, tiny_opts,
               tiny_synthmot, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('int8')
    fp32 = str(tmp / 'fp32.onnx')
    export_onnx(tiny_model, fp32, (320, 192))
    out = str(tmp / 'int8.onnx')
    result = quantize_tracker_int8(
        config_path, tiny_ckpt, out, onnx=fp32, calib_data=tiny_synthmot,
        calib_frames=6, cfg_options=tiny_opts)
    return fp32, out, result


def test_int8_graph_loads_in_the_backend_and_tracks(tiny_model, int8_files,
                                                     seq_frames):
    fp32, int8, result = int8_files
    assert result['calib_frames'] == 6 and result['per_channel']
    graph = onnx.load(int8)
    ops = {n.op_type for n in graph.graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    conv_weights = [n for n in graph.graph.node
                    if n.op_type == 'DequantizeLinear' and
                    'weight' in n.input[0]]
    assert conv_weights, 'weights are quantized'
    assert result['int8_bytes'] < result['fp32_bytes']
    backend = ORTBackend(int8)
    assert backend.output_names == ['det_p3', 'det_p4', 'det_p5', 'id_map']
    # compared with fp32 on the calibration frames (random weights: no
    # accuracy bound here; the trained students are measured in docs)
    assert len(result['rel_errors']) == 4
    assert all(0 < e < np.inf for e in result['rel_errors'])
    assert 'max |int8 - fp32|' in format_quantize_report(result)
    frames = list(FrameSource(seq_frames))[:6]
    ref = list(track_frames(tiny_model, frames, ORTBackend(fp32)))
    got = list(track_frames(tiny_model, frames, backend))
    assert sum(len(r) for r in got) >= 6, 'the int8 graph must track'
    assert len({i for r in got for i in r.ids.tolist()}) >= 2
    assert sum(len(r) for r in ref) >= 6
    # the int8 outputs follow the fp32 ones
    import torch
    x = torch.from_numpy(CalibrationFrames(tiny_model, []).array(
        osp.join(seq_frames, sorted(os.listdir(seq_frames))[0])))
    a, b = ORTBackend(fp32)(x), backend(x)
    for p, q in zip(a['det_preds'] + [a['id_map']],
                    b['det_preds'] + [b['id_map']]):
        corr = np.corrcoef(p.flatten().numpy(), q.flatten().numpy())[0, 1]
        assert corr > 0.7  # random weights: 0.78 to 0.98 measured


def test_quantize_rejects_bad_inputs(config_path, tiny_ckpt, tiny_opts,
                                     tiny_synthmot, tmp_path):
    out = str(tmp_path / 'int8.onnx')
    with pytest.raises(FileNotFoundError, match='--onnx'):
        quantize_tracker_int8(config_path, tiny_ckpt, out,
                              onnx=str(tmp_path / 'none.onnx'),
                              calib_data=tiny_synthmot,
                              cfg_options=tiny_opts)
    with pytest.raises(ValueError, match='--calib-method'):
        quantize_tracker_int8(config_path, tiny_ckpt, out,
                              calib_data=tiny_synthmot,
                              calib_method='median', cfg_options=tiny_opts)
    with pytest.raises(FileNotFoundError, match='--calib-data'):
        quantize_tracker_int8(config_path, tiny_ckpt, out,
                              calib_data=str(tmp_path / 'nodata'),
                              cfg_options=tiny_opts)
    assert not os.listdir(tmp_path)


def test_evaluate_through_onnx_matches_pytorch(config_path, tiny_ckpt,
                                               tiny_opts, tiny_synthmot,
                                               int8_files, tmp_path,
                                               monkeypatch):
    from mmtrack_kd.apis import evaluate_checkpoint
    root = tiny_synthmot.rstrip('/') + '/'
    opts = dict(tiny_opts)
    opts.update({'model.id_head.num_ids': 7,
                 'test_dataloader.dataset.data_root': root,
                 'test_dataloader.num_workers': 0,
                 'test_dataloader.persistent_workers': False})
    ref = evaluate_checkpoint(config_path, tiny_ckpt, cfg_options=opts,
                              work_dir=str(tmp_path / 'pt'))
    calls = []
    run = ORTBackend.__call__

    def counted(self, inputs):
        calls.append(self.onnx_file)
        return run(self, inputs)

    monkeypatch.setattr(ORTBackend, '__call__', counted)
    fp32, int8, _ = int8_files
    got = evaluate_checkpoint(config_path, tiny_ckpt, cfg_options=opts,
                              work_dir=str(tmp_path / 'ort'), onnx=fp32)
    frames = len(os.listdir(osp.join(root, 'test',
                                     os.listdir(osp.join(root, 'test'))[0],
                                     'img1')))
    assert calls == [fp32] * frames
    assert ref['mot/FP'] > 0, 'the test needs tracks'
    for key in ('mot/IDF1', 'mot/MOTA', 'mot/FP', 'mot/FN', 'mot/IDs'):
        assert got[key] == pytest.approx(ref[key], abs=1e-6)
    with pytest.raises(FileNotFoundError, match='--onnx'):
        evaluate_checkpoint(config_path, tiny_ckpt, cfg_options=opts,
                            onnx=str(tmp_path / 'missing.onnx'))


def run(idf1_fp32, idf1_int8):
    return dict(fp32=dict(IDF1=idf1_fp32), int8=dict(IDF1=idf1_int8),
                delta=dict(IDF1=idf1_int8 - idf1_fp32))


def test_accuracy_report_adds_runs_and_summarises(tmp_path):
    path = str(tmp_path / 'acc.json')
    add_accuracy_run(path, 'student__seed0', run(20.0, 19.5), ['a', 'b c'])
    doc = add_accuracy_run(path, 'ours__seed0', run(25.0, 23.0))
    assert set(doc['runs']) == {'student__seed0', 'ours__seed0'}
    assert doc['runs']['student__seed0']['command'] == "a 'b c'"
    assert doc['runs']['ours__seed0']['date'].endswith('+00:00')
    assert doc['summary']['student']['within_1_idf1']
    assert not doc['summary']['ours']['within_1_idf1']
    assert not doc['summary']['ours']['no_loss_over_1_idf1']
    # a rerun replaces its run
    doc = add_accuracy_run(path, 'ours__seed0', run(25.0, 24.5))
    doc = add_accuracy_run(path, 'ours__seed1', run(30.0, 31.0))
    with open(path) as f:
        assert json.load(f) == doc
    ours = doc['summary']['ours']
    assert ours['runs'] == 2 and ours['within_1_idf1']
    assert ours['no_loss_over_1_idf1']
    doc = add_accuracy_run(path, 'student__seed1', run(20.0, 22.0))
    assert not doc['summary']['student']['within_1_idf1']
    assert doc['summary']['student']['no_loss_over_1_idf1']
    assert ours['delta_idf1'] == pytest.approx(0.25)
    assert (ours['delta_idf1_min'], ours['delta_idf1_max']) == (-0.5, 1.0)
    assert summarise_accuracy({'x__seed0': run(1.0, 3.0)})['x'][
        'fp32_idf1'] == 1.0
