"""evaluate_mot_files and tools/analysis/eval_mot.py on a tiny MOTChallenge
folder."""
import json
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('motmetrics')
pytest.importorskip('trackeval')

from mmtrack_kd.datasets.mot_io import MOTFormatError, write_mot_txt  # noqa: E402
from mmtrack_kd.evaluation import (  # noqa: E402
    evaluate_mot_files,
    format_table,
    metrics_to_json,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'analysis', 'eval_mot.py')


def _run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args),
                          capture_output=True, text=True, cwd=REPO,
                          timeout=120)


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
    proc = _run_cli(gt_root, res_dir, '--out', str(out))
    assert proc.returncode == 0, proc.stderr
    assert 'SEQ-A' in proc.stdout and 'OVERALL' in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) == {'SEQ-A', 'OVERALL'}
    m = data['OVERALL']
    # 6 GT boxes, person 2 never found, one stray box
    assert (m['FN'], m['FP'], m['IDs']) == (3, 1, 0)
    assert m['MOTA'] == pytest.approx(100 * (1 - 4 / 6))
    assert (m['MT'], m['ML']) == (1, 1)


def test_evaluate_mot_files_errors(tmp_path):
    gt_root, res_dir = _make(tmp_path, cls=-1)
    # class -1 (no class labels) needs --no-distractor-filter
    with pytest.raises(ValueError, match='no-distractor-filter'):
        evaluate_mot_files(gt_root, res_dir)
    metrics = evaluate_mot_files(gt_root, res_dir, distractor_filter=False,
                                 metrics=['CLEAR'])
    assert 'HOTA' not in format_table(metrics)
    assert metrics_to_json(dict(a=dict(b=float('nan'), c=1.0))) == dict(
        a=dict(b=None, c=1.0))
    # a missing results file names the sequence
    with pytest.raises(FileNotFoundError, match="'SEQ-A'"):
        evaluate_mot_files(gt_root, str(tmp_path / 'empty'),
                           distractor_filter=False)


def test_cli_error_names_file_and_line(tmp_path):
    gt_root, res_dir = _make(tmp_path)
    # a malformed ground-truth line names file:line
    gt_file = osp.join(gt_root, 'SEQ-A', 'gt', 'gt.txt')
    lines = open(gt_file).read().splitlines()
    lines[2] = '3,1,12,10,20'  # too few columns
    with open(gt_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(MOTFormatError, match=re.escape(f'{gt_file}:3')):
        evaluate_mot_files(gt_root, res_dir)
    out = tmp_path / 'metrics.json'
    proc = _run_cli(gt_root, res_dir, '--out', str(out))
    assert proc.returncode == 1
    assert 'error:' in proc.stderr and 'Traceback' not in proc.stderr
    assert f'{gt_file}:3' in proc.stderr
    assert not out.exists()
