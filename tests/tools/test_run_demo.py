"""The demo's whole story on a tiny SynthMOT: three models trained, tested,
timed in one interleaved run, tabled with the targets and a closing
sentence, plotted, and the student and the KD student side by side
(``tools/demo/run_demo.py``); a rerun (``run_demo``, what the tool calls)
skips the training. Then the targets and the sentence on made-up
numbers."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from PIL import Image

from mmtrack_kd.apis.demo import (
    check_demo_targets,
    demo_sentence,
    format_demo_summary,
    run_demo,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KNOBS = ['num_seqs_train=1', 'num_seqs_val=1', 'num_seqs_test=1',
         'num_frames=8', 'min_people=2', 'max_people=3']


def test_demo_tiny(tmp_path):
    out = tmp_path / 'demo'
    data = tmp_path / 'data'
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    # --threads 2: the teacher trains beside the student (two lanes)
    proc = subprocess.run(
        [sys.executable, 'tools/demo/run_demo.py', '--out', str(out),
         '--data', str(data), '--epochs', '1', '--teacher-epochs', '2',
         '--threads', '2', '--fps-frames', '8', '--no-progress',
         '--data-knobs'] + KNOBS, cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (out / 'summary.md').read_text()
    for name in ('teacher', 'student', 'kd_student'):
        assert f'| {name} |' in summary
    assert summary in proc.stdout
    assert 'Test split: 1 sequence, 8 frames.' in summary
    doc = json.loads((out / 'summary.json').read_text())
    runs = doc['models']
    # the KD student has the student's size, the teacher is bigger
    assert runs['kd_student']['params_M'] == runs['student']['params_M']
    assert runs['teacher']['params_M'] > 2 * runs['student']['params_M']
    assert runs['teacher']['ckpt'].endswith('epoch_2.pth')
    assert runs['student']['ckpt'].endswith('epoch_1.pth')
    for run in runs.values():
        assert 'mot/IDF1' in run['metrics'] and run['fps'] > 0
        assert run['train_s'] > 0
    # one interleaved FPS run of the three, 3 timed frames each
    fps = json.loads((out / 'fps.json').read_text())
    assert [m['frames'] for m in fps['models']] == [3, 3, 3]
    assert [m['fps'] for m in fps['models']] == [
        runs[n]['fps'] for n in ('teacher', 'student', 'kd_student')]
    # four targets, the time checked on a full run; the summary ends with
    # the sentence
    assert [t['met'] is None for t in doc['targets']] == [False] * 4
    assert doc['timing']['full_run'] is True
    assert summary.rstrip().splitlines()[-1] == demo_sentence(
        runs, doc['targets'], doc['timing'], 1)
    assert (out / 'demo_metrics.png').stat().st_size > 0
    # student and KD student side by side on every test frame
    with Image.open(out / 'student_vs_kd.gif') as im:
        assert im.n_frames == 8 and im.size[0] == 2 * 320 + 4
    assert (out / 'student_vs_kd.mp4').stat().st_size > 0

    # a second run finds every training done and retrains nothing
    train_logs = {p: p.stat().st_mtime for p in (out / 'logs').glob('*.log')
                  if p.stem in ('teacher', 'student', 'kd_student')}
    assert len(train_logs) == 3
    cwd = os.getcwd()
    again = run_demo(out=str(out), data=str(data), epochs=1,
                     teacher_epochs=2, threads=1, show_progress=False,
                     data_knobs=KNOBS, fps_frames=8)
    assert os.getcwd() == cwd
    assert set(again) == set(runs)
    assert not any('train_s' in run for run in again.values())
    for path, mtime in train_logs.items():
        assert path.stat().st_mtime == mtime
    assert 'reused earlier trainings' in (out / 'summary.md').read_text()


def fake_runs(teacher=(40.0, 20.0), student=(25.0, -5.0), kd=(31.0, 4.0)):
    """Runs with (IDF1, MOTA) per model."""
    runs = {}
    for name, (idf1, mota), params, fps in (
            ('teacher', teacher, 2.27, 20.0), ('student', student, 0.57, 45.0),
            ('kd_student', kd, 0.57, 44.0)):
        runs[name] = dict(metrics={'mot/IDF1': idf1, 'mot/MOTA': mota},
                          params_M=params, fps=fps)
    return runs


FULL = dict(wall_s=600.0, full_run=True)


def test_targets_met_and_the_sentence():
    runs = fake_runs()
    checks = check_demo_targets(runs, FULL)
    assert [c['met'] for c in checks] == [True] * 4
    assert [round(c['value'], 6) for c in checks] == [20.0, 15.0, 40.0, 10.0]
    text = demo_sentence(runs, checks, FULL, 5)
    assert text == (
        'On 5 synthetic test sequences the teacher (2.27 M parameters) '
        'reaches IDF1 40.0 and MOTA 20.0 and leads the student (0.57 M) by '
        '15.0 IDF1 points; distillation takes the same student from IDF1 '
        '25.0 to 31.0 (+6.0, 40 % of the lead) and from MOTA -5.0 to 4.0, '
        'at 2.2x the teacher\'s speed (44.0 against 20.0 FPS); the demo '
        'took 10.0 min and met every target.')
    summary = format_demo_summary(runs, checks, FULL, 5, 300)
    assert summary.splitlines()[-1] == text
    assert '| IDF1 gap recovered by KD (%) | 40.0 | >= 30 | yes |' in summary


@pytest.mark.parametrize('case', ['bad_teacher', 'no_lead', 'slow', 'reused'])
def test_missed_targets_are_said_plainly(case):
    runs, timing = fake_runs(), dict(FULL)
    if case == 'bad_teacher':  # negative MOTA, lead 9.9, 29 % recovered
        runs = fake_runs(teacher=(34.9, -1.0), student=(25.0, -5.0),
                         kd=(27.871, 0.0))
        missed = ['teacher MOTA is -1.0 (goal > 0)',
                  'teacher IDF1 - student IDF1 is 9.9 (goal >= 10)',
                  'IDF1 gap recovered by KD (%) is 29.0 (goal >= 30)']
    elif case == 'no_lead':  # the student is ahead: nothing to recover
        runs = fake_runs(teacher=(30.0, 5.0), student=(31.0, 3.0))
        missed = ['teacher IDF1 - student IDF1 is -1.0 (goal >= 10)',
                  'IDF1 gap recovered by KD (%) is undefined (goal >= 30)']
    elif case == 'slow':
        timing['wall_s'] = 12.5 * 60
        missed = ['demo time (min) is 12.5 (goal <= 12)']
    else:  # trainings reused: the time is not checked
        timing = dict(wall_s=2000.0, full_run=False)
        missed = []
    checks = check_demo_targets(runs, timing)
    text = demo_sentence(runs, checks, timing, 5)
    if missed:
        head = 'its target' if len(missed) == 1 else 'these targets'
        assert text.endswith(f' and MISSED {head}: ' + '; '.join(missed)
                             + '.')
        assert '| **no** |' in format_demo_summary(runs, checks, timing, 5,
                                                   300)
    else:
        assert checks[3]['met'] is None
        assert 'reused earlier trainings, so its 33.3 min are not the time ' \
            'of a full demo' in text
        assert text.endswith('and met every target it checks.')
