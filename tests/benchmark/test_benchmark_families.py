"""mmtrack_kd.benchmark.families: cstrack generates the configs of the
benchmark before families, the fragments fitted to each family, the
methods refused, and every KD method's generated config of each new family
building into a distiller."""
import os.path as osp

import pytest
from cstrack_golden import CASES, GOLDEN, generate
from mmengine.config import Config

from mmtrack_kd.benchmark import configs
from mmtrack_kd.benchmark.families import (
    FAMILIES,
    adapt_fragment,
    check_methods,
    method_fragments,
)
from mmtrack_kd.benchmark.plan import FRAGMENTS, METHODS, BenchmarkPlan

CFG = configs.CFG


@pytest.mark.parametrize('name', [c[0] for c in CASES])
def test_cstrack_configs_are_those_before_families(name, tmp_path):
    """The golden files were generated before the family dimension
    existed (tests/benchmark/cstrack_golden.py)."""
    with open(osp.join(GOLDEN, name + '.txt')) as f:
        golden = f.read()
    assert generate(name, str(tmp_path)) == golden
    assert generate(name, str(tmp_path),
                    dict(family='cstrack')) == golden


def test_adapting_a_fragment_to_cstrack_changes_nothing():
    cstrack = FAMILIES['cstrack']
    for key, (fname, var) in FRAGMENTS.items():
        frag = configs.load_var(osp.join(configs.DISTILL, fname), var)
        assert adapt_fragment(cstrack, frag) == frag, key


@pytest.mark.parametrize('family', ['fairmot', 'bytetrack'])
def test_adapted_shared_fragments_are_the_family_own(family):
    """The adaptation that fits the baselines to a family turns our shared
    feature and response fragments into those the family's own KD config
    uses: the same rules (prefix, one-map neck, decoder, no ID head)."""
    fam = FAMILIES[family]
    for key in ('feat', 'resp'):
        fname, var = FRAGMENTS[key]
        shared = configs.load_var(osp.join(configs.DISTILL, fname), var)
        rel, own_var = fam.fragments[key]
        own = configs.load_var(osp.join(CFG, rel), own_var)
        adapted = adapt_fragment(fam, shared)
        if family == 'bytetrack' and key == 'resp':
            # the shared fragment maps gt_bboxes (for the loss's optional
            # gt_iou_thr check, off by default); ByteTrack's own does not
            del adapted['loss_forward_mappings']['kd_resp']['gt_bboxes']
        assert adapted == own, (family, key)


def test_adapt_fits_the_neck_levels_prefix_and_decoder():
    fgd = configs.load_var(osp.join(configs.DISTILL, 'baselines/fgd.py'),
                           'kd_fgd')
    one = adapt_fragment(FAMILIES['fairmot'], fgd)
    assert list(one['connectors']) == ['fgd_c0']
    spec = one['loss_forward_mappings']['kd_fgd']['preds_S']
    assert spec['connector'] == 'fgd_c0' and spec['data_idx'] == 0
    assert one['loss_forward_mappings']['kd_fgd']['preds_T']['data_idx'] \
        == 0
    byte = adapt_fragment(FAMILIES['bytetrack'], fgd)
    assert byte['student_recorders']['neck']['source'] == 'detector.neck'
    assert len(byte['connectors']) == 3
    obj = configs.load_var(
        osp.join(configs.DISTILL, 'baselines/objectness.py'),
        'kd_objectness')
    dec = adapt_fragment(FAMILIES['bytetrack'], obj)['distill_losses'][
        'kd_obj']['decoder']
    assert dec == dict(type='yolox', strides=None)
    idr = configs.load_var(osp.join(configs.DISTILL, 'id_response.py'),
                           'kd_id_response')
    with pytest.raises(ValueError, match='reads the ID head; bytetrack'):
        adapt_fragment(FAMILIES['bytetrack'], idr)


def test_methods_that_need_an_id_head_are_refused_by_name():
    byte = FAMILIES['bytetrack']
    assert method_fragments(byte, 'ours', METHODS['ours'][1]) == (
        'feat', 'resp')
    for method in ('only_id', 'ours_no_feat', 'ours_no_resp', 'ours_no_id'):
        with pytest.raises(ValueError,
                           match=f'{method} does not apply to --family '
                           'bytetrack'):
            check_methods(byte, ['ours', method])
    with pytest.raises(ValueError, match='objectness does not apply to '
                       '--family fairmot: ObjectnessKDLoss'):
        check_methods(FAMILIES['fairmot'], ['objectness'])
    check_methods(FAMILIES['cstrack'], list(METHODS))  # all apply


@pytest.fixture(scope='module')
def teachers(tmp_path_factory, tiny_synthmot):
    """Per new family: a micro plan on the tiny data, and its teacher's
    config and initial weights (a distiller needs a checkpoint)."""
    from mmtrack_kd.benchmark.init_state import (
        build_initial_state,
        save_state,
    )
    out = {}
    for family in ('fairmot', 'bytetrack'):
        root = tmp_path_factory.mktemp(family)
        plan = BenchmarkPlan(str(root), 'micro', 1, [], data=tiny_synthmot,
                             family=family)
        cfg = configs.model_cfg(plan, 'teacher', 0)
        ckpt = str(root / 'teacher.pth')
        save_state(build_initial_state(cfg, 0), ckpt, {})
        out[family] = plan, cfg, ckpt
    return out


@pytest.mark.parametrize('family', ['fairmot', 'bytetrack'])
def test_every_kd_method_of_a_family_builds(family, teachers):
    """Config.fromfile + MODELS.build of the generated KD config of every
    method that applies to the family (the distiller's build checks the
    mappings, connectors and decoders with a dry run)."""
    from mmdet.registry import MODELS

    import mmtrack_kd  # noqa: F401
    from mmtrack_kd.utils.config import resolve_num_ids
    plan, t_cfg, t_ckpt = teachers[family]
    built = []
    for method, (kind, _, _) in METHODS.items():
        if kind != 'kd' or method in plan.family.refused:
            continue
        cfg = Config.fromfile(configs.kd_cfg(plan, method, 0, t_cfg,
                                             t_ckpt))
        resolve_num_ids(cfg)
        model = MODELS.build(cfg.model)
        names = set(model.distill_losses)
        assert len(names) == len(plan.fragments(method)), method
        built.append(method)
    assert 'ours' in built and 'fitnets' in built
    assert len(built) == sum(k == 'kd' for k, _, _ in METHODS.values()) - \
        len(plan.family.refused)


@pytest.mark.parametrize('family', ['fairmot', 'bytetrack'])
def test_balanced_ours_measures_the_family_neck(family, teachers):
    """--grad-ratio: the balancer measures on the student's neck where the
    family has it (``detector.neck`` in mmdet's ByteTrack); the distiller's
    build resolves those parameters (it refused 'neck' for ByteTrack)."""
    from mmdet.registry import MODELS

    import mmtrack_kd  # noqa: F401
    from mmtrack_kd.utils.config import resolve_num_ids
    plan, t_cfg, t_ckpt = teachers[family]
    plan.grad_ratio = {'resp': 20.0, 'feat': 2.0}
    try:
        cfg = Config.fromfile(configs.kd_cfg(plan, 'ours', 0, t_cfg, t_ckpt))
    finally:
        plan.grad_ratio = None
    neck = 'detector.neck' if family == 'bytetrack' else 'neck'
    assert cfg.model.loss_balance.shared == [neck]
    resolve_num_ids(cfg)
    model = MODELS.build(cfg.model)
    params = model.loss_balance.shared_params(model.student)
    assert params and all(p.requires_grad for p in params)
