"""SPP's three pools (5, 9, 13; stride 1, same padding) without gradients:
nn.MaxPool2d against WindowMaxPool2d, one thread, on the SPP maps named in
README/docs (medians of 20 calls after 3). Writes window_pool_micro_s23.json
beside this file. Run from the repository root:
OMP_NUM_THREADS=1 python docs/results/window_pool_micro_s23.py"""
import os.path as osp
import statistics
import time
from datetime import datetime, timezone

import torch
import torch.nn as nn

from mmtrack_kd.apis.speed import write_json
from mmtrack_kd.models.layers import WindowMaxPool2d

torch.set_num_threads(1)
MAPS = {
    'benchmark teacher, 4 frames at 576x320': (4, 128, 10, 18),
    'benchmark teacher, 4 frames at 320x192 (training)': (4, 128, 6, 10),
    '8-epoch KD student, 1 frame at 576x320': (1, 64, 10, 18),
    'CSTrack-S, 2 frames at 1088x608': (2, 256, 19, 34),
}


def median_ms(fn, x, n=20):
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


rows = {}
with torch.no_grad():
    for name, shape in MAPS.items():
        x = torch.randn(*shape)
        direct = [nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13)]
        window = [WindowMaxPool2d(k) for k in (5, 9, 13)]
        assert all(torch.equal(d(x), w(x)) for d, w in zip(direct, window))
        rows[name] = dict(
            shape=list(shape),
            max_pool2d_ms=median_ms(lambda t: [p(t) for p in direct], x),
            window_max_ms=median_ms(lambda t: [p(t) for p in window], x))
        print(name, rows[name])
out = osp.join(osp.dirname(osp.abspath(__file__)),
               'window_pool_micro_s23.json')
write_json(
    dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
         command=('OMP_NUM_THREADS=1 python '
                  'docs/results/window_pool_micro_s23.py'),
         torch_version=torch.__version__, maps=rows), out)
