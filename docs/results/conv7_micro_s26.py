"""The 7x7 conv of SAAN's spatial attention (2 channels in, 1 out) forward
and backward on this CPU, three ways (session 26): torch's default
(oneDNN), with oneDNN off (im2col and a product) and written as unfold and
a product. Shapes: the benchmark student's stride-8 map (4 frames at
224x352) and CSTrack-S's at 1088x608 (2 frames). Medians of 30 calls, CPU
time, one thread.

    OMP_NUM_THREADS=1 python docs/results/conv7_micro_s26.py
"""
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn, n=30):
    fn()
    fn()
    ts = []
    for _ in range(n):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return 1e6 * statistics.median(ts)


def main():
    torch.set_num_threads(1)
    for shape in [(4, 2, 28, 44), (2, 2, 76, 136)]:
        d = torch.randn(shape, requires_grad=True)
        w = torch.randn(1, 2, 7, 7, requires_grad=True)
        b = torch.randn(1, requires_grad=True)
        g = torch.randn(shape[0], 1, shape[2], shape[3])

        def onednn():
            F.conv2d(d, w, b, padding=3).backward(g)

        def no_onednn():
            with torch.backends.mkldnn.flags(enabled=False):
                F.conv2d(d, w, b, padding=3).backward(g)

        def unfolded():
            n, _, h, wd = d.shape
            cols = F.unfold(d, 7, padding=3)  # (N, 98, H*W)
            y = (w.view(1, 1, -1) @ cols).view(n, 1, h, wd) + b.view(1, 1, 1,
                                                                      1)
            y.backward(g)

        def onednn_fwd():
            with torch.no_grad():
                F.conv2d(d, w, b, padding=3)

        def no_onednn_fwd():
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                F.conv2d(d, w, b, padding=3)

        print(shape)
        for name, fn in [('oneDNN fwd+bwd', onednn),
                         ('no oneDNN fwd+bwd', no_onednn),
                         ('unfold fwd+bwd', unfolded),
                         ('oneDNN fwd', onednn_fwd),
                         ('no oneDNN fwd', no_onednn_fwd)]:
            print(f'  {name:<18} {timed(fn):8.0f} us')


if __name__ == '__main__':
    main()
