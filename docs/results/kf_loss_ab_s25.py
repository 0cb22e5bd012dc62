"""Session 25: KeyFeatureLoss forward + backward on the tensors of one KD
step, the class of an older tree against this one's (same settings),
alternated 6 times in one process (40 calls each, medians, ms).

    git worktree add --detach /work/wt25 97bf830
    OMP_NUM_THREADS=1 python docs/results/kf_loss_ab_s25.py \\
        docs/results/kd_step_overhead_e8_config.py TEACHER.pth /work/wt25
"""
import statistics
import sys
import time
import types

import torch

from mmtrack_kd.apis.speed import build_distiller_batch
from mmtrack_kd.utils.malloc import retain_freed_memory


def detached(x):
    if isinstance(x, torch.Tensor):
        y = x.detach()
        return y.requires_grad_(True) if x.requires_grad else y
    if isinstance(x, (list, tuple)):
        return type(x)(detached(v) for v in x)
    return x


def main(config, ckpt, old_tree):
    torch.set_num_threads(1)
    retain_freed_memory()
    model, inputs, samples = build_distiller_batch(
        config, {'model.teacher_ckpt': ckpt})
    model.train()
    new = model.distill_losses['kd_feat']
    seen = {}
    forward = new.forward

    def capture(*a, **k):
        seen['kw'] = k
        return forward(*a, **k)

    new.forward = capture
    model.loss(inputs, samples)
    del new.forward
    kw = {k: detached(v) for k, v in seen['kw'].items()}
    # the old module run without its registration (the name is taken)
    path = f'{old_tree}/mmtrack_kd/models/losses/key_feature_loss.py'
    with open(path) as f:
        src = f.read().replace('@MODELS.register_module()\n', '')
    mod = types.ModuleType('mmtrack_kd.models.losses.old_key_feature_loss')
    mod.__package__ = 'mmtrack_kd.models.losses'
    exec(compile(src, path, 'exec'), mod.__dict__)
    old = mod.KeyFeatureLoss.__new__(mod.KeyFeatureLoss)
    torch.nn.Module.__init__(old)
    old.__dict__.update({k: v for k, v in vars(new).items()
                         if not k.startswith('_')})
    losses = dict(old=old, new=new)
    times, values = {'old': [], 'new': []}, {}
    for r in range(6):
        for tree in ('old', 'new') if r % 2 == 0 else ('new', 'old'):
            for _ in range(5):
                losses[tree](**kw).backward()
            ts = []
            for _ in range(40):
                t0 = time.perf_counter()
                out = losses[tree](**kw)
                out.backward()
                ts.append(time.perf_counter() - t0)
            times[tree].append(1e3 * statistics.median(ts))
            values[tree] = out.item()
    for tree in ('old', 'new'):
        print(f'{tree}: ' + ' '.join(f'{t:.3f}' for t in times[tree]) +
              f' ms; loss {values[tree]!r}')


if __name__ == '__main__':
    main(*sys.argv[1:4])
