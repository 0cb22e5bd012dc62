"""Config helpers shared by the command-line tools and the API."""
import copy
import json
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config, ConfigDict


def package_config_path(path: str, key: Optional[str] = None) -> str:
    """The file behind ``PACKAGE::PATH`` (a config shipped in an installed
    OpenMMLab package, e.g. ``mmtrack_kd::cstrack/cstrack_yolov5n_synthmot.py``
    or ``mmdet::bytetrack/...``), resolved as mmengine resolves ``_base_``.

    Raises:
        FileNotFoundError: naming ``key`` and the path.
    """
    try:
        resolved, _ = Config._get_cfg_path(path, '')
    except (FileNotFoundError, ValueError, AssertionError,
            ModuleNotFoundError) as e:
        where = f'{key}: ' if key else ''
        raise FileNotFoundError(
            f'{where}config file not found: {path} ({e})') from e
    return resolved


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None,
                student: bool = False,
                key: Optional[str] = None) -> Config:
    """Read a config file (or copy a Config) and merge ``cfg_options``.

    The one place a config is read: the tools, the API and the distiller's
    teacher configs all go through it.

    Args:
        config: config file (``PACKAGE::PATH`` for a config shipped in an
            installed package), or a Config (deep-copied, never changed).
        cfg_options: overrides as ``--cfg-options`` gives them
            (``{'model.test_cfg.score_thr': 0.3}``), merged last.
        student: when the config is a distillation config
            (``model.student`` is a model dict), make the student the
            ``model`` before the overrides are merged (so they address it as
            ``model.*``): the deployable model.
        key: the config key or argument the path came from, named in the
            error (e.g. ``'model.teacher'``).

    Returns:
        Config: the config.

    Raises:
        FileNotFoundError: ``'[<key>: ]config file not found: <path>'``.
    """
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        if '::' in config:  # a config shipped in a package: mmtrack_kd::PATH
            config = package_config_path(config, key)
        if not osp.isfile(config):
            where = f'{key}: ' if key else ''
            raise FileNotFoundError(f'{where}config file not found: {config}')
        cfg = Config.fromfile(config)
    if student:
        stu = cfg.get('model', {}).get('student')
        if isinstance(stu, (dict, ConfigDict)) and 'type' in stu:
            cfg.model = stu
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _id_head_cfgs(model_cfg):
    """Yield every ``id_head`` config dict inside a model config (a plain
    tracker, or the student/teacher of a distiller)."""
    if not isinstance(model_cfg, (dict, ConfigDict)):
        return
    if isinstance(model_cfg.get('id_head'), (dict, ConfigDict)):
        yield 'model', model_cfg['id_head']
    for key in ('student', 'teacher'):
        sub = model_cfg.get(key)
        if isinstance(sub, (dict, ConfigDict)) and isinstance(
                sub.get('id_head'), (dict, ConfigDict)):
            yield f'model.{key}', sub['id_head']


def count_identities(ann_file: str) -> int:
    """Number of identity labels of a CocoVID annotation file: its
    ``num_ids`` field if present, else ``max(instance_id) + 1``."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'annotation file not found: {ann_file} (needed to count the '
            'identities for id_head.num_ids; set it in the config instead, '
            'or make the data first)')
    with open(ann_file) as f:
        data = json.load(f)
    if 'num_ids' in data:
        return int(data['num_ids'])
    ids = [a['instance_id'] for a in data.get('annotations', [])
           if 'instance_id' in a]
    return int(max(ids)) + 1 if ids else 1


def train_ann_file(cfg: Config) -> Optional[str]:
    """Path of the training annotation file of a config, or None."""
    ds = cfg.get('train_dataloader', {}).get('dataset', {})
    while 'dataset' in ds:  # dataset wrappers
        ds = ds['dataset']
    ann = ds.get('ann_file')
    if ann is None:
        return None
    return osp.join(ds.get('data_root', '') or '', ann)


def ckpt_num_ids(ckpt_path: str,
                 key: str = 'id_head.classifier.weight') -> Optional[int]:
    """Identities of the ID classifier stored in a checkpoint, or None."""
    from .checkpoint import model_state_from_checkpoint, read_checkpoint
    if not osp.isfile(ckpt_path):
        return None
    ckpt = read_checkpoint(ckpt_path)
    state = model_state_from_checkpoint(ckpt, student=False,
                                        filename=ckpt_path)
    for name, value in state.items():
        if name.endswith(key) and hasattr(value, 'shape'):
            return int(value.shape[0])
    return None


def teacher_model_cfg(teacher, teacher_ckpt: Optional[str],
                      key: str = 'model'):
    """The distiller teacher's model config, with ``id_head.num_ids='auto'``
    resolved.

    Args:
        teacher: a model config dict, or a config file path whose ``key``
            entry is the model.
        teacher_ckpt: the teacher checkpoint; ``num_ids='auto'`` is read from
            its ID classifier (what the teacher was trained with). If the
            checkpoint has none and the teacher is a file, the teacher
            config's own train annotations are counted.
        key: the model's key in a teacher config file.

    Raises:
        FileNotFoundError: the teacher config file is missing.
        ValueError: ``key`` is not in the teacher config file (names
            ``teacher_cfg_key``).
    """
    tcfg = None
    if isinstance(teacher, str):
        tcfg = load_config(teacher, key='model.teacher')
        if key not in tcfg:
            raise ValueError(f'teacher_cfg_key: {key!r} is not in {teacher}')
        teacher = tcfg[key]
    head = teacher.get('id_head') if isinstance(
        teacher, (dict, ConfigDict)) else None
    if isinstance(head, (dict, ConfigDict)) and head.get(
            'num_ids', 'auto') in (None, 'auto'):
        n = ckpt_num_ids(teacher_ckpt or '')
        if n is not None:
            head['num_ids'] = n
        elif tcfg is not None and key == 'model':
            resolve_num_ids(tcfg)
            teacher = tcfg[key]
    return teacher


def _resolve_teacher(cfg: Config) -> None:
    """A distiller teacher given as a config path becomes its model dict,
    with ``num_ids`` resolved by :func:`teacher_model_cfg`."""
    model = cfg.get('model')
    if not isinstance(model, (dict, ConfigDict)) or 'teacher' not in model:
        return
    key = model.get('teacher_cfg_key', 'model')
    model['teacher'] = teacher_model_cfg(model['teacher'],
                                         model.get('teacher_ckpt'), key)
    model.pop('teacher_cfg_key', None)


def checked_num_ids(num_ids) -> int:
    """``id_head.num_ids`` as an int, or an error naming the key (``'auto'``
    must have been resolved by :func:`resolve_num_ids` first)."""
    if num_ids in (None, 'auto'):
        raise ValueError(
            "id_head.num_ids is 'auto': tools/train.py and tools/test.py "
            'count the identities of the train annotations; when '
            'building the model yourself call '
            'mmtrack_kd.utils.resolve_num_ids(cfg) first or set an '
            'integer')
    if int(num_ids) < 1:
        raise ValueError(f'id_head.num_ids must be >= 1, got {num_ids}')
    return int(num_ids)


def resolve_num_ids(cfg: Config) -> None:
    """Fill ``id_head.num_ids = 'auto'`` (or None) in place: a distiller's
    teacher from its checkpoint, the model (or a distiller's student) from
    the training annotation file. Explicit integers are left alone."""
    _resolve_teacher(cfg)
    for where, head in _id_head_cfgs(cfg.get('model')):
        if head.get('num_ids', 'auto') not in (None, 'auto'):
            continue
        ann = train_ann_file(cfg)
        if ann is None:
            raise ValueError(
                f'{where}.id_head.num_ids is "auto" but the config has no '
                'train_dataloader.dataset.ann_file to count identities in')
        head['num_ids'] = count_identities(ann)


def set_max_epochs(cfg: Config, epochs: int) -> None:
    """Change the training length and stretch the epoch-based LR schedule
    with it: every ``param_scheduler`` entry with ``by_epoch=True`` whose
    ``end`` (and ``T_max``) was the old ``max_epochs`` follows the new one,
    so a cosine decay still ends at the last epoch.

    Args:
        cfg: the config, changed in place.
        epochs: the new ``train_cfg.max_epochs`` (>= 1).
    """
    if int(epochs) < 1:
        raise ValueError(f'--epochs must be >= 1, got {epochs}')
    old = cfg.train_cfg.get('max_epochs')
    if old is None:
        raise ValueError('--epochs needs an epoch-based train_cfg '
                         '(train_cfg.max_epochs)')
    cfg.train_cfg.max_epochs = int(epochs)
    scheds = cfg.get('param_scheduler') or []
    if isinstance(scheds, dict):
        scheds = [scheds]
    for sched in scheds:
        if not sched.get('by_epoch', True):
            continue
        for key in ('end', 'T_max'):
            if sched.get(key) == old:
                sched[key] = int(epochs)
    if cfg.train_cfg.get('val_interval', 1) > epochs:
        cfg.train_cfg.val_interval = int(epochs)
