"""Session 25: two CPU pathologies met in KeyFeatureLoss, timed alone.

1. A batched product of an (N, C, P) map with (N, P, 1) weights (a
   matrix-vector product per frame) against the same sums written as
   (N, 1, P) by (N, P, C).
2. ``torch.addcmul`` whose first operand is a broadcast (N, C, 1) tensor
   against a subtraction and an in-place product.

    OMP_NUM_THREADS=1 python docs/results/matvec_micro_s25.py

Prints the median microseconds of each form (300 calls after 10) and the
largest difference between the two forms' results.
"""
import statistics
import time

import torch

from mmtrack_kd.utils.malloc import retain_freed_memory


def bench(fn, n=300):
    for _ in range(10):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(ts)


def main():
    torch.set_num_threads(1)
    retain_freed_memory()
    g = torch.Generator().manual_seed(0)
    for p in (1232, 308, 77):  # the benchmark's three neck levels
        x = torch.randn(4, 64, p, generator=g)
        w = torch.rand(4, p, generator=g)
        col = torch.bmm(x, w[:, :, None])[..., 0]
        row = torch.bmm(w[:, None, :], x.transpose(1, 2))[:, 0]
        t_col = bench(lambda: torch.bmm(x, w[:, :, None]))
        t_row = bench(lambda: torch.bmm(w[:, None, :], x.transpose(1, 2)))
        print(f'(4, 64, {p}) weighted sums over P: (C, P) x (P, 1) '
              f'{t_col:.1f} us, (1, P) x (P, C) {t_row:.1f} us; max '
              f'difference {float((col - row).abs().max()):.2e}')
    x = torch.randn(4, 64, 1232, generator=g)
    c = torch.randn(4, 64, 1232, generator=g)
    r, m, k = (torch.rand(4, 64, 1, generator=g) for _ in range(3))

    def broadcast_first():
        out = torch.addcmul(-(m * r), x, r)
        return out.addcmul_(c, k, value=-1)

    def sub_then_mul():
        out = torch.sub(x, m).mul_(r)
        return out.addcmul_(c, k, value=-1)

    print(f'(x - m) r - c k on (4, 64, 1232): addcmul onto the broadcast '
          f'-m r {bench(broadcast_first):.1f} us, sub and mul_ '
          f'{bench(sub_then_mul):.1f} us; max difference '
          f'{float((broadcast_first() - sub_then_mul()).abs().max()):.2e}')


if __name__ == '__main__':
    main()
