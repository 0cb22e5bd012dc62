"""The demo's whole story on a tiny SynthMOT: three models trained, tested,
tabled, plotted and a tracking GIF written; a rerun skips the training."""
import importlib.util
import json
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_demo():
    spec = importlib.util.spec_from_file_location(
        'run_demo', osp.join(ROOT, 'tools', 'demo', 'run_demo.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_demo_tiny(tmp_path, capsys):
    demo = load_demo()
    out = tmp_path / 'demo'
    args = [
        '--out', str(out), '--data', str(tmp_path / 'data'), '--epochs', '1',
        '--threads', '1', '--no-progress', '--data-knobs',
        'num_seqs_train=1', 'num_seqs_val=1', 'num_seqs_test=1',
        'num_frames=8', 'min_people=2', 'max_people=3'
    ]
    cwd = os.getcwd()
    try:
        demo.main(args)
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    summary = (out / 'summary.md').read_text()
    for name in ('teacher', 'student', 'kd_student'):
        assert f'| {name} |' in summary
    assert summary in printed
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
    try:
        demo.main(args)
    finally:
        os.chdir(cwd)
    for path, mtime in train_logs.items():
        assert path.stat().st_mtime == mtime
