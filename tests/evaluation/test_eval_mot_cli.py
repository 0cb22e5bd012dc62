"""tools/analysis/eval_mot.py on a tiny MOTChallenge folder."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('motmetrics')
pytest.importorskip('trackeval')

from mmtrack_kd.datasets.mot_io import write_mot_txt  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis', 'eval_mot.py')


def _load_cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location('eval_mot_cli', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _make(tmp_path, cls=1):
    gt = np.array([[f, 1, 10 + f, 10, 20, 40, 1, cls, 1.0] for f in (1, 2, 3)]
                  + [[f, 2, 100, 10, 20, 40, 1, cls, 1.0] for f in (1, 2, 3)])
    res = np.array([[f, 4, 10 + f, 10, 20, 40, 0.9] for f in (1, 2, 3)]
                   + [[3, 5, 300, 10, 20, 40, 0.9]])
    write_mot_txt(str(tmp_path / 'gt' / 'SEQ-A' / 'gt' / 'gt.txt'), gt,
                  gt=True)
    write_mot_txt(str(tmp_path / 'res' / 'SEQ-A.txt'), res)
    return str(tmp_path / 'gt'), str(tmp_path / 'res')


def test_cli_subprocess_writes_json(tmp_path):
    gt_root, res_dir = _make(tmp_path)
    out = tmp_path / 'm' / 'metrics.json'
    proc = subprocess.run(
        [sys.executable, SCRIPT, gt_root, res_dir, '--out', str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'SEQ-A' in proc.stdout and 'OVERALL' in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) == {'SEQ-A', 'OVERALL'}
    m = data['OVERALL']
    # 6 GT boxes, person 2 never found, one stray box
    assert (m['FN'], m['FP'], m['IDs']) == (3, 1, 0)
    assert m['MOTA'] == pytest.approx(100 * (1 - 4 / 6))
    assert (m['MT'], m['ML']) == (1, 1)


def test_cli_errors(tmp_path, capsys):
    cli = _load_cli()
    gt_root, res_dir = _make(tmp_path, cls=-1)
    # class -1 (no class labels) needs --no-distractor-filter
    assert cli.main([gt_root, res_dir]) == 1
    assert 'no-distractor-filter' in capsys.readouterr().err
    assert cli.main([gt_root, res_dir, '--no-distractor-filter',
                     '--metrics', 'CLEAR']) == 0
    assert 'HOTA' not in capsys.readouterr().out
    # a missing results file names the sequence
    assert cli.main([gt_root, str(tmp_path / 'empty'),
                     '--no-distractor-filter']) == 1
    assert "'SEQ-A'" in capsys.readouterr().err
    # a malformed ground-truth line names file:line
    gt_file = osp.join(gt_root, 'SEQ-A', 'gt', 'gt.txt')
    lines = open(gt_file).read().splitlines()
    lines[2] = '3,1,12,10,20'  # too few columns
    with open(gt_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    out = tmp_path / 'metrics.json'
    assert cli.main([gt_root, res_dir, '--out', str(out)]) == 1
    assert f'{gt_file}:3' in capsys.readouterr().err
    assert not out.exists()
