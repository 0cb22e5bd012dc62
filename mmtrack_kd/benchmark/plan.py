"""The plan of a KD benchmark run: presets, methods and the (method, seed)
runs with their paths and time estimates.

The presets, the measured costs of ``--dry-run`` and the targets are data,
read from ``presets.yaml`` beside this module (:func:`load_benchmark_data`).
"""
import copy
import functools
import json
import math
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .families import (
    DEFAULT_FAMILY,
    FAMILIES,
    check_methods,
    cstrack_overrides,
    deep_merge,
    get_family,
    method_fragments,
)

PRESETS_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'presets.yaml')

# the repository the benchmark runs in (configs/ and tools/): the package's
# parent folder, i.e. a source checkout or an editable install
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# fragment key -> (file relative to configs/_base_/distill, variable name)
FRAGMENTS: Dict[str, Tuple[str, str]] = {
    'id': ('id_response.py', 'kd_id_response'),
    'feat': ('key_feature.py', 'kd_key_feature'),
    'resp': ('prediction_difference.py', 'kd_pred_diff'),
    'fitnets': ('baselines/fitnets.py', 'kd_fitnets'),
    'fgd': ('baselines/fgd.py', 'kd_fgd'),
    'cwd': ('baselines/cwd.py', 'kd_cwd'),
    'pkd': ('baselines/pkd.py', 'kd_pkd'),
    'mgd': ('baselines/mgd.py', 'kd_mgd'),
    'objectness': ('baselines/objectness.py', 'kd_objectness'),
    'agkd': ('baselines/attention_guided.py', 'kd_attention_guided'),
    'atttrack': ('baselines/atttrack.py', 'kd_atttrack'),
}

# method -> (kind, fragment keys, description); order = table order
METHODS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    'teacher': ('teacher', (), 'teacher, no KD'),
    'student': ('student', (), 'student, no KD (baseline)'),
    'ours': ('kd', ('id', 'feat', 'resp'), 'ours: ID + feature + response'),
    'ours_no_id': ('kd', ('feat', 'resp'), 'ours without ID response loss'),
    'ours_no_feat': ('kd', ('id', 'resp'), 'ours without key-feature loss'),
    'ours_no_resp': ('kd', ('id', 'feat'),
                     'ours without prediction-difference loss'),
    'only_id': ('kd', ('id', ), 'ID response consistency loss alone'),
    'only_feat': ('kd', ('feat', ), 'key-feature loss alone'),
    'only_resp': ('kd', ('resp', ), 'prediction-difference loss alone'),
    'fitnets': ('kd', ('fitnets', ), 'FitNets (neck)'),
    'fgd': ('kd', ('fgd', ), 'FGD (neck)'),
    'cwd': ('kd', ('cwd', ), 'CWD (neck)'),
    'pkd': ('kd', ('pkd', ), 'PKD (neck)'),
    'mgd': ('kd', ('mgd', ), 'MGD (neck)'),
    'objectness': ('kd', ('objectness', ), 'objectness logit KD (head)'),
    'liang_agkd': ('kd', ('agkd', ),
                   'attention-guided KD + fg mask, Liang 2023 (neck)'),
    'atttrack': ('kd', ('atttrack', ),
                 'AttTrack cross-model feature learning (neck)'),
}

# the teacher is trained once, with this seed, and serves every KD seed
TEACHER_SEED = 0
METRIC_KEYS = ('MOTA', 'IDF1', 'HOTA', 'MT%', 'ML%', 'IDs')
SPLITS = ('val', 'test')


def model_overrides(spec: dict) -> dict:
    """The model overrides of a CSTrack preset's ``teacher``/``student``
    entry (:func:`~mmtrack_kd.benchmark.families.cstrack_overrides`).

    Args:
        spec (dict): ``widen_factor`` (backbone), ``channels`` (neck
            output, ID embedding and SAAN), and any further key, kept as
            it is (e.g. ``test_cfg``).

    Returns:
        dict: ``backbone``, ``neck``, ``id_head`` and the further keys.
    """
    return cstrack_overrides(spec, PRESETS_FILE)


# a swept threshold candidate beyond the first, in evaluations of one split
# (its post-processing, tracker and scoring without the network): the 4
# candidates of the grid took 47 s in one tools/test.py --sweep run against
# 119 s in 4 runs (one trained full-preset student on val, 2026-11-30)
SWEEP_CANDIDATE_EVALS = 0.2

# what a family's section of presets.yaml may set per preset: the sizes and
# the schedule, and its own --protocol (data, splits and the threshold
# choice are shared)
FAMILY_PRESET_KEYS = ('teacher', 'student', 'epochs', 'teacher_epochs',
                      'batch_size', 'teacher_batch_size', 'log_interval',
                      'protocol')


@functools.lru_cache(maxsize=None)
def _read_yaml(path: str) -> dict:
    import yaml
    with open(path) as f:
        data = yaml.safe_load(f)
    for key in ('presets', 'costs', 'targets', 'comparisons'):
        if key not in (data or {}):
            raise KeyError(f'{path}: no {key!r} section')
    missing = set(data['presets']) - set(data['costs'])
    if missing:
        raise KeyError(f'{path}: costs: no entry for {sorted(missing)}')
    for fam, section in (data.get('families') or {}).items():
        where = f'{path}: families.{fam}'
        if fam not in FAMILIES or fam == DEFAULT_FAMILY:
            raise KeyError(f'{where}: not a family with a section of its '
                           f'own, expected some of '
                           f'{[f for f in FAMILIES if f != DEFAULT_FAMILY]}')
        for part in ('presets', 'costs'):
            missing = set(data['presets']) - set(section.get(part) or {})
            if missing:
                raise KeyError(f'{where}.{part}: no entry for '
                               f'{sorted(missing)}')
        for name, entry in section['presets'].items():
            bad = set(entry) - set(FAMILY_PRESET_KEYS)
            if name not in data['presets'] or bad:
                raise KeyError(
                    f'{where}.presets.{name}: ' +
                    (f'keys {sorted(bad)} cannot be set per family '
                     f'(allowed: {list(FAMILY_PRESET_KEYS)})' if bad else
                     'no such preset'))
            for role in ('teacher', 'student'):
                if role not in entry:
                    raise KeyError(f'{where}.presets.{name}: no {role!r}')
    return data


def load_benchmark_data(path: str = PRESETS_FILE,
                        family: str = DEFAULT_FAMILY) -> dict:
    """The benchmark's data file for ``family`` (a fresh copy each call).

    The presets are the file's ``presets``; a family other than CSTrack
    replaces, per preset, the keys its ``families.FAMILY.presets`` entry
    sets (sizes, schedule), its ``costs`` replace the shared ones and its
    ``thresholds`` (when given) the shared grid.

    Returns:
        dict: ``presets`` (name -> preset, models expanded by the family's
        :attr:`~mmtrack_kd.benchmark.families.Family.expand`, the preset's
        ``costs`` merged in, and ``eval_splits`` a tuple), ``targets``,
        ``comparisons``, ``thresholds`` and ``family`` (its name).
    """
    fam = get_family(family)
    data = copy.deepcopy(_read_yaml(path))
    section = (data.get('families') or {}).get(family) or {}
    presets = {}
    for name, preset in data['presets'].items():
        preset = dict(preset)
        preset.update(copy.deepcopy(section.get('presets', {}).get(name,
                                                                    {})))
        for role in ('teacher', 'student'):
            preset[role] = fam.expand(
                preset[role], f'{path}: {family} preset {name}.{role}')
        preset['eval_splits'] = tuple(preset['eval_splits'])
        preset.setdefault('tune_thresholds', False)
        preset.update(section.get('costs', {}).get(name) or
                      data['costs'][name])
        presets[name] = preset
    data['presets'] = presets
    if section.get('thresholds'):
        data['thresholds'] = section['thresholds']
    data['family'] = family
    return data


def reference_cores() -> int:
    """Cores of the machine the costs were measured on."""
    return int(_read_yaml(PRESETS_FILE).get('reference_cores', 1))


def preset_names() -> List[str]:
    return list(_read_yaml(PRESETS_FILE)['presets'])


def family_names() -> List[str]:
    return list(FAMILIES)


def get_preset(name: str, family: str = DEFAULT_FAMILY) -> dict:
    """The preset ``name`` of :func:`load_benchmark_data` for ``family``;
    ValueError names ``--preset`` (``--family``) when it is unknown."""
    presets = load_benchmark_data(family=family)['presets']
    if name not in presets:
        raise ValueError(f'--preset: unknown {name!r}, expected one of '
                         f'{sorted(presets)}')
    return presets[name]


def default_methods(preset: str, family: str = DEFAULT_FAMILY) -> List[str]:
    """``--methods`` when none are given: the preset's ``default_methods``,
    else every method; either without the methods that do not apply to
    ``family``."""
    refused = get_family(family).refused
    return [m for m in get_preset(preset, family).get('default_methods',
                                                      METHODS)
            if m not in refused]


# the keys a preset's ``protocol`` may set: the command-line options of
# the same names (``seeds_of`` is ``--seeds-of``)
PROTOCOL_KEYS = ('epochs', 'seeds', 'seeds_of', 'methods', 'grad_ratio',
                 'loss_option', 'splits')


def protocol_settings(preset: str, family: str = DEFAULT_FAMILY,
                      path: str = PRESETS_FILE) -> dict:
    """The ``protocol`` of ``preset`` in ``presets.yaml`` (``--protocol``):
    the settings of the README's main benchmark (epochs, methods, seeds per
    method, gradient ratios, loss options, splits), in the options' own
    forms (``grad_ratio``: ``['resp=20', ...]``, ``seeds_of``:
    ``{method: n}``). A family other than CSTrack has a protocol only where
    its section of the file gives one (``families.F.presets.P.protocol``);
    methods the family refuses are left out.

    Raises:
        ValueError: the preset or family has no protocol, or the protocol
            has an unknown key, method, loss or value (names the file and
            the key).
    """
    data = _read_yaml(path)
    section = ((data.get('families') or {}).get(family) or {}).get(
        'presets', {}).get(preset, {})
    if 'protocol' in section:
        proto = section['protocol']
    elif family == DEFAULT_FAMILY:
        proto = data['presets'].get(preset, {}).get('protocol')
    else:
        proto = None
    if not proto:
        raise ValueError(f'--protocol: preset {preset!r} of family '
                         f'{family!r} has no protocol in {path} (give '
                         '--epochs, --seeds, --methods, --grad-ratio ... '
                         'instead)')
    bad = sorted(set(proto) - set(PROTOCOL_KEYS))
    if bad:
        raise ValueError(f'{path}: presets.{preset}.protocol: unknown '
                         f'key(s) {bad}, expected some of '
                         f'{list(PROTOCOL_KEYS)}')
    try:
        _check_protocol_values(proto)
    except ValueError as err:
        raise ValueError(f'{path}: presets.{preset}.protocol: {err}') \
            from None
    proto = copy.deepcopy(proto)
    refused = get_family(family).refused
    if 'methods' in proto:
        proto['methods'] = [m for m in proto['methods'] if m not in refused]
    if 'seeds_of' in proto:
        proto['seeds_of'] = {m: n for m, n in proto['seeds_of'].items()
                             if m not in refused}
    return proto


def _check_protocol_values(proto: dict) -> None:
    """The values of a protocol checked as their options check them
    (ValueError names the option)."""
    bad = [m for m in proto.get('methods', []) if m not in METHODS]
    bad += [m for m in proto.get('seeds_of', {}) if m not in METHODS]
    if bad:
        raise ValueError(f'unknown method(s) {bad}, expected some of '
                         f'{list(METHODS)}')
    for m, n in proto.get('seeds_of', {}).items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'seeds_of: {m}: expected an integer >= 1, '
                             f'got {n!r}')
    _checked_table(parse_loss_scale(proto.get('grad_ratio', []),
                                    '--grad-ratio'), '--grad-ratio',
                   'ratios')
    parse_loss_options(proto.get('loss_option', []))


def parse_seeds_of(items: Optional[Sequence[str]]) -> Dict[str, int]:
    """``['student=5', 'ours=5']`` -> ``{'student': 5, 'ours': 5}``
    (``--seeds-of``; the methods and counts are checked by the plan)."""
    out = {}
    for item in items or []:
        method, sep, n = item.partition('=')
        try:
            if not sep:
                raise ValueError
            out[method] = int(n)
        except ValueError:
            raise ValueError('--seeds-of: expected METHOD=N with an integer '
                             f'N, got {item!r}') from None
    return out


def parse_loss_scale(items: Sequence[str],
                     option: str = '--loss-scale') -> Dict[str, float]:
    """``['id=0.3', 'feat=1']`` -> ``{'id': 0.3, 'feat': 1.0}``; errors
    name ``option``."""
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        try:
            out[key] = float(value)
        except ValueError:
            sep = ''
        if not sep:
            raise ValueError(f'{option}: expected LOSS=NUMBER, got '
                             f'{item!r}')
    return out


def _literal_items(items: Sequence[str], option: str, form: str,
                   valid: Callable[[str], bool]):
    """``(item, TARGET, value)`` of each ``TARGET=VALUE`` item of
    ``option``, VALUE read as a Python literal; an item without ``=``, with
    a TARGET that ``valid`` refuses or a VALUE that is no literal raises
    ``ValueError`` naming the option and the expected ``form``."""
    import ast
    for item in items:
        target, sep, value = item.partition('=')
        try:
            if not (sep and valid(target)):
                raise ValueError
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f'{option}: expected {form} with a Python '
                             f'literal VALUE, got {item!r}') from None
        yield item, target, value


def parse_size_options(items: Sequence[str],
                       option: str = '--student-size') -> dict:
    """``['backbone.base_channels=12', 'neck.in_channels=96']`` ->
    ``{'backbone': {'base_channels': 12}, 'neck': {'in_channels': 96}}``
    (VALUE a Python literal)."""
    out: dict = {}
    for item, target, value in _literal_items(
            items, option, 'KEY.SUBKEY=VALUE',
            lambda t: all(t.split('.'))):
        keys = target.split('.')
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f'{option}: {item!r} sets a key inside '
                                 f'{key!r}, which another item sets to a '
                                 'value')
        node[keys[-1]] = value
    return out


def parse_loss_options(items: Sequence[str]) -> Dict[str, dict]:
    """``['feat.normalize=True']`` -> ``{'feat': {'normalize': True}}``
    (ARG may itself hold dots: ``feat.connector.detach_iters=120``)."""
    out: Dict[str, dict] = {}
    for _, target, value in _literal_items(
            items, '--loss-option', 'LOSS.ARG=VALUE',
            lambda t: bool(t.partition('.')[2])):
        key, _, arg = target.partition('.')
        out.setdefault(key, {})[arg] = value
    return out


def _grouped(table: Dict[str, float], method: str, key: str) -> float:
    """``table[GROUP.KEY]``, else ``table[KEY]``, else 1; GROUP is ``ours``
    for ours and its ablations, else the method."""
    group = 'ours' if method.startswith('ours') else method
    return float(table.get(f'{group}.{key}', table.get(key, 1.0)))


def _checked_table(table: Dict[str, float], option: str,
                   what: str) -> Dict[str, float]:
    """A copy of a ``LOSS=VALUE`` table of ``option`` (keys a fragment,
    or ``METHOD.FRAGMENT`` with METHOD ``ours`` or a method).

    Raises:
        ValueError: an unknown key, or a value below 0 (names ``option``).
    """
    table = dict(table)
    bad = [k for k in table if k.rpartition('.')[2] not in FRAGMENTS or
           k.rpartition('.')[0] not in ('', 'ours', *METHODS)]
    if bad:
        raise ValueError(f'{option}: unknown loss {bad}, expected some of '
                         f'{list(FRAGMENTS)}')
    if any(not v >= 0 for v in table.values()):
        raise ValueError(f'{option}: {what} must be >= 0, got {table}')
    return table


def _checked_seed_counts(seeds_of: Dict[str, int], methods: Sequence[str],
                         seeds: int) -> Dict[str, int]:
    """``--seeds-of``, checked: known methods of the run, integers >= 1,
    no KD method with more seeds than the student.

    Raises:
        ValueError: names ``--seeds-of`` and the method.
    """
    out = {}
    for method, n in seeds_of.items():
        if method not in METHODS or method == 'teacher':
            raise ValueError(f'--seeds-of: unknown method {method!r}, '
                             'expected some of '
                             f'{[m for m in METHODS if m != "teacher"]}')
        if method not in methods:
            raise ValueError(f'--seeds-of: {method} is not among the run\'s '
                             f'methods {list(methods)}')
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'--seeds-of: {method}: expected an integer '
                             f'>= 1, got {n!r}')
        out[method] = n
    n_student = out.get('student', seeds)
    more = sorted(m for m in methods if m not in ('teacher', 'student')
                  and out.get(m, seeds) > n_student)
    if more:
        raise ValueError(f'--seeds-of: {more} would have more seeds than the '
                         f'student ({n_student}); each KD seed is compared '
                         'with the student of that seed')
    return out


class BenchmarkPlan:
    """The settings of one benchmark run folder, checked, and what follows
    from them: the runs, their paths, schedules and time estimates.

    Args:
        out (str): the run folder (configs/, logs/, work/, records/ ...).
        preset (str): a preset of ``presets.yaml``.
        seeds (int): the number of seeds: ``first_seed`` ..
            ``first_seed + seeds - 1``.
        seeds_of (dict, optional): method -> its own number of seeds
            (``--seeds-of``, the protocol's 5 seeds for the main
            comparison and 3 for the rest); the others get ``seeds``. A KD
            method may not have more seeds than the student (each seed is
            compared with the student of that seed).
        methods (Sequence[str]): keys of :data:`METHODS`; the teacher and
            student are added when missing (every KD method needs both).
        data (str, optional): SynthMOT folder; made when missing. Default
            ``OUT/data/synthmot_<data_preset>``, owned by the run.
        threads (int): torch threads of each subprocess.
        resume (bool): resume half-finished trainings instead of restarting.
        jobs (int): trainings run at once (one per core is the fastest).
        loss_scale (dict, optional): fragment key (see :data:`FRAGMENTS`),
            or ``METHOD.KEY``, -> factor on the ``loss_weight`` of that
            fragment's losses (the val-split weight search).
        splits (Sequence[str], optional): splits every model is evaluated
            on; default the preset's ``eval_splits``.
        teacher_from (str, optional): another run folder of the same preset
            and data whose teacher and plain students (models that no loss
            scale changes) are reused instead of trained.
        loss_options (dict, optional): fragment key -> dict of arguments
            set on that fragment's losses (e.g. ``{'feat': {'normalize':
            True}}``).
        allow_stale (bool): keep and report records made with other code,
            config or data (``--allow-stale``) instead of refusing them.
        grad_ratio (dict, optional): fragment key, or ``METHOD.KEY``, ->
            the gradient-norm ratio to the task that the distiller's
            ``loss_balance`` keeps for that fragment's losses
            (``--grad-ratio``); every KD method is then balanced, a
            fragment without an entry at ratio 1. None: no balance, the
            losses keep their ``loss_weight`` (times ``loss_scale``).
        epochs (int, optional): epochs of every student (plain and KD),
            instead of the preset's ``epochs`` (``--epochs``: the
            training-length study); the teacher keeps ``teacher_epochs``.
        kd_decay (dict, optional): fragment key, or ``METHOD.KEY``, -> end
            factor of a linear decay of that fragment's losses over the
            training (``--kd-decay``, the ``decay`` of ``loss_balance``);
            needs ``grad_ratio``.
        family (str): the tracker family (``--family``, see
            :mod:`~mmtrack_kd.benchmark.families`): its configs, the
            sizes and costs of its section of ``presets.yaml``, the
            methods that apply to it. Default ``cstrack``.
        rescore (bool): records whose thresholds were picked on another
            grid are picked again on val from this run's grid and scored
            on every split, without training (``--rescore``); they are not
            stale for their thresholds then. Default False.
        project (Sequence[str], optional): fragment keys whose losses'
            feature gradient is projected off the task's and the method's
            other distillation losses' where they conflict
            (``--project``, the distiller's ``grad_projection``).
        first_seed (int): the first student seed (``--first-seed``), to
            add seeds to a study in a new folder without training the
            earlier ones again; the teacher keeps :data:`TEACHER_SEED`.
            Default 0.
        ema (float, optional): score an exponential moving average of
            each student's weights (``--ema``): the momentum of mmengine's
            ``ExponentialMovingAverage`` (the weight of the new value at
            each iteration, in (0, 1)), given to every plain and KD
            student through ``EMAHook``, whose checkpoint holds the
            averaged weights. The teacher is trained without it. None: the
            last weights are scored.
        balance_interval (int, optional): iterations between the gradient
            balancer's measurements (``--balance-interval``, the
            ``interval`` of ``loss_balance``); needs ``grad_ratio``. None:
            the configs' (20).
        student_size (dict, optional): model overrides merged into the
            preset's ``student`` entry (``--student-size``, e.g.
            ``{'backbone': {'base_channels': 12}}``): a larger or smaller
            student of the same design. Every plain and KD student gets
            it; it is in the generated configs (so in the records' config
            hashes) and in results.json's ``sizes``.

    Raises:
        ValueError: a setting is unknown or out of range; the message names
            the command-line option.
    """

    def __init__(self, out: str, preset: str, seeds: int,
                 methods: Sequence[str], data: Optional[str] = None,
                 threads: int = 1, resume: bool = False, jobs: int = 1,
                 loss_scale: Optional[Dict[str, float]] = None,
                 splits: Optional[Sequence[str]] = None,
                 teacher_from: Optional[str] = None,
                 loss_options: Optional[Dict[str, dict]] = None,
                 allow_stale: bool = False,
                 epochs: Optional[int] = None,
                 grad_ratio: Optional[Dict[str, float]] = None,
                 kd_decay: Optional[Dict[str, float]] = None,
                 family: str = DEFAULT_FAMILY,
                 rescore: bool = False,
                 project: Optional[Sequence[str]] = None,
                 first_seed: int = 0,
                 ema: Optional[float] = None,
                 balance_interval: Optional[int] = None,
                 seeds_of: Optional[Dict[str, int]] = None,
                 student_size: Optional[dict] = None) -> None:
        self.family = get_family(family)
        self.preset = get_preset(preset, family)
        if student_size:
            if not isinstance(student_size, dict):
                raise ValueError('--student-size: expected KEY=VALUE model '
                                 f'overrides, got {student_size!r}')
            self.preset = dict(self.preset, student=deep_merge(
                self.preset['student'], student_size))
        if epochs is not None:
            if epochs < 1:
                raise ValueError('--epochs must be >= 1')
            self.preset = dict(self.preset, epochs=int(epochs))
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f'--methods: unknown {unknown}, expected some '
                             f'of {list(METHODS)}')
        check_methods(self.family, list(methods))
        if seeds < 1:
            raise ValueError('--seeds must be >= 1')
        if first_seed < 0:
            raise ValueError('--first-seed must be >= 0')
        if jobs < 1:
            raise ValueError('--jobs must be >= 1')
        if ema is not None and not 0 < ema < 1:
            raise ValueError(f'--ema: expected a momentum in (0, 1), got '
                             f'{ema!r}')
        self.ema = None if ema is None else float(ema)
        self.loss_scale = _checked_table(loss_scale or {}, '--loss-scale',
                                         'factors')
        self.grad_ratio = None if grad_ratio is None else _checked_table(
            grad_ratio, '--grad-ratio', 'ratios')
        self.kd_decay = _checked_table(kd_decay or {}, '--kd-decay',
                                       'end factors')
        if self.kd_decay and self.grad_ratio is None:
            raise ValueError('--kd-decay needs --grad-ratio (the decay is '
                             'part of the distiller\'s loss_balance)')
        if balance_interval is not None:
            if isinstance(balance_interval, bool) or \
                    not isinstance(balance_interval, int) or \
                    balance_interval < 1:
                raise ValueError('--balance-interval: expected an integer '
                                 f'>= 1, got {balance_interval!r}')
            if self.grad_ratio is None:
                raise ValueError('--balance-interval needs --grad-ratio (the '
                                 'interval is part of the distiller\'s '
                                 'loss_balance)')
        self.balance_interval = balance_interval
        self.project = list(project or [])
        bad = [k for k in self.project if k not in FRAGMENTS]
        if bad:
            raise ValueError(f'--project: unknown loss {bad}, expected '
                             f'some of {list(FRAGMENTS)}')
        self.loss_options = {k: dict(v) for k, v in
                             (loss_options or {}).items()}
        bad = [k for k in self.loss_options if k not in FRAGMENTS]
        if bad:
            raise ValueError(f'--loss-option: unknown loss {bad}, expected '
                             f'some of {list(FRAGMENTS)}')
        self.splits = list(splits or self.preset['eval_splits'])
        bad = [x for x in self.splits if x not in SPLITS]
        if bad:
            raise ValueError(f'--splits: unknown {bad}, expected val/test')
        self.out = osp.abspath(out)
        self.preset_name = preset
        self.seeds = list(range(first_seed, first_seed + seeds))
        wanted = set(methods) | {'teacher', 'student'}
        self.methods = [m for m in METHODS if m in wanted]
        self.seed_counts = _checked_seed_counts(
            seeds_of or {}, self.methods, seeds)
        if data is None:  # owned by the run: nobody regenerates it midway
            data = osp.join(self.out, 'data',
                            f'synthmot_{self.preset["data_preset"]}')
        self.data = osp.abspath(data)
        self.threads = threads
        self.resume = resume
        self.jobs = jobs
        self.teacher_from = (osp.abspath(teacher_from)
                             if teacher_from else None)
        self.allow_stale = allow_stale
        self.tune_thresholds = bool(self.preset['tune_thresholds'])
        self.rescore = bool(rescore)

    # ................................................................. runs
    def runs(self) -> List[Tuple[str, int]]:
        """(method, seed) pairs in run order: the teacher once, with
        :data:`TEACHER_SEED`, then method by method (every seed of one
        before the next; the ``ours_no_*`` ablations last), so that a run
        cut short has complete seeds of the main comparison."""
        order = sorted((m for m in self.methods if m != 'teacher'),
                       key=lambda m: (m.startswith('ours_no_'),
                                      list(METHODS).index(m)))
        return [('teacher', TEACHER_SEED)] + [
            (m, s) for m in order for s in self.seeds_of(m)]

    def seeds_of(self, method: str) -> List[int]:
        """The seeds of ``method``: the first ``seeds_of[method]`` of the
        run's seeds when set (:attr:`seed_counts`), else all of them."""
        first = self.seeds[0]
        return list(range(first, first + self.seed_counts.get(
            method, len(self.seeds))))

    def fragments(self, method: str) -> Tuple[str, ...]:
        """The fragment keys of ``method`` in the plan's family (ours
        without the ID loss where the family has no ID head)."""
        return method_fragments(self.family, method, METHODS[method][1])

    def description(self, method: str) -> str:
        """``METHODS[method]``'s description, with the fragments it has in
        the family when they differ."""
        if self.fragments(method) == METHODS[method][1]:
            return METHODS[method][2]
        return (f'{method} on {self.family.name} (no ID head): '
                f'{" + ".join(self.fragments(method))}')

    def epochs(self, method: str) -> int:
        return self.preset['teacher_epochs' if method == 'teacher' else
                           'epochs']

    def batch_size(self, method: str) -> int:
        if method == 'teacher':
            return self.preset.get('teacher_batch_size',
                                   self.preset['batch_size'])
        return self.preset['batch_size']

    def iters_per_epoch(self, method: str = 'student') -> int:
        """From the train annotations when made, else from the preset's
        data knobs."""
        ann = osp.join(self.data, 'annotations', 'train_cocoformat.json')
        if osp.isfile(ann):
            with open(ann) as f:
                frames = len(json.load(f)['images'])
        else:
            from mmtrack_kd.datasets.synthmot import resolve_knobs
            knobs = resolve_knobs(self.preset['data_preset'],
                                  **self.preset['data_knobs'])
            frames = knobs['num_seqs_train'] * knobs['num_frames']
        return math.ceil(frames / self.batch_size(method))

    def scale_of(self, method: str, key: str) -> float:
        """The loss-weight factor of fragment ``key`` in ``method``:
        ``GROUP.KEY`` of ``loss_scale`` (GROUP is ``ours`` for ours and its
        ablations, else the method), else ``KEY``, else 1."""
        return _grouped(self.loss_scale, method, key)

    def ratio_of(self, method: str, key: str) -> Optional[float]:
        """The gradient ratio of fragment ``key`` in ``method`` (as
        :meth:`scale_of`, from ``grad_ratio``); None without balance."""
        if self.grad_ratio is None:
            return None
        return _grouped(self.grad_ratio, method, key)

    def decay_of(self, method: str, key: str) -> float:
        """The end factor of the decay of fragment ``key`` in ``method``
        (as :meth:`scale_of`, from ``kd_decay``); 1 is no decay."""
        return _grouped(self.kd_decay, method, key)

    # ................................................................ paths
    def name(self, method: str, seed: int) -> str:
        return f'{method}__seed{seed}'

    def record_path(self, method: str, seed: int) -> str:
        return osp.join(self.out, 'records', self.name(method, seed) + '.json')

    def work_dir(self, method: str, seed: int) -> str:
        return osp.join(self.out, 'work', self.name(method, seed))

    def final_ckpt(self, method: str, seed: int) -> str:
        return osp.join(self.work_dir(method, seed),
                        f'epoch_{self.epochs(method)}.pth')

    def init_path(self, seed: int, kd: bool = False) -> str:
        """The initial student weights of ``seed``
        (``OUT/init/[kd_]student__seedS.pth``, see
        :mod:`mmtrack_kd.benchmark.init_state`)."""
        from .init_state import init_path
        return init_path(self.out, seed, kd)

    def threshold_candidates(self) -> Dict[str, Dict[str, float]]:
        """The val-split threshold candidates (``thresholds`` of
        ``presets.yaml``), label -> config options; empty unless the preset
        tunes them."""
        if not self.tune_thresholds:
            return {}
        from .thresholds import candidates
        return candidates(self.threshold_spec())

    def sweepable(self, cands: Dict[str, Dict[str, float]]) -> bool:
        """Whether every key of ``cands`` is one that ``tools/test.py
        --sweep`` varies on one network pass (the tracker's and the
        family's post-processing ``test_cfg``)."""
        from mmtrack_kd.evaluation.sweep import unsweepable_keys
        test_cfg_key = f'{self.family.prefix}test_cfg'
        return not any(unsweepable_keys(c, test_cfg_key)
                       for c in cands.values())

    def threshold_evals(self) -> float:
        """The val threshold choice in evaluations of one split: one per
        candidate, or, swept on one network pass, one plus
        :data:`SWEEP_CANDIDATE_EVALS` per further candidate."""
        cands = self.threshold_candidates()
        if not cands or not self.sweepable(cands):
            return float(len(cands))
        return 1.0 + SWEEP_CANDIDATE_EVALS * (len(cands) - 1)

    def threshold_spec(self) -> dict:
        """The checked ``thresholds`` section of the family's data
        (:func:`~mmtrack_kd.benchmark.thresholds.grid_spec`)."""
        from .thresholds import grid_spec
        return grid_spec(load_benchmark_data(family=self.family.name))

    def log_path(self, method: str, seed: int, what: str) -> str:
        """``OUT/logs/METHOD__seedS.WHAT.log`` (WHAT: train or a split)."""
        return osp.join(self.out, 'logs',
                        f'{self.name(method, seed)}.{what}.log')

    def sizes(self, role: str) -> dict:
        """The backbone overrides of the ``teacher``/``student`` (the
        detector's, for a family that wraps one)."""
        model = self.preset[role]
        return model.get('backbone', model.get('detector', {}).get(
            'backbone', {}))

    # ............................................................ estimates
    def estimate_s(self, method: str) -> float:
        """Seconds of one run from the preset's measured costs."""
        p = self.preset
        iters = self.iters_per_epoch(method) * self.epochs(method)
        # a KD step also runs the teacher forward and the losses
        factor = dict(kd=p['kd_factor'], teacher=p['teacher_factor']).get(
            METHODS[method][0], 1.0)
        evals = len(self.splits) + self.threshold_evals()
        return p['startup_s'] + iters * p['sec_per_iter'] * factor + \
            evals * p['eval_s']

    def _seeds_text(self) -> str:
        """``5 seeds``, or with :attr:`seed_counts` e.g. ``3 seeds (5 for
        student, ours)``."""
        n = len(self.seeds)
        other = {}
        for m in self.methods:
            k = self.seed_counts.get(m, n)
            if m != 'teacher' and k != n:
                other.setdefault(k, []).append(m)
        extra = '; '.join(f'{k} for {", ".join(ms)}'
                          for k, ms in sorted(other.items(), reverse=True))
        return f'{n} seeds' + (f' ({extra})' if extra else '')

    def describe(self, is_done: Callable[[str, int], bool]) -> str:
        """The plan as printed before a run (and by ``--dry-run``).

        Args:
            is_done (callable): ``(method, seed) -> bool``, whether a run is
                recorded already (left out of the time estimate).
        """
        lines = [f'family {self.family.name}: '
                 f'{self.family.description}',
                 f'preset {self.preset_name}: data {self.data} '
                 f'({self.preset["data_preset"]}), {self.preset["epochs"]} '
                 f'epochs x {self.iters_per_epoch()} iters of batch '
                 f'{self.batch_size("student")} (teacher '
                 f'{self.preset["teacher_epochs"]} epochs x '
                 f'{self.iters_per_epoch("teacher")} iters of batch '
                 f'{self.batch_size("teacher")}, once), teacher '
                 f'{self.sizes("teacher")}, student '
                 f'{self.sizes("student")}, evaluated on '
                 f'{"+".join(self.splits)}'
                 + (f', loss scale {self.loss_scale}'
                    if self.loss_scale else '')
                 + (f', gradient balance {self.grad_ratio}'
                    if self.grad_ratio is not None else '')
                 + (f', decay to {self.kd_decay}' if self.kd_decay else '')
                 + (f', balancer measuring every {self.balance_interval} '
                    'iterations' if self.balance_interval else '')
                 + (f', projected {self.project}' if self.project else '')
                 + (f', students scored as the EMA of their weights '
                    f'(momentum {self.ema})' if self.ema else '')
                 + (f', thresholds picked on val from '
                    f'{len(self.threshold_candidates())} candidates'
                    if self.tune_thresholds else ''),
                 f'{len(self.methods) - 1} student method(s) x '
                 f'{self._seeds_text()} + the teacher = '
                 f'{len(self.runs())} trainings']
        total = 0.
        for m, s in self.runs():
            est = self.estimate_s(m)
            done = is_done(m, s)
            total += 0 if done else est
            lines.append(f'  {m:<14} seed {s}  ~{est:6.0f} s  '
                         f'{"done" if done else ""}  '
                         f'{self.description(m)}')
        at_once = min(self.jobs, reference_cores())
        lines.append(f'estimated time left: '
                     f'{total / 60 / at_once:.1f} min '
                     f'({self.jobs} job(s) of {self.threads} torch '
                     'thread(s))')
        return '\n'.join(lines)
