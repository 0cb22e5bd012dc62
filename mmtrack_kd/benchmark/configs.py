"""The configs the KD benchmark generates for each (method, seed): the
family's configs by absolute path as ``_base_`` plus the preset's
overrides."""
import os.path as osp
import pprint
from typing import List, Optional, Tuple

from .families import adapt_fragment
from .plan import FRAGMENTS, REPO_ROOT, BenchmarkPlan

CFG = osp.join(REPO_ROOT, 'configs')
# the cstrack family's configs (see families.FAMILIES for every family)
TEACHER_CFG = osp.join(CFG, 'cstrack', 'cstrack_yolov5s_synthmot.py')
STUDENT_CFG = osp.join(CFG, 'cstrack', 'cstrack_yolov5n_synthmot.py')
KD_CFG = osp.join(CFG, 'kd', 'cstrack_s2n_kd_synthmot.py')
DATA_CFG = osp.join(CFG, '_base_', 'datasets', 'synthmot.py')
DISTILL = osp.join(CFG, '_base_', 'distill')


def family_cfg(plan: BenchmarkPlan, role: str) -> str:
    """The absolute path of the plan family's ``teacher``, ``student``,
    ``kd`` or ``data`` config."""
    fam = plan.family
    return osp.join(CFG, fam.data if role == 'data' else fam.config(role))


def fragment_file(plan: BenchmarkPlan, key: str) -> Tuple[str, str]:
    """(file, variable) of fragment ``key`` in the plan's family: the
    family's own (its KD config's) when it has one, else the shared one of
    ``configs/_base_/distill``."""
    if key in plan.family.fragments:
        rel, var = plan.family.fragments[key]
        return osp.join(CFG, rel), var
    fname, var = FRAGMENTS[key]
    return osp.join(DISTILL, fname), var


def py_literal(value) -> str:
    """``value`` as Python source (dict keys in their order)."""
    return pprint.pformat(value, width=78, sort_dicts=False)


def load_var(path: str, var: str) -> dict:
    """Variable ``var`` of the config file ``path`` as a plain dict.

    Raises:
        KeyError: the file has no such variable (names file and variable).
    """
    from mmtrack_kd.utils.config import load_config
    cfg = load_config(path)
    if var not in cfg:
        raise KeyError(f'{path}: no variable {var!r}')
    value = cfg[var]
    return value.to_dict() if hasattr(value, 'to_dict') else dict(value)


def rescale_pipeline(pipeline: list, scale: Tuple[int, int]) -> list:
    """``pipeline`` with every Resize/RandomResize ``scale`` set (nested
    ``transforms`` included)."""
    out = []
    for step in pipeline:
        step = dict(step)
        if 'transforms' in step:
            step['transforms'] = rescale_pipeline(step['transforms'], scale)
        if step.get('type') in ('Resize', 'RandomResize'):
            step['scale'] = scale
        out.append(step)
    return out


def scheduler(plan: BenchmarkPlan, method: str) -> list:
    """Linear warm-up (a quarter of the iterations, at most 100) and a
    cosine decay to 5 % over the epochs."""
    epochs = plan.epochs(method)
    warm = min(100, plan.iters_per_epoch(method) * epochs // 4 or 1)
    return [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False,
             begin=0, end=warm),
        dict(type='CosineAnnealingLR', eta_min_ratio=0.05, begin=0,
             end=epochs, T_max=epochs, by_epoch=True,
             convert_to_iter_based=True)
    ]


def common_overrides(plan: BenchmarkPlan, seed: int, method: str) -> dict:
    """Overrides shared by every generated config (data, schedule, seed,
    hooks); no validation inside training (evaluated afterwards).

    Every method of one seed gets the same ``randomness.seed``, which
    mmengine also gives the train sampler (``TrackImgSampler`` shuffles
    with ``seed + epoch``): the same data order; students also start from
    the same weights (``load_from``, see :func:`model_cfg`)."""
    p = plan.preset
    root = plan.data.rstrip('/') + '/'
    loader = dict(num_workers=0, persistent_workers=False)
    over = dict(
        train_dataloader=dict(batch_size=plan.batch_size(method),
                              dataset=dict(data_root=root), **loader),
        val_dataloader=dict(dataset=dict(data_root=root), **loader),
        test_dataloader=dict(dataset=dict(data_root=root), **loader),
        train_cfg=dict(max_epochs=plan.epochs(method),
                       val_begin=plan.epochs(method) + 1,
                       val_interval=plan.epochs(method) + 1),
        param_scheduler=scheduler(plan, method),
        default_hooks=dict(
            logger=dict(interval=p['log_interval']),
            checkpoint=dict(interval=1, max_keep_ckpts=1)),
        randomness=dict(seed=seed, deterministic=False))
    if p['img_scale'] is not None:
        data_cfg = load_var(family_cfg(plan, 'data'), 'train_dataloader')
        test_cfg = load_var(family_cfg(plan, 'data'), 'test_dataloader')
        for key, pipe in (('train_dataloader',
                           data_cfg['dataset']['pipeline']),
                          ('val_dataloader',
                           test_cfg['dataset']['pipeline']),
                          ('test_dataloader',
                           test_cfg['dataset']['pipeline'])):
            over[key]['dataset']['pipeline'] = rescale_pipeline(
                pipe, tuple(p['img_scale']))
    return over


def write_config(plan: BenchmarkPlan, name: str, bases: List[str],
                 over: dict, header: str) -> str:
    """Write ``OUT/configs/NAME.py`` atomically; return its path."""
    from mmtrack_kd.utils.io import atomic_write
    path = osp.join(plan.out, 'configs', name + '.py')
    lines = [f'# {header}', '# generated by tools/benchmark/kd_benchmark'
             '.py; edit the benchmark, not this file',
             f'_base_ = {py_literal(bases)}']
    for key, value in over.items():
        lines.append(f'{key} = {py_literal(value)}')
    with atomic_write(path) as f:
        f.write('\n'.join(lines) + '\n')
    return path


def ema_hooks(plan: BenchmarkPlan, base: str) -> Optional[list]:
    """The ``custom_hooks`` of a student config under ``--ema``: those of
    its base config ``base`` and mmengine's ``EMAHook`` (an
    ``ExponentialMovingAverage`` of the weights at ``plan.ema``; its
    checkpoints hold the averaged weights, so the extracted and scored
    student is the average). None without ``--ema``."""
    if plan.ema is None:
        return None
    from mmtrack_kd.utils.config import load_config
    hooks = load_config(base).get('custom_hooks', [])
    hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h)
             for h in hooks]
    return hooks + [dict(type='EMAHook', ema_type='ExponentialMovingAverage',
                         momentum=plan.ema, priority=49)]


def model_cfg(plan: BenchmarkPlan, role: str, seed: int) -> str:
    """Write the plain teacher or student config of ``seed``; return its
    path. The student starts from the seed's initial weights
    (``load_from`` = ``plan.init_path(seed)``)."""
    over = common_overrides(plan, seed, role)
    over['model'] = plan.preset[role]
    base = family_cfg(plan, role)
    if role == 'student':
        over['load_from'] = plan.init_path(seed)
        hooks = ema_hooks(plan, base)
        if hooks is not None:
            over['custom_hooks'] = hooks
    return write_config(
        plan, f'{role}__seed{seed}', [base], over,
        f'{role}: {base} with the {plan.preset_name} preset, seed {seed}')


def distill_cfgs(plan: BenchmarkPlan, method: str) -> List[dict]:
    """The ``model.distill_cfgs`` of a KD method: its fragments in the
    plan's family (:func:`fragment_file`; the shared ones adapted to the
    family's model by :func:`~mmtrack_kd.benchmark.families.
    adapt_fragment`) with the loss options (``connector.ARG`` ones go to
    every connector of the fragment) and loss-weight factors of the
    plan applied, and the teacher's neck channels set where a loss needs
    them (MGD/FGD). The option ``fragment`` picks another variable of the
    fragment's file (``feat.fragment='kd_key_feature_relation'``)."""
    teacher_ch = plan.family.neck_channels(plan.preset['teacher'])
    frags = []
    for key in plan.fragments(method):
        opts = dict(plan.loss_options.get(key, {}))
        path, var = fragment_file(plan, key)
        # another variable of the fragment's file (``LOSS.fragment=NAME``)
        var = opts.pop('fragment', var)
        frag = load_var(path, var)
        if key not in plan.family.fragments:
            frag = adapt_fragment(plan.family, frag)
        for conn in frag.get('connectors', {}).values():
            conn.update({k.partition('.')[2]: v for k, v in opts.items()
                         if k.startswith('connector.')})
        for side in ('student_recorders', 'teacher_recorders'):
            for rec in frag.get(side, {}).values():
                rec.update({k.partition('.')[2]: v for k, v in opts.items()
                            if k.startswith('recorder.')})
        for loss in frag.get('distill_losses', {}).values():
            loss.update({k: v for k, v in opts.items()
                         if not k.startswith(('connector.', 'recorder.'))})
            scale = plan.scale_of(method, key)
            if scale != 1.0:
                loss['loss_weight'] = loss.get('loss_weight', 1.0) * scale
            if 'channels' in loss:  # MGD/FGD: the teacher's neck
                loss['channels'] = [teacher_ch] * plan.family.neck_levels
        frags.append(frag)
    return frags


def loss_balance(plan: BenchmarkPlan, method: str,
                 frags: List[dict]) -> dict:
    """The distiller's ``loss_balance`` of a KD method under
    ``--grad-ratio``: every loss of each fragment (``frags``, from
    :func:`distill_cfgs`) at the fragment's ratio
    (:meth:`BenchmarkPlan.ratio_of`), and the decay of those that
    ``--kd-decay`` names (:meth:`BenchmarkPlan.decay_of`; the length is
    the run's ``max_iters``), every ``--balance-interval`` iterations
    when set, measured on the family's student neck
    (``detector.neck`` for ByteTrack); the losses of a fragment whose
    student recorders all read the backbone (``recorder.source``) are
    measured on the backbone, the layers they reach."""
    pairs = [(key, name) for key, frag in zip(plan.fragments(method), frags)
             for name in frag.get('distill_losses', {})]
    # measured on the student's neck, wherever the family has it
    out = dict(ratios={name: plan.ratio_of(method, key)
                       for key, name in pairs},
               shared=[f'{plan.family.prefix}neck'])
    backbone = f'{plan.family.prefix}backbone'
    upstream = {}
    for frag in frags:
        sources = [str(rec.get('source', '')) for rec in
                   frag.get('student_recorders', {}).values()]
        if sources and all(src == backbone or src.startswith(backbone + '.')
                           for src in sources):
            upstream.update({name: [backbone]
                             for name in frag.get('distill_losses', {})})
    if upstream:
        out['loss_shared'] = upstream
    decay = {name: plan.decay_of(method, key) for key, name in pairs
             if plan.decay_of(method, key) != 1.0}
    if decay:
        out['decay'] = decay
    if plan.balance_interval is not None:
        out['interval'] = plan.balance_interval
    return out


def grad_projection(plan: BenchmarkPlan, method: str,
                    frags: List[dict]) -> Optional[dict]:
    """The distiller's ``grad_projection`` of a KD method under
    ``--project``: the losses of the named fragments projected off the
    task and the method's other distillation losses (on the student's
    neck outputs); None when the method has none of those fragments."""
    names = {key: list(frag.get('distill_losses', {}))
             for key, frag in zip(plan.fragments(method), frags)}
    losses = [n for k in plan.project if k in names for n in names[k]]
    if not losses:
        return None
    against = ['task'] + [n for k, ns in names.items()
                          if k not in plan.project for n in ns]
    return dict(losses=losses, against=against, recorder='neck')


def kd_cfg(plan: BenchmarkPlan, method: str, seed: int, teacher_cfg: str,
           teacher_ckpt: str) -> str:
    """Write the distiller config of a KD method and seed; return its
    path. The student starts from the same weights as the plain student of
    the seed (``load_from`` = ``plan.init_path(seed, kd=True)``: the same
    tensors under ``student.``)."""
    over = common_overrides(plan, seed, method)
    over['model'] = dict(
        student=plan.preset['student'],
        teacher=teacher_cfg,
        teacher_ckpt=teacher_ckpt,
        distill_cfgs=distill_cfgs(plan, method))
    if plan.grad_ratio is not None:
        over['model']['loss_balance'] = loss_balance(
            plan, method, over['model']['distill_cfgs'])
    frags = over['model']['distill_cfgs']
    proj = grad_projection(plan, method, frags)
    if proj is not None:
        over['model']['grad_projection'] = proj
        if not any('neck' in f.get('student_recorders', {})
                   for f in frags):  # the feature it is taken on
            frags.append(dict(student_recorders=dict(neck=dict(
                type='ModuleOutputsRecorder',
                source=f'{plan.family.prefix}neck'))))
    over['load_from'] = plan.init_path(seed, kd=True)
    hooks = ema_hooks(plan, family_cfg(plan, 'kd'))
    if hooks is not None:
        over['custom_hooks'] = hooks
    frags = ', '.join(osp.relpath(fragment_file(plan, k)[0], REPO_ROOT)
                      for k in plan.fragments(method))
    return write_config(
        plan, f'{method}__seed{seed}', [family_cfg(plan, 'kd')], over,
        f'{method}: {plan.description(method)}; distill_cfgs from {frags}')
