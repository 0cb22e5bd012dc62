"""End to end: train a tiny CSTrack with tools/train.py on tiny SynthMOT,
then track and score it with tools/test.py."""
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MOT_KEYS = ('MOTA', 'IDF1', 'HOTA', 'MT', 'ML', 'IDs', 'FPS')


def data_opts(data_root):
    root = data_root.rstrip('/') + '/'
    return [f'{k}.dataset.data_root={root}'
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def tiny_model_opts():
    # a CSTrack narrower than YOLOv5-N keeps the test within seconds
    return [
        'model.backbone.widen_factor=0.125', 'model.neck.out_channels=32',
        'model.id_head.embed_channels=32', 'model.id_head.saan.mid_channels=32'
    ]


def run_tool(args, cwd=ROOT, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f'{" ".join(args)} failed:\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-5000:]}')
    return proc


def extract_and_score(kd_ckpt, state, student_cfg, tmp_path):
    """``tools/extract_student.py`` on a KD checkpoint (whose state dict is
    ``state``), then ``tools/test.py`` on the plain student: checks that
    the extracted keys are exactly the student's and that the scores hold
    MOT metrics and an FPS; returns the plain state dict and the metrics."""
    import torch
    student_ckpt = tmp_path / 'student.pth'
    run_tool(['tools/extract_student.py', str(kd_ckpt), str(student_ckpt)])
    plain = torch.load(student_ckpt, map_location='cpu')['state_dict']
    assert set(plain) == {k[len('student.'):] for k in state
                          if k.startswith('student.')}
    out = tmp_path / 'metrics.json'
    run_tool(['tools/test.py', student_cfg, str(student_ckpt), '--work-dir',
              str(tmp_path / 'test'), '--out', str(out)])
    metrics = json.loads(out.read_text())
    for key in ('mot/MOTA', 'mot/IDF1', 'mot/HOTA'):
        assert key in metrics, sorted(metrics)
    assert metrics['FPS'] > 0
    return plain, metrics


def test_train_then_test_cstrack(tiny_synthmot, tmp_path):
    work = tmp_path / 'work'
    cfg = 'configs/cstrack/cstrack_yolov5n_synthmot.py'
    run_tool([
        'tools/train.py', cfg, '--work-dir', str(work), '--cfg-options',
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ] + data_opts(tiny_synthmot) + tiny_model_opts())
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()

    out = tmp_path / 'metrics.json'
    results = tmp_path / 'results'
    run_tool([
        'tools/test.py', cfg, str(ckpt), '--work-dir', str(work),
        '--out', str(out), '--results-dir', str(results), '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ] + data_opts(tiny_synthmot) + tiny_model_opts())
    metrics = json.loads(out.read_text())
    for key in MOT_KEYS:
        assert any(k == key or k.endswith('/' + key) for k in metrics), (
            key, sorted(metrics))
    fps = metrics['FPS']
    assert fps > 0
    # one MOTChallenge result file per test sequence
    seqs = os.listdir(osp.join(tiny_synthmot, 'test'))
    for seq in seqs:
        assert (results / f'{seq}.txt').is_file()


def test_test_tool_missing_checkpoint_is_clear(tmp_path):
    proc = subprocess.run([
        sys.executable, 'tools/test.py',
        'configs/cstrack/cstrack_yolov5n_synthmot.py',
        str(tmp_path / 'nope.pth')
    ], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'checkpoint file not found' in proc.stderr
    assert 'nope.pth' in proc.stderr
