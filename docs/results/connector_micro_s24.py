"""ConvBN against Conv connectors (1x1, 32 -> 64 channels, batch 4) on the
8-epoch benchmark's three neck maps at 224x352: forward + backward of the
sum, medians of CPU time over 200 calls, one thread.

    OMP_NUM_THREADS=1 python docs/results/connector_micro_s24.py
"""
import statistics
import time

import torch


def bench(fn, n=200):
    for _ in range(10):
        fn()
    times = []
    for _ in range(n):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1e3 * statistics.median(times)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    total = dict(conv=0.0, convbn=0.0)
    for hw in [(28, 44), (14, 22), (7, 11)]:
        x = torch.randn(4, 32, *hw, requires_grad=True)
        conv = torch.nn.Conv2d(32, 64, 1, bias=False)
        bn = torch.nn.BatchNorm2d(64)
        ms = dict(conv=bench(lambda: conv(x).sum().backward()),
                  convbn=bench(lambda: bn(conv(x)).sum().backward()))
        for k, v in ms.items():
            total[k] += v
        print(f'{hw}: conv {ms["conv"]:.3f} ms, conv + BN '
              f'{ms["convbn"]:.3f} ms')
    print(f'three levels: conv {total["conv"]:.2f} ms, conv + BN '
          f'{total["convbn"]:.2f} ms')


if __name__ == '__main__':
    main()
