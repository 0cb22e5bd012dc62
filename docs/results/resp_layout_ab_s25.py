"""Session 25: PredictionDifferenceLoss forward + backward on the tensors
of one KD step, with the YOLOv5 layout functions of an older tree
(transposed copies of the heads) and of this one (a gather), alternated
6 times in one process (40 calls each, medians, ms).

    git worktree add --detach /work/wt25 97bf830
    OMP_NUM_THREADS=1 python docs/results/resp_layout_ab_s25.py \\
        docs/results/kd_step_overhead_e8_config.py TEACHER.pth /work/wt25

(TEACHER.pth: e.g. a random teacher written by
``kd_step_overhead.py --random-teacher``'s ``random_teacher``.)
"""
import importlib.util
import statistics
import sys
import time

import torch

import mmtrack_kd.models.task_modules.response_decoders as rd
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
    loss = model.distill_losses['kd_resp']
    seen = {}
    forward = loss.forward

    def capture(*a, **k):
        seen['kw'] = k
        return forward(*a, **k)

    loss.forward = capture
    model.loss(inputs, samples)
    del loss.forward
    kw = {k: detached(v) for k, v in seen['kw'].items()}
    spec = importlib.util.spec_from_file_location(
        'mmtrack_kd.models.task_modules.old_yolo_decode',
        f'{old_tree}/mmtrack_kd/models/task_modules/yolo_decode.py')
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    fns = dict(new=(rd.decode_yolov5_at, rd.yolov5_layout,
                    rd.yolov5_boxes_at),
               old=(old.decode_yolov5_at,
                    lambda *a: (lambda s: (s[0][:, 4], s))(
                        old.yolov5_layout(*a)), old.yolov5_boxes_at))
    times, values = {'old': [], 'new': []}, {}
    for r in range(6):
        for tree in ('old', 'new') if r % 2 == 0 else ('new', 'old'):
            rd.decode_yolov5_at, rd.yolov5_layout, rd.yolov5_boxes_at = \
                fns[tree]
            for _ in range(5):
                loss(**kw).backward()
            ts = []
            for _ in range(40):
                t0 = time.perf_counter()
                out = loss(**kw)
                out.backward()
                ts.append(time.perf_counter() - t0)
            times[tree].append(1e3 * statistics.median(ts))
            values[tree] = out.item()
    for tree in ('old', 'new'):
        print(f'{tree}: ' + ' '.join(f'{t:.3f}' for t in times[tree]) +
              f' ms; loss {values[tree]!r}')


if __name__ == '__main__':
    main(*sys.argv[1:4])
