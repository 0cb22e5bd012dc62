"""Distributed training on CPU: ``torchrun --nproc_per_node=2 tools/train.py
CONFIG --launcher pytorch`` keeps the student weights identical on both
ranks, for a plain CSTrack and for distillation (``MOTDistiller``, whose
frozen teacher gets no gradient and whose checkpoint file is not touched).

mmengine's ``init_dist('pytorch')`` needs CUDA; ``auto_dist_backend`` works
around it. Until tools/train.py calls it, the test starts training through
``dist_train.py`` (tools/train.py's ``main`` with the function applied)."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from test_e2e_train_test import data_opts, run_tool, tiny_model_opts

from mmtrack_kd.engine import auto_dist_backend

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))

# (config, extra --cfg-options shrinking it); the KD config needs a trained
# teacher first and has its own test, test_two_rank_distillation
DIST_CONFIGS = [
    ('configs/cstrack/cstrack_yolov5n_synthmot.py', tiny_model_opts()),
]


def test_auto_dist_backend(monkeypatch):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert auto_dist_backend(cfg) == 'gloo'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    empty = Config(dict())
    assert auto_dist_backend(empty) == 'gloo'
    # launcher none: no process group is started
    assert not dist.is_initialized()
    mpi = Config(dict(env_cfg=dict(dist_cfg=dict(backend='mpi'))))
    assert auto_dist_backend(mpi) == 'mpi'
    assert 'model_wrapper_cfg' not in empty
    # a launcher without CUDA: DDP of a CPU module takes no device_ids
    launched = Config(dict(launcher='slurm', find_unused_parameters=True))
    auto_dist_backend(launched)
    assert launched.model_wrapper_cfg.device_ids is None
    assert launched.model_wrapper_cfg.find_unused_parameters is True
    custom = Config(dict(launcher='slurm', model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', broadcast_buffers=True)))
    auto_dist_backend(custom)
    assert custom.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=True,
        device_ids=None)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    gpu = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    gpu.launcher = 'slurm'
    assert auto_dist_backend(gpu) == 'nccl'
    assert 'model_wrapper_cfg' not in gpu


def launch_two_ranks(data_root, tmp_path, config, model_opts, hooks,
                     timeout=180):
    """Train ``config`` (plus the test ``hooks``) for one epoch with torchrun
    on two CPU processes; returns (CompletedProcess, work_dir)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.custom_imports = dict(
        imports=list(cfg.custom_imports['imports']) + ['dist_test_hooks'],
        allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + list(hooks)
    # no validation: the tiny data has one val video, the test-mode sampler
    # needs one per rank
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg_file = tmp_path / 'dist_cfg.py'
    cfg.dump(str(cfg_file))
    work = tmp_path / 'work'
    env = dict(
        os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [HERE, ROOT, os.environ.get('PYTHONPATH', '')]))
    cmd = [
        sys.executable, '-m', 'torch.distributed.run', '--standalone',
        '--nproc_per_node=2', osp.join(HERE, 'dist_train.py'),
        str(cfg_file), '--launcher', 'pytorch', '--work-dir',
        str(work), '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=100',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ] + [o for o in data_opts(data_root) if o.startswith('train_')
         ] + list(model_opts)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc, work


needs_dist = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason='torch.distributed with gloo is unavailable')


@needs_dist
@pytest.mark.parametrize('config,model_opts', DIST_CONFIGS)
def test_two_rank_training_keeps_ranks_identical(tiny_synthmot, tmp_path,
                                                 config, model_opts):
    proc, work = launch_two_ranks(tiny_synthmot, tmp_path, config,
                                  model_opts,
                                  [dict(type='DumpRankParamsHook')])
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-5000:])
    check_ranks_identical(work)


def check_ranks_identical(work):
    """Both ranks trained 3 iterations under DDP and ended with the same
    parameters, which are those of rank 0's checkpoint. Returns the
    parameters ``{name: tensor}``."""
    ranks = [
        torch.load(str(work / f'rank{r}_params.pth'), weights_only=False)
        for r in (0, 1)
    ]
    assert all(r['wrapped'] for r in ranks)  # really trained under DDP
    # 10 frames over 2 ranks, batch 2: 3 iterations each
    assert ranks[0]['iter'] == ranks[1]['iter'] == 3
    p0, p1 = ranks[0]['params'], ranks[1]['params']
    assert p0.keys() == p1.keys() and p0
    for name in p0:
        assert torch.equal(p0[name], p1[name]), name
    # the checkpoint (written by rank 0) holds the same weights
    state = torch.load(
        str(work / 'epoch_1.pth'), weights_only=False)['state_dict']
    for name in p0:
        assert torch.equal(state[name], p0[name]), name
    return p0


# tiny teacher (CSTrack-S narrowed) and student (CSTrack-N narrowed) configs,
# written to tmp and inheriting ours by absolute path
TINY_DATA = """
data_root = '{data}/'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
train_cfg = dict(max_epochs=1, val_interval=10)
val_cfg = val_dataloader = val_evaluator = None
"""
TINY_TEACHER = ("dict(backbone=dict(widen_factor=0.25), "
                "neck=dict(out_channels=64), id_head=dict(embed_channels=64))")
TINY_STUDENT = ("dict(backbone=dict(widen_factor=0.125), "
                "neck=dict(out_channels=32), id_head=dict(embed_channels=32))")


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@needs_dist
def test_two_rank_distillation(tiny_synthmot, tmp_path):
    data = TINY_DATA.format(data=tiny_synthmot.rstrip('/'))
    teacher_cfg = tmp_path / 'teacher.py'
    teacher_cfg.write_text(
        f"_base_ = ['{ROOT}/configs/cstrack/cstrack_yolov5s_synthmot.py']\n"
        + data + f'model = {TINY_TEACHER}\n')
    run_tool(['tools/train.py', str(teacher_cfg), '--work-dir',
              str(tmp_path / 'teacher')])
    t_ckpt = tmp_path / 'teacher' / 'epoch_1.pth'
    t_hash = sha256(t_ckpt)
    kd_cfg = tmp_path / 'kd.py'
    kd_cfg.write_text(
        f"_base_ = ['{ROOT}/configs/kd/cstrack_s2n_kd_synthmot.py']\n"
        + data + f"model = dict(teacher='{teacher_cfg}', "
        f"teacher_ckpt='{t_ckpt}', student={TINY_STUDENT})\n")

    proc, work = launch_two_ranks(
        tiny_synthmot, tmp_path, str(kd_cfg),
        ['default_hooks.logger.interval=1'],
        [dict(type='DumpRankParamsHook'), dict(type='DumpTeacherStateHook')])
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-5000:])

    # (a) student and connectors identical on both ranks and in the ckpt
    params = check_ranks_identical(work)
    prefixes = {name.split('.')[0] for name in params}
    assert {'student', 'connectors'} <= prefixes, prefixes
    assert prefixes <= {'student', 'connectors', 'distill_losses'}, prefixes
    state = torch.load(
        str(work / 'epoch_1.pth'), weights_only=False)['state_dict']
    assert not any(k.startswith('teacher') for k in state)

    # (b) the teacher: frozen, gradient-free, outside DDP and the optimizer,
    # unchanged on both ranks; its checkpoint file untouched
    assert sha256(t_ckpt) == t_hash, 'KD training modified the teacher file'
    t_state = torch.load(str(t_ckpt), weights_only=False)['state_dict']
    for rank in (0, 1):
        teacher = torch.load(
            str(work / f'rank{rank}_teacher.pth'), weights_only=False)
        assert teacher['state'], rank
        assert teacher['with_grad'] == [], (rank, teacher['with_grad'][:5])
        assert teacher['requires_grad'] == [], (
            rank, teacher['requires_grad'][:5])
        assert not teacher['training'], rank
        assert teacher['in_ddp'] == [] and teacher['in_optim'] == [], rank
        assert teacher['state'].keys() == t_state.keys()
        for name, value in teacher['state'].items():
            assert torch.equal(value, t_state[name]), (rank, name)

    # (c) the distillation losses were logged (by rank 0) at every iteration
    scalars = next(work.glob('*/vis_data/scalars.json'))
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2, 3]
    for name in ('loss_kd_id', 'loss_kd_feat', 'loss_kd_resp'):
        for r in train:
            assert name in r and r[name] == r[name], (name, r)  # not NaN


@needs_dist
def test_nan_on_one_rank_stops_both(tiny_synthmot, tmp_path):
    config, model_opts = DIST_CONFIGS[0]
    proc, work = launch_two_ranks(
        tiny_synthmot, tmp_path, config, model_opts,
        [dict(type='InjectNaNLossHook', rank=1, iteration=1)], timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert 'NonFiniteLossError' in out, out[-5000:]
    # rank 1 names the term, rank 0 learns it from the all-reduced flag
    assert 'non-finite loss loss_id=nan at epoch 1, iteration 2' in out, \
        out[-5000:]
    assert 'another rank saw a non-finite loss at epoch 1, iteration 2' in \
        out, out[-5000:]
    assert not (work / 'epoch_1.pth').exists()
