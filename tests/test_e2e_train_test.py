"""End to end: train a tiny CSTrack with tools/train.py on tiny SynthMOT,
then track and score it with tools/test.py; the helpers of the other
end-to-end tests (tiny data settings, a teacher and its KD student trained
with tools/train.py, extraction and scoring)."""
import hashlib
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


# one epoch on the tiny data, no workers (format with data=<root>)
TINY_DATA = """
data_root = '{data}/'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=1, val_interval=10)
"""


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def write(path, text):
    path.write_text(text)
    return str(path)


def train_teacher_and_kd(tmp_path, tiny, teacher, student, kd):
    """Train a teacher and its KD student one epoch each with
    ``tools/train.py``. ``teacher`` and ``student``: (base config path
    under the repository, ``model = ...`` value); ``kd``: (base KD config,
    the keys of its ``model = dict(...)`` besides ``teacher`` and
    ``teacher_ckpt``). Checks that the teacher's file is unchanged and that
    no teacher weight is in the KD checkpoint.

    Returns:
        tuple: the student's config path, the KD checkpoint, its state
        dict and its training log records (those with a loss).
    """
    def config(name, base, body):
        return write(tmp_path / f'{name}.py',
                     f"_base_ = ['{ROOT}/{base}']\n{tiny}{body}\n")

    teacher_cfg = config('teacher', teacher[0], f'model = {teacher[1]}')
    student_cfg = config('student', student[0], f'model = {student[1]}')
    run_tool(['tools/train.py', teacher_cfg, '--work-dir',
              str(tmp_path / 't')])
    t_ckpt = tmp_path / 't' / 'epoch_1.pth'
    t_hash = sha(t_ckpt)
    kd_cfg = config('kd', kd[0], f"model = dict(teacher='{teacher_cfg}', "
                    f"teacher_ckpt='{t_ckpt}', {kd[1]})")
    run_tool(['tools/train.py', kd_cfg, '--work-dir', str(tmp_path / 'kd')])
    kd_ckpt = tmp_path / 'kd' / 'epoch_1.pth'
    assert sha(t_ckpt) == t_hash, 'KD training modified the teacher file'
    import torch
    state = torch.load(kd_ckpt, map_location='cpu')['state_dict']
    assert not any(k.startswith('teacher') for k in state)
    scalars = next((tmp_path / 'kd').glob('*/vis_data/scalars.json'))
    logs = [json.loads(line) for line in open(scalars) if '"loss"' in line]
    assert logs
    return student_cfg, kd_ckpt, state, logs


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
