"""The demo's whole story on a tiny SynthMOT: three models trained, tested,
tabled, plotted and a tracking GIF written (``tools/demo/run_demo.py``); a
rerun (``run_demo``, what the tool calls) skips the training."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmtrack_kd.apis.demo import run_demo

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KNOBS = ['num_seqs_train=1', 'num_seqs_val=1', 'num_seqs_test=1',
         'num_frames=8', 'min_people=2', 'max_people=3']


def test_demo_tiny(tmp_path):
    out = tmp_path / 'demo'
    data = tmp_path / 'data'
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/demo/run_demo.py', '--out', str(out),
         '--data', str(data), '--epochs', '1', '--threads', '1',
         '--no-progress', '--data-knobs'] + KNOBS, cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (out / 'summary.md').read_text()
    for name in ('teacher', 'student', 'kd_student'):
        assert f'| {name} |' in summary
    assert summary in proc.stdout
    runs = json.loads((out / 'summary.json').read_text())
    # the KD student has the student's size, the teacher is bigger
    assert runs['kd_student']['params_M'] == runs['student']['params_M']
    assert runs['teacher']['params_M'] > 2 * runs['student']['params_M']
    for run in runs.values():
        assert 'mot/IDF1' in run['metrics'] and run['metrics']['FPS'] > 0
    assert (out / 'demo_metrics.png').stat().st_size > 0
    gif = out / 'kd_student_tracks.gif'
    assert gif.read_bytes()[:6] in (b'GIF87a', b'GIF89a')

    # a second run finds every training done and retrains nothing
    train_logs = {p: p.stat().st_mtime for p in (out / 'logs').glob('*.log')
                  if p.stem in ('teacher', 'student', 'kd_student')}
    cwd = os.getcwd()
    again = run_demo(out=str(out), data=str(data), epochs=1, threads=1,
                     show_progress=False, data_knobs=KNOBS)
    assert os.getcwd() == cwd
    assert set(again) == set(runs)
    assert not any('train_s' in run for run in again.values())
    for path, mtime in train_logs.items():
        assert path.stat().st_mtime == mtime
