"""mmtrack_kd.benchmark.configs: the generated teacher, student and KD
configs."""
import pytest
from mmengine.config import Config

from mmtrack_kd.benchmark import configs
from mmtrack_kd.benchmark.plan import METHODS, BenchmarkPlan


def test_every_fragment_builds_into_a_valid_kd_config(tmp_path):
    """Each method's distill_cfgs load from its fragment files, MGD/FGD get
    the teacher's neck channels, and the generated config parses."""
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, list(METHODS),
                         data=str(tmp_path / 'd'))
    teacher_ch = plan.preset['teacher']['neck']['out_channels']
    for method, (kind, frags, _) in METHODS.items():
        if kind != 'kd':
            continue
        cfgs = configs.distill_cfgs(plan, method)
        assert len(cfgs) == len(frags)
        for c in cfgs:
            assert set(c) <= {'student_recorders', 'teacher_recorders',
                              'connectors', 'distill_losses',
                              'loss_forward_mappings'}
            for loss in c['distill_losses'].values():
                if 'channels' in loss:
                    assert loss['channels'] == [teacher_ch] * 3
    path = configs.kd_cfg(plan, 'ours_no_feat', 0, '/t.py', '/t.pth')
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'MOTDistiller'
    assert cfg.model.teacher_ckpt == '/t.pth'
    assert cfg.randomness.seed == 0
    losses = [t for c in cfg.model.distill_cfgs
              for t in (v['type'] for v in c['distill_losses'].values())]
    assert losses == ['IDResponseConsistencyLoss', 'PredictionDifferenceLoss']
    assert cfg.model.student.backbone.widen_factor == \
        plan.preset['student']['backbone']['widen_factor']


def test_model_cfg_sets_the_preset_sizes_and_schedule(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'micro', 1, [],
                         data=str(tmp_path / 'd'))
    cfg = Config.fromfile(configs.model_cfg(plan, 'student', 3))
    assert cfg.model.neck.out_channels == 16
    assert cfg.model.test_cfg.max_per_img == 10
    assert cfg.randomness.seed == 3
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path / 'd') + '/'
    # no validation inside the training
    assert cfg.train_cfg.val_begin == cfg.train_cfg.max_epochs + 1
    warm, cosine = cfg.param_scheduler
    assert warm.type == 'LinearLR' and cosine.T_max == 1


def test_ema_averages_every_student_and_not_the_teacher(tmp_path):
    """``--ema``: plain and KD students keep their base hooks and get an
    EMAHook at the momentum; the teacher gets none; without ``--ema``
    no config sets custom_hooks."""
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'), ema=0.01)
    assert 'EMA of their weights (momentum 0.01)' in plan.describe(
        lambda m, s: False)
    for role, path in (
            ('student', configs.model_cfg(plan, 'student', 0)),
            ('kd', configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))):
        hooks = Config.fromfile(path).custom_hooks
        assert hooks[-1] == dict(type='EMAHook',
                                 ema_type='ExponentialMovingAverage',
                                 momentum=0.01, priority=49)
        base = Config.fromfile(configs.family_cfg(plan, role)).custom_hooks
        assert hooks[:-1] == base
    assert base[-1]['type'] == 'DistillStopHook'  # the KD base's, kept
    teacher = Config.fromfile(configs.model_cfg(plan, 'teacher', 0))
    assert 'EMAHook' not in [h['type'] for h in teacher.custom_hooks]
    off = BenchmarkPlan(str(tmp_path / 'o'), 'quick', 1, ['ours'],
                        data=str(tmp_path / 'd'))
    for path in (configs.model_cfg(off, 'student', 0),
                 configs.kd_cfg(off, 'ours', 0, '/t.py', '/t.pth')):
        assert 'custom_hooks = ' not in open(path).read()


def test_loss_scale_multiplies_only_the_named_losses(tmp_path):
    plain = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                          data=str(tmp_path / 'd'))
    scaled = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                           data=str(tmp_path / 'd'),
                           loss_scale=dict(id=0.5, feat=3.0))

    def weights(p):
        return [loss['loss_weight'] for c in configs.distill_cfgs(p, 'ours')
                for loss in c['distill_losses'].values()]

    (w_id, w_feat, w_resp), (s_id, s_feat, s_resp) = \
        weights(plain), weights(scaled)
    assert (s_id, s_feat, s_resp) == pytest.approx(
        (0.5 * w_id, 3.0 * w_feat, w_resp))


def test_grad_ratio_writes_the_loss_balance(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours', 'fitnets'],
                         data=str(tmp_path / 'd'),
                         grad_ratio={'resp': 8.0, 'feat': 2.0})
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))
    assert cfg.model.loss_balance.ratios == dict(kd_id=1.0, kd_feat=2.0,
                                                 kd_resp=8.0)
    cfg = Config.fromfile(configs.kd_cfg(plan, 'fitnets', 0, '/t.py',
                                         '/t.pth'))
    assert set(cfg.model.loss_balance.ratios.values()) == {1.0}
    off = BenchmarkPlan(str(tmp_path / 'o'), 'quick', 1, ['ours'],
                        data=str(tmp_path / 'd'))
    cfg = Config.fromfile(configs.kd_cfg(off, 'ours', 0, '/t.py', '/t.pth'))
    assert 'loss_balance' not in cfg.model


def test_kd_decay_writes_the_decay_of_the_named_fragments(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours', 'only_feat'],
                         data=str(tmp_path / 'd'),
                         grad_ratio={'resp': 8.0, 'feat': 2.0},
                         kd_decay={'ours.feat': 0.0, 'id': 0.5})
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))
    assert cfg.model.loss_balance.decay == dict(kd_id=0.5, kd_feat=0.0)
    # the ours. entry is not for only_feat; no fragment decayed: no key
    cfg = Config.fromfile(configs.kd_cfg(plan, 'only_feat', 0, '/t.py',
                                         '/t.pth'))
    assert 'decay' not in cfg.model.loss_balance


def test_balance_interval_sets_the_balancers_interval(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours', 'fitnets'],
                         data=str(tmp_path / 'd'), grad_ratio={'resp': 8.0},
                         balance_interval=60)
    for method in ('ours', 'fitnets'):
        cfg = Config.fromfile(configs.kd_cfg(plan, method, 0, '/t.py',
                                             '/t.pth'))
        assert cfg.model.loss_balance.interval == 60
    # unset: the fragments' own interval (balance.py, 20)
    plan = BenchmarkPlan(str(tmp_path / 'o'), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'), grad_ratio={'resp': 8.0})
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))
    assert cfg.model.loss_balance.get('interval', 20) == 20


def test_loss_options_set_arguments_of_one_fragment(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'), loss_options=dict(
                             feat=dict(normalize=True, temperature=0.25)))
    losses = {loss['type']: loss for c in configs.distill_cfgs(plan, 'ours')
              for loss in c['distill_losses'].values()}
    assert losses['KeyFeatureLoss']['normalize'] is True
    assert losses['KeyFeatureLoss']['temperature'] == 0.25
    assert 'normalize' not in losses['IDResponseConsistencyLoss']


def test_project_writes_the_grad_projection(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1,
                         ['ours', 'ours_no_feat', 'only_resp'],
                         data=str(tmp_path / 'd'), project=['feat', 'id'])
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))
    assert cfg.model.grad_projection == dict(
        losses=['kd_feat', 'kd_id'], against=['task', 'kd_resp'],
        recorder='neck')
    # no feature fragment: the neck is recorded for the projection alone
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours_no_feat', 0, '/t.py',
                                         '/t.pth'))
    assert cfg.model.grad_projection['losses'] == ['kd_id']
    assert any('neck' in f.get('student_recorders', {})
               for f in cfg.model.distill_cfgs)
    cfg = Config.fromfile(configs.kd_cfg(plan, 'only_resp', 0, '/t.py',
                                         '/t.pth'))
    assert 'grad_projection' not in cfg.model
    with pytest.raises(ValueError, match='--project'):
        BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                      data=str(tmp_path / 'd'), project=['nope'])


def test_connector_options_reach_every_connector_of_the_fragment(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'), loss_options=dict(
                             feat={'connector.detach_iters': 120,
                                   'normalize': True}))
    frags = {next(iter(c['distill_losses'].values()))['type']: c
             for c in configs.distill_cfgs(plan, 'ours')}
    feat = frags['KeyFeatureLoss']
    assert feat['connectors'] and all(
        c['detach_iters'] == 120 for c in feat['connectors'].values())
    loss = feat['distill_losses']['kd_feat']
    assert loss['normalize'] is True and 'connector.detach_iters' not in loss
    assert all('detach_iters' not in c for c in
               frags['IDResponseConsistencyLoss'].get('connectors',
                                                      {}).values())


def test_fragment_option_picks_another_variable_of_the_file(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'), loss_options=dict(
                             feat={'fragment': 'kd_key_feature_relation',
                                   'temperature': 0.25}))
    frags = {next(iter(c['distill_losses'].values()))['type']: c
             for c in configs.distill_cfgs(plan, 'ours')}
    feat = frags['KeyFeatureLoss']
    loss = feat['distill_losses']['kd_feat']
    assert loss['relation'] is True and loss['temperature'] == 0.25
    assert 'fragment' not in loss and not feat.get('connectors')
    assert 'connector' not in feat['loss_forward_mappings']['kd_feat'][
        'preds_S']
    # the other fragments are the defaults; a missing variable is named
    assert 'relation' not in str(frags['PredictionDifferenceLoss'])
    bad = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                        data=str(tmp_path / 'd'),
                        loss_options=dict(feat={'fragment': 'kd_nope'}))
    with pytest.raises(KeyError,
                       match="key_feature.py: no variable 'kd_nope'"):
        configs.distill_cfgs(bad, 'ours')


def test_recorder_options_move_the_read_point_and_its_balance(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                         data=str(tmp_path / 'd'),
                         grad_ratio=dict(resp=20, feat=2, id=2),
                         loss_options=dict(
                             feat={'recorder.source': 'backbone'}))
    cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py', '/t.pth'))
    frags = {next(iter(c['distill_losses'].values()))['type']: c
             for c in cfg.model.distill_cfgs}
    feat = frags['KeyFeatureLoss']
    for side in ('student_recorders', 'teacher_recorders'):
        assert [r['source'] for r in feat[side].values()] == ['backbone']
    assert 'recorder.source' not in feat['distill_losses']['kd_feat']
    # the other fragments read where they did
    resp = frags['PredictionDifferenceLoss']['student_recorders']
    assert all(r['source'] != 'backbone' for r in resp.values())
    # the loss reading the backbone is balanced there, the others on the
    # neck
    assert cfg.model.loss_balance.shared == ['neck']
    assert cfg.model.loss_balance.loss_shared == dict(kd_feat=['backbone'])
    plain = BenchmarkPlan(str(tmp_path), 'quick', 1, ['ours'],
                          data=str(tmp_path / 'd'),
                          grad_ratio=dict(resp=20, feat=2, id=2))
    cfg = Config.fromfile(configs.kd_cfg(plain, 'ours', 0, '/t.py',
                                         '/t.pth'))
    assert 'loss_shared' not in cfg.model.loss_balance


def test_rescale_pipeline_reaches_nested_transforms():
    pipe = [dict(type='LoadImage'), dict(type='Resize', scale=(1, 1)),
            dict(type='Wrap', transforms=[dict(type='RandomResize')])]
    out = configs.rescale_pipeline(pipe, (320, 192))
    assert out[1]['scale'] == (320, 192)
    assert out[2]['transforms'][0]['scale'] == (320, 192)
    assert 'scale' not in out[0] and pipe[1]['scale'] == (1, 1)


def test_load_var_names_the_missing_variable(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text('a = dict(b=1)\n')
    assert configs.load_var(str(path), 'a') == dict(b=1)
    with pytest.raises(KeyError, match="no variable 'z'"):
        configs.load_var(str(path), 'z')


@pytest.mark.parametrize('family, base, kd', [
    ('fairmot', 'fairmot/fairmot_r18_synthmot.py',
     'kd/fairmot_dla34_to_r18_kd_synthmot.py'),
    ('bytetrack', 'bytetrack/bytetrack_yolox_n_synthmot.py',
     'kd/bytetrack_yolox_kd_synthmot.py')])
def test_a_family_inherits_its_configs(tmp_path, family, base, kd):
    plan = BenchmarkPlan(str(tmp_path), 'full', 1, ['ours', 'mgd'],
                         data=str(tmp_path / 'd'), family=family)
    text = open(configs.model_cfg(plan, 'student', 0)).read()
    assert f"'{configs.CFG}/{base}'" in text
    path = configs.kd_cfg(plan, 'mgd', 0, '/t.py', '/t.pth')
    assert f"'{configs.CFG}/{kd}'" in open(path).read()
    cfg = Config.fromfile(path)
    (frag, ) = cfg.model.distill_cfgs
    levels = plan.family.neck_levels
    assert frag['distill_losses']['kd_mgd']['channels'] == \
        [plan.family.neck_channels(plan.preset['teacher'])] * levels
    ours = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, '/t.py',
                                          '/t.pth'))
    losses = [n for c in ours.model.distill_cfgs for n in
              c['distill_losses']]
    assert losses == (['kd_id', 'kd_feat', 'kd_resp'] if family ==
                      'fairmot' else ['kd_feat', 'kd_resp'])
