"""What the gradient balancer's measurement costs, per loss, and whether
one vmapped backward over the losses is cheaper (session 26).

On a measured iteration the balancer takes the gradient norm of the task
and of each distillation loss on the student's neck: one backward pass per
loss (``_grad_norm``). This script captures one KD step's losses of
``CONFIG`` and times, in one process, alternated:

- ``old``: the balancer's own passes (``balance._grad_norm`` per loss);
- ``new``: each loss's gradient at the neck's outputs (the heads' part),
  then one backward of the neck for all of them at once
  (``torch.autograd.grad(..., is_grads_batched=True)``);
- ``heads_only``: the first part of ``new`` alone;

then each loss's pass alone (``full``) and its heads' part (``heads``).
It prints both sets of norms (they agree to float rounding) and the
medians (CPU time, one thread).

    OMP_NUM_THREADS=1 python docs/results/balancer_passes_s26.py \
        docs/results/kd_step_overhead_e8_config.py TEACHER.pth
"""
import statistics
import sys
import time

import torch

from mmtrack_kd.apis.speed import build_distiller_batch
from mmtrack_kd.models.distill import balance as B


def main(config: str, teacher: str) -> None:
    torch.set_num_threads(1)
    model, inputs, samples = build_distiller_batch(
        config, {'model.teacher_ckpt': teacher})
    model.train()
    bal = model.loss_balance
    cap, neck_outs = {}, []
    hook = model.student.neck.register_forward_hook(
        lambda m, i, o: neck_outs.append(o))
    orig = B.GradientBalancer.forward

    def capture(self, student, task, kd):
        cap.update(student=student, task=task, kd=kd)
        return orig(self, student, task, kd)

    B.GradientBalancer.forward = capture
    bal.step.fill_(bal.interval)  # a measured iteration
    model.loss(inputs, samples)
    hook.remove()
    B.GradientBalancer.forward = orig
    out = neck_outs[-1]
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    params = bal.shared_params(cap['student'])
    names = ['task'] + bal.loss_names
    roots = [cap['task']] + [cap['kd'][n] for n in bal.loss_names]

    def old():
        return [B._grad_norm(loss, params) for loss in roots]

    def at_outputs(loss):
        if not loss.requires_grad:
            return [None] * len(out)
        return list(torch.autograd.grad(loss, out, retain_graph=True,
                                        allow_unused=True))

    def new():
        us = [at_outputs(loss) for loss in roots]
        go = [torch.stack([u[j] if u[j] is not None else torch.zeros_like(o)
                           for u in us]) for j, o in enumerate(out)]
        gs = torch.autograd.grad(out, params, grad_outputs=go,
                                 retain_graph=True, allow_unused=True,
                                 is_grads_batched=True)
        sq = sum(g.flatten(1).pow(2).sum(1) for g in gs if g is not None)
        return sq.sqrt().tolist()

    def heads_only():
        for loss in roots:
            at_outputs(loss)

    print('norms, passes  ', dict(zip(names, old())))
    print('norms, batched ', dict(zip(names, new())))
    clock = time.process_time
    fns = dict(old=old, new=new, heads_only=heads_only)
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(8):
        for key, fn in fns.items():
            t = clock()
            fn()
            times[key].append(clock() - t)
    for key, ts in times.items():
        print(f'{key:<12} {1e3 * statistics.median(ts):6.1f} ms')
    for name, loss in zip(names, roots):
        for part, fn in (('full', lambda: B._grad_norm(loss, params)),
                         ('heads', lambda: at_outputs(loss))):
            fn()
            ts = []
            for _ in range(6):
                t = clock()
                fn()
                ts.append(clock() - t)
            print(f'{name:<8} {part:<6} {1e3 * statistics.median(ts):6.1f} '
                  'ms')


if __name__ == '__main__':
    main(*sys.argv[1:3])
