"""The initial student weights of each seed: every student run of seed k
(plain and KD) starts from ``OUT/init/student__seedK.pth`` through the
config's ``load_from``.

The student is built from the generated student config of the seed with
the generators seeded by k, its weights initialised, and its
``state_dict`` saved twice: as it is (``student__seedK.pth``, for the plain
student) and with every key under ``student.`` (``kd_student__seedK.pth``,
for the distiller, whose student is its ``student`` sub-module). The
distiller keeps its teacher outside its ``state_dict`` (``TeacherBox``), so
mmengine's non-strict ``load_from`` sets the student and leaves the teacher
(loaded from ``model.teacher_ckpt``) and the connectors alone.
"""
import hashlib
import os
import os.path as osp
from typing import Dict

KD_PREFIX = 'student.'


def init_path(out: str, seed: int, kd: bool = False) -> str:
    """``OUT/init/[kd_]student__seedS.pth``."""
    return osp.join(out, 'init',
                    f'{"kd_" if kd else ""}student__seed{seed}.pth')


def state_sha1(state: Dict[str, 'torch.Tensor']) -> str:  # noqa: F821
    """sha1 of a state dict's names, shapes, dtypes and values (what
    ``torch.save`` bytes do not promise to be)."""
    digest = hashlib.sha1()
    for key in sorted(state):
        value = state[key].detach().cpu().contiguous()
        digest.update(f'{key}:{tuple(value.shape)}:{value.dtype}'.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def build_initial_state(config: str, seed: int) -> Dict[str, object]:
    """The weights a model of ``config`` starts with under ``seed``.

    Args:
        config (str): a plain (non-KD) model config; ``num_ids='auto'`` is
            read from its train annotations.
        seed (int): seeds Python's, NumPy's and torch's generators before
            the model is built and initialised.

    Returns:
        dict: the model's ``state_dict`` (CPU tensors).
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed

    import mmtrack_kd  # noqa: F401 (registers the models)
    from mmtrack_kd.utils.config import load_config, resolve_num_ids
    cfg = load_config(config)
    resolve_num_ids(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def save_state(state: dict, path: str, meta: dict) -> None:
    """``torch.save(dict(state_dict=state, meta=meta))`` atomically."""
    import torch
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, path)


def make_initial_students(out: str, config: str, seed: int,
                          source: str = None) -> str:
    """Write ``init_path(out, seed)`` and its ``kd_`` twin unless both
    exist; return the sha1 (:func:`state_sha1`) of the student weights.

    Args:
        out (str): the run folder.
        config (str): the generated student config of ``seed``.
        seed (int): the seed.
        source (str, optional): another run folder (``--teacher-from``)
            whose ``init/student__seedS.pth`` is copied when it exists, so
            that reused plain students and the new KD runs share a start.
    """
    import torch
    plain, kd = init_path(out, seed), init_path(out, seed, kd=True)
    if osp.isfile(plain) and osp.isfile(kd):
        state = torch.load(plain, map_location='cpu')['state_dict']
        return state_sha1(state)
    src = init_path(source, seed) if source else None
    if src and osp.isfile(src):
        state = torch.load(src, map_location='cpu')['state_dict']
        origin = src
    else:
        state = build_initial_state(config, seed)
        origin = config
    sha1 = state_sha1(state)
    meta = dict(seed=seed, origin=origin, state_sha1=sha1)
    save_state(state, plain, meta)
    save_state({KD_PREFIX + k: v for k, v in state.items()}, kd, meta)
    return sha1
