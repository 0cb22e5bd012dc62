"""mmtrack_kd.benchmark.plan: presets from the data file, the checks of
the settings, the run order, schedules and the time estimate."""
import re

import pytest

from mmtrack_kd.benchmark import plan
from mmtrack_kd.benchmark.plan import (
    METHODS,
    SWEEP_CANDIDATE_EVALS,
    BenchmarkPlan,
    load_benchmark_data,
    model_overrides,
    parse_loss_options,
    parse_loss_scale,
)


def test_presets_come_from_the_data_file():
    data = load_benchmark_data()
    assert set(data['presets']) == {'micro', 'quick', 'full'}
    assert plan.preset_names() == list(data['presets'])
    full = data['presets']['full']
    # the model overrides are expanded, the measured costs merged in
    assert full['teacher'] == model_overrides(
        dict(widen_factor=0.25, channels=64))
    assert full['teacher']['id_head'] == dict(
        embed_channels=64, saan=dict(mid_channels=64))
    assert full['eval_splits'] == ('test', )
    for key in ('sec_per_iter', 'kd_factor', 'teacher_factor', 'startup_s',
                'eval_s'):
        assert full[key] > 0, key
    micro = data['presets']['micro']
    assert micro['student']['test_cfg'] == dict(max_per_img=10)
    assert list(micro['student'])[-1] == 'test_cfg'
    # each call is a fresh copy
    data['presets']['full']['epochs'] = -1
    assert load_benchmark_data()['presets']['full']['epochs'] == 4
    assert plan.default_methods('micro') == ['teacher', 'student',
                                             'only_feat']
    assert plan.default_methods('full') == list(METHODS)


def test_model_overrides_names_a_missing_key():
    with pytest.raises(KeyError, match='channels'):
        model_overrides(dict(widen_factor=0.5))


def test_settings_are_checked(tmp_path):
    for kwargs, option in ((dict(preset='nope'), '--preset'),
                           (dict(methods=['nope']), '--methods'),
                           (dict(seeds=0), '--seeds'),
                           (dict(first_seed=-1), '--first-seed'),
                           (dict(ema=0.), '--ema'),
                           (dict(ema=1.), '--ema'),
                           (dict(jobs=0), '--jobs'),
                           (dict(loss_scale={'nope': 1.}), '--loss-scale'),
                           (dict(loss_scale={'nope.id': 1.}),
                            '--loss-scale'),
                           (dict(loss_scale={'id': -1.}), '--loss-scale'),
                           (dict(loss_options={'nope': {}}),
                            '--loss-option'),
                           (dict(splits=['train']), '--splits')):
        args = dict(out=str(tmp_path), preset='micro', seeds=1, methods=[])
        args.update(kwargs)
        with pytest.raises(ValueError, match=option):
            BenchmarkPlan(**args)


def test_runs_train_the_teacher_once_and_ablations_last(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'quick', 2,
                      ['ours_no_id', 'fgd', 'ours'])
    assert p.methods == ['teacher', 'student', 'ours', 'ours_no_id', 'fgd']
    assert p.runs() == [('teacher', 0), ('student', 0), ('student', 1),
                        ('ours', 0), ('ours', 1), ('fgd', 0), ('fgd', 1),
                        ('ours_no_id', 0), ('ours_no_id', 1)]
    assert p.data == str(tmp_path / 'data' / 'synthmot_quick')
    assert p.splits == ['test']
    assert p.record_path('ours', 1) == str(tmp_path / 'records' /
                                           'ours__seed1.json')
    assert p.final_ckpt('teacher', 0).endswith(
        'work/teacher__seed0/epoch_6.pth')


def test_first_seed_adds_later_seeds_and_keeps_the_teacher(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'quick', 2, ['ours'], first_seed=5)
    assert p.seeds == [5, 6]
    assert p.runs() == [('teacher', 0), ('student', 5), ('student', 6),
                        ('ours', 5), ('ours', 6)]
    assert p.record_path('ours', 6).endswith('ours__seed6.json')


def test_epochs_option_sets_every_student_not_the_teacher(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      data=str(tmp_path / 'nodata'), epochs=8)
    assert p.epochs('student') == p.epochs('ours') == 8
    assert p.epochs('teacher') == 12
    assert p.final_ckpt('ours', 0).endswith('epoch_8.pth')
    with pytest.raises(ValueError, match='--epochs'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'], epochs=0)


def test_grad_ratio_per_fragment_and_group(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours', 'only_resp'],
                      data=str(tmp_path / 'nodata'),
                      grad_ratio={'resp': 8.0, 'ours.feat': 2.0})
    assert p.ratio_of('only_resp', 'resp') == 8.0
    assert p.ratio_of('ours_no_id', 'feat') == 2.0
    assert p.ratio_of('only_feat', 'feat') == 1.0  # left out: 1
    off = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'])
    assert off.ratio_of('ours', 'resp') is None
    with pytest.raises(ValueError, match='--grad-ratio: unknown'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'nope': 1.0})
    with pytest.raises(ValueError, match='--grad-ratio: ratios'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'id': -1.0})


def test_balance_interval_is_checked(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'resp': 8.0}, balance_interval=60)
    assert p.balance_interval == 60
    assert 'every 60 iterations' in p.describe(lambda m, s: False)
    with pytest.raises(ValueError, match='--balance-interval needs'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      balance_interval=60)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match='--balance-interval: expected'):
            BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                          grad_ratio={'resp': 8.0}, balance_interval=bad)


def test_kd_decay_is_checked(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'resp': 8.0}, kd_decay={'ours.feat': 0.0})
    assert p.decay_of('ours_no_id', 'feat') == 0.0
    assert p.decay_of('only_feat', 'feat') == 1.0
    with pytest.raises(ValueError, match='--kd-decay needs --grad-ratio'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      kd_decay={'feat': 0.0})
    with pytest.raises(ValueError, match='--kd-decay: unknown'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'resp': 8.0}, kd_decay={'nope': 0.0})
    with pytest.raises(ValueError, match='--kd-decay: end factors'):
        BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      grad_ratio={'resp': 8.0}, kd_decay={'id': -1.0})


def test_schedule_and_estimate_from_the_preset(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                      data=str(tmp_path / 'nodata'))
    # no data yet: 6 sequences x 80 frames of the preset, batch 4
    assert p.iters_per_epoch() == 120
    assert p.epochs('teacher') == 12 and p.epochs('ours') == 4
    c = p.preset
    # the test split, plus the val sweep of the 13 threshold candidates
    # (one evaluation and a fraction for each further candidate)
    n = len(p.threshold_candidates())
    assert p.tune_thresholds and n == 13
    evals = 1 + 1 + (n - 1) * SWEEP_CANDIDATE_EVALS
    assert p.estimate_s('student') == pytest.approx(
        c['startup_s'] + 480 * c['sec_per_iter'] + evals * c['eval_s'])
    assert p.estimate_s('ours') == pytest.approx(
        c['startup_s'] + 480 * c['sec_per_iter'] * c['kd_factor'] +
        evals * c['eval_s'])
    # a grid key the network reads: one evaluation per candidate
    grid = {k: dict(v, **{'model.neck.out_channels': 16})
            for k, v in p.threshold_candidates().items()}
    assert not p.sweepable(grid)
    p.threshold_candidates = lambda: grid
    assert p.threshold_evals() == n
    del p.threshold_candidates
    text = p.describe(lambda m, s: m == 'teacher')
    assert re.search(r'^\s+teacher\s+seed 0 .* done ', text, re.M)
    minutes = float(re.search(r'estimated time left: ([\d.]+) min',
                              text).group(1))
    expected = (p.estimate_s('student') + p.estimate_s('ours')) / 60
    assert minutes == pytest.approx(expected, abs=0.05)
    assert '2 student method(s) x 1 seeds + the teacher = 3 trainings' in \
        text


def test_scale_of_prefers_the_method_group(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'quick', 1, [], loss_scale={
        'id': 0.5, 'ours.id': 0.2, 'only_feat.feat': 4.0})
    assert p.scale_of('only_id', 'id') == 0.5
    assert p.scale_of('ours', 'id') == 0.2
    assert p.scale_of('ours_no_feat', 'id') == 0.2
    assert p.scale_of('only_feat', 'feat') == 4.0
    assert p.scale_of('ours', 'feat') == 1.0


def test_parse_loss_scale_and_options():
    assert parse_loss_scale(['id=0.3', 'resp=2']) == dict(id=0.3, resp=2.0)
    for bad in (['id'], ['id=x']):
        with pytest.raises(ValueError,
                           match='--loss-scale: expected LOSS=NUMBER'):
            parse_loss_scale(bad)
    assert parse_loss_options(['feat.normalize=True',
                               'feat.temperature=0.25']) == dict(
        feat=dict(normalize=True, temperature=0.25))
    for bad in (['feat.normalize'], ['feat=1'], ['feat.x=not python']):
        with pytest.raises(ValueError, match='LOSS.ARG=VALUE'):
            parse_loss_options(bad)


def test_family_presets_have_their_own_sizes_and_costs(tmp_path):
    from mmtrack_kd.benchmark.plan import load_benchmark_data
    cst = load_benchmark_data()['presets']['full']
    fair = load_benchmark_data(family='fairmot')['presets']['full']
    byte = load_benchmark_data(family='bytetrack')
    # shared: data, splits, threshold choice
    for key in ('data_preset', 'data_knobs', 'eval_splits',
                'tune_thresholds'):
        assert fair[key] == cst[key] == byte['presets']['full'][key]
    assert 'channels' in fair['teacher']['backbone']
    assert byte['presets']['full']['student']['detector']['neck'][
        'out_channels'] == 32
    assert fair['sec_per_iter'] != cst['sec_per_iter']
    # ByteTrack's own threshold grid
    keys = byte['thresholds']['grid']['score_thr']['keys']
    assert 'model.tracker.obj_score_thrs.high' in keys
    plan = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours'],
                         family='bytetrack')
    assert plan.threshold_candidates()['score_thr=0.5'] == {
        k: 0.5 for k in keys}
    assert plan.fragments('ours') == ('feat', 'resp')
    assert 'family bytetrack' in plan.describe(lambda m, s: False)


def test_unknown_family_and_refused_methods_name_the_option(tmp_path):
    with pytest.raises(ValueError, match="--family: unknown 'jde'"):
        BenchmarkPlan(str(tmp_path), 'micro', 1, [], family='jde')
    with pytest.raises(ValueError, match='only_id does not apply to '
                       '--family bytetrack'):
        BenchmarkPlan(str(tmp_path), 'micro', 1, ['only_id'],
                      family='bytetrack')
    from mmtrack_kd.benchmark.plan import default_methods
    assert 'objectness' not in default_methods('full', 'fairmot')
    assert 'objectness' in default_methods('full', 'cstrack')


def test_a_family_section_must_cover_every_preset(tmp_path):
    import yaml

    from mmtrack_kd.benchmark.plan import PRESETS_FILE, load_benchmark_data
    with open(PRESETS_FILE) as f:
        data = yaml.safe_load(f)
    del data['families']['fairmot']['costs']['quick']
    bad = tmp_path / 'p.yaml'
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(KeyError, match=r'families.fairmot.costs: no entry '
                       r"for \['quick'\]"):
        load_benchmark_data(str(bad), 'fairmot')
    data['families']['fairmot']['costs']['quick'] = {}
    data['families']['fairmot']['presets']['quick']['data_preset'] = 'x'
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(KeyError, match=r"keys \['data_preset'\] cannot be "
                       'set per family'):
        load_benchmark_data(str(bad), 'fairmot')


def test_parse_seeds_of():
    assert plan.parse_seeds_of(['student=5', 'ours=3']) == dict(student=5,
                                                                ours=3)
    assert plan.parse_seeds_of(None) == {}
    for item in ('ours', 'ours=x', 'ours=2.5'):
        with pytest.raises(ValueError, match='--seeds-of: expected '
                           'METHOD=N'):
            plan.parse_seeds_of([item])


def test_seeds_of_gives_a_method_its_own_seed_count(tmp_path):
    p = BenchmarkPlan(str(tmp_path), 'quick', 2, ['ours', 'fgd'],
                      first_seed=5, seeds_of=dict(student=3, ours=3))
    assert p.seeds_of('ours') == [5, 6, 7]
    assert p.seeds_of('fgd') == [5, 6]
    assert p.runs() == [('teacher', 0), ('student', 5), ('student', 6),
                        ('student', 7), ('ours', 5), ('ours', 6),
                        ('ours', 7), ('fgd', 5), ('fgd', 6)]
    text = p.describe(lambda m, s: False)
    assert '2 seeds (3 for student, ours) + the teacher = 9 trainings' \
        in text
    # without seeds_of every method has every seed
    assert BenchmarkPlan(str(tmp_path), 'quick', 2, ['ours']).seed_counts \
        == {}


@pytest.mark.parametrize('seeds_of, match', [
    (dict(ours=4), r"\['ours'\] would have more seeds than the student"),
    (dict(student=1), r"\['fgd', 'ours'\] would have more seeds"),
    (dict(nope=2), "unknown method 'nope'"),
    (dict(teacher=2), "unknown method 'teacher'"),
    (dict(cwd=2), 'cwd is not among'),
    (dict(ours=0), 'ours: expected an integer >= 1, got 0'),
    (dict(ours=True), 'expected an integer'),
])
def test_seeds_of_is_checked(tmp_path, seeds_of, match):
    with pytest.raises(ValueError, match='--seeds-of: .*' + match):
        BenchmarkPlan(str(tmp_path), 'quick', 3, ['ours', 'fgd'],
                      seeds_of=seeds_of)


def test_the_full_protocol_fits_the_budget(tmp_path):
    """``--protocol`` of ``full``: the README's 8-epoch benchmark, 5 seeds
    for the student, ours and the best single loss, at least 3 for the
    rest, every method balanced; its estimate from the measured costs fits
    the 4 h the protocol allows on the 2-core machine."""
    proto = plan.protocol_settings('full')
    assert proto['epochs'] == 8
    assert proto['seeds'] >= 3
    for m in ('student', 'ours', 'only_resp'):
        assert proto['seeds_of'][m] >= 5
    assert {'only_id', 'only_feat', 'only_resp', 'ours_no_id',
            'ours_no_feat', 'ours_no_resp'} <= set(proto['methods'])
    p = BenchmarkPlan(
        str(tmp_path), 'full', proto['seeds'], proto['methods'],
        data=str(tmp_path / 'nodata'), epochs=proto['epochs'],
        seeds_of=proto['seeds_of'], splits=proto['splits'],
        grad_ratio=parse_loss_scale(proto['grad_ratio'], '--grad-ratio'),
        loss_options=parse_loss_options(proto['loss_option']))
    # every KD method of it is balanced by a ratio of the file, not by 1
    for m in p.methods:
        if METHODS[m][0] == 'kd':
            assert all(p.ratio_of(m, k) != 1.0 for k in p.fragments(m)), m
    total = sum(p.estimate_s(m) for m, _ in p.runs())
    assert total / 60 / 2 <= 240


def test_protocol_settings_name_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="--protocol: preset 'quick'"):
        plan.protocol_settings('quick')
    # the protocol's methods are CSTrack's; another family needs its own
    with pytest.raises(ValueError, match="family 'bytetrack' has no "
                       'protocol'):
        plan.protocol_settings('full', 'bytetrack')
    import copy

    import yaml
    with open(plan.PRESETS_FILE) as f:
        real = yaml.safe_load(f)
    data = copy.deepcopy(real)
    data['presets']['full']['protocol']['sed'] = 3
    bad = tmp_path / 'presets.yaml'
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"presets.full.protocol: unknown "
                       r"key\(s\) \['sed'\]"):
        plan.protocol_settings('full', path=str(bad))
    # its values are checked as their options are, naming the file (one
    # file per case: the file's reading is cached by path)
    for i, (key, value, match) in enumerate([
            ('grad_ratio', ['resp=x'], '--grad-ratio: expected LOSS=NUMBER'),
            ('grad_ratio', ['nope=2'], "--grad-ratio: unknown loss"),
            ('methods', ['ours', 'nope'], r"unknown method\(s\) \['nope'\]"),
            ('seeds_of', dict(ours=0), 'seeds_of: ours: expected an integer'),
            ('loss_option', ['feat.x'], '--loss-option: expected')]):
        bad = tmp_path / f'bad{i}.yaml'
        data = copy.deepcopy(real)
        data['presets']['full']['protocol'][key] = value
        bad.write_text(yaml.safe_dump(data))
        with pytest.raises(ValueError, match=re.escape(str(bad)) +
                           r': presets.full.protocol: ' + match):
            plan.protocol_settings('full', path=str(bad))
    data = copy.deepcopy(real)
    data['families']['bytetrack']['presets']['full']['protocol'] = dict(
        methods=['ours', 'only_id', 'pkd'], seeds_of=dict(ours=5, only_id=5))
    own = tmp_path / 'own.yaml'
    own.write_text(yaml.safe_dump(data))
    proto = plan.protocol_settings('full', 'bytetrack', path=str(own))
    assert proto == dict(methods=['ours', 'pkd'], seeds_of=dict(ours=5))


def test_student_size_overrides_every_student(tmp_path):
    """--student-size merges into the preset's student: the generated
    plain and KD student configs carry it, the teacher does not, and the
    run's sizes record it."""
    from mmengine.config import Config

    from mmtrack_kd.benchmark import configs
    from mmtrack_kd.benchmark.plan import parse_size_options
    size = parse_size_options(['backbone.base_channels=12',
                               'neck.in_channels=96',
                               'neck.num_deconv_filters=[48, 24, 16]'])
    assert size == dict(backbone=dict(base_channels=12),
                        neck=dict(in_channels=96,
                                  num_deconv_filters=[48, 24, 16]))
    base = BenchmarkPlan(str(tmp_path / 'a'), 'full', 1, ['ours_no_id'],
                         family='fairmot', data=str(tmp_path / 'd'))
    p = BenchmarkPlan(str(tmp_path / 'b'), 'full', 1, ['ours_no_id'],
                      family='fairmot', data=str(tmp_path / 'd'),
                      student_size=size)
    assert p.preset['student']['backbone'] == dict(base_channels=12)
    assert p.preset['student']['bbox_head'] == \
        base.preset['student']['bbox_head']
    assert p.preset['teacher'] == base.preset['teacher']
    student = Config.fromfile(configs.model_cfg(p, 'student', 0)).model
    teacher = Config.fromfile(configs.model_cfg(p, 'teacher', 0)).model
    assert student.backbone.base_channels == 12
    assert student.neck.num_deconv_filters == [48, 24, 16]
    assert teacher.backbone.channels == base.preset['teacher']['backbone'][
        'channels']
    for bad in (['backbone.base_channels'], ['=3'], ['a..b=1'],
                ['backbone.depth=eighteen']):
        with pytest.raises(ValueError, match='--student-size: expected'):
            parse_size_options(bad)
    with pytest.raises(ValueError, match='sets a key inside'):
        parse_size_options(['neck=1', 'neck.in_channels=2'])
