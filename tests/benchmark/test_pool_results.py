"""tools/benchmark/pool_results.py: seeds of several results.json files
joined and compared; a seed found twice with other metrics refused."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'pool_results', osp.join(ROOT, 'tools', 'benchmark',
                                 'pool_results.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rec(idf1, hota=30.):
    return dict(metrics=dict(test=dict(IDF1=idf1, HOTA=hota)),
                train_time_s=1., params=10)


def _results(path, teacher, **methods):
    doc = dict(methods=dict(teacher=dict(seeds={'0': _rec(teacher)})))
    for name, seeds in methods.items():
        doc['methods'][name] = dict(seeds={str(s): _rec(v)
                                           for s, v in seeds.items()})
    path.write_text(json.dumps(doc))
    return str(path)


def test_seeds_of_two_files_are_paired_together(tmp_path, capsys):
    tool = _tool()
    a = _results(tmp_path / 'a.json', 57.,
                 ours={0: 50., 1: 52.}, student={0: 40., 1: 45.})
    b = _results(tmp_path / 'b.json', 58.,
                 ours={2: 55., 1: 52.}, student={2: 41., 1: 45.})
    out = tmp_path / 'pooled.json'
    assert tool.main([a, b, '--pairs', 'ours:student', '--metrics',
                      'IDF1', '--out', str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc['seeds'] == dict(ours=['0', '1', '2'],
                                student=['0', '1', '2'])
    (c, ) = doc['comparisons']
    assert (c['a'], c['b'], c['n']) == ('ours', 'student', 3)
    assert c['mean_diff'] == pytest.approx((10 + 7 + 14) / 3)
    assert doc['sources']['ours__seed2'] == b
    assert doc['sources']['ours__seed0'] == a
    assert doc['same_teacher_scores'] is False
    assert 'different teacher trainings' in capsys.readouterr().out


def test_a_seed_with_other_metrics_is_refused(tmp_path, capsys):
    tool = _tool()
    a = _results(tmp_path / 'a.json', 57., ours={0: 50.}, student={0: 40.})
    b = _results(tmp_path / 'b.json', 57., ours={0: 51.}, student={0: 40.})
    assert tool.main([a, b, '--pairs', 'ours:student']) == 2
    err = capsys.readouterr().err
    assert 'ours seed 0 differs' in err and 'a.json' in err
    assert tool.main([a, '--pairs', 'ours-student']) == 2
    assert 'A:B' in capsys.readouterr().err
    assert tool.main([a, '--pairs', 'ours:student', '--metrics',
                      'IDF2']) == 2
    assert "('IDF2', 'test')" in capsys.readouterr().err
    assert tool.main([a, '--pairs', 'ours:fgd']) == 2
    assert "['fgd']" in capsys.readouterr().err
    (tmp_path / 'bad.json').write_text('{}')
    assert tool.main([str(tmp_path / 'bad.json'), '--pairs',
                      'ours:student']) == 2
    assert 'bad.json: not a benchmark results.json' in \
        capsys.readouterr().err


def test_a_method_of_one_file_read_under_another_name(tmp_path, capsys):
    tool = _tool()
    a = _results(tmp_path / 'a.json', 57., ours={0: 50., 1: 52.})
    b = _results(tmp_path / 'b.json', 57., ours={0: 53., 1: 56.})
    out = tmp_path / 'pooled.json'
    # without the rename the two designs clash as one method
    assert tool.main([a, b, '--pairs', 'ours:student']) == 2
    capsys.readouterr()
    assert tool.main([a, b, '--pairs', 'ours_b:ours', '--metrics', 'IDF1',
                      '--rename', f'{b}:ours=ours_b', '--out',
                      str(out)]) == 0
    doc = json.loads(out.read_text())
    (c, ) = doc['comparisons']
    assert (c['a'], c['b'], c['n']) == ('ours_b', 'ours', 2)
    assert c['mean_diff'] == pytest.approx(3.5)
    assert doc['sources'] == {'ours__seed0': a, 'ours__seed1': a,
                              'ours_b__seed0': b, 'ours_b__seed1': b}
    assert doc['renamed'] == {f'{b}:ours': 'ours_b'}
    capsys.readouterr()
    assert tool.main([a, '--pairs', 'ours:x', '--rename',
                      'nope.json:ours=x']) == 2
    assert 'nope.json is not one of' in capsys.readouterr().err
    assert tool.main([a, '--pairs', 'ours:x', '--rename', f'{a}:ours']) == 2
    assert 'FILE:OLD=NEW' in capsys.readouterr().err
    c = _results(tmp_path / 'c.json', 57., ours={0: 50.}, student={0: 40.})
    assert tool.main([c, '--pairs', 'student:ours', '--rename',
                      f'{c}:ours=student']) == 2
    assert "two methods the name 'student'" in capsys.readouterr().err
