"""Every baseline fragment of configs/_base_/distill/baselines builds inside
a tiny CSTrack distiller and gives a finite, positive loss."""
import pytest
import torch
from kd_fragment_build import batch, build_with_fragment

from mmtrack_kd.benchmark.plan import FRAGMENTS

BASELINES = sorted(k for k, (f, _) in FRAGMENTS.items()
                   if f.startswith('baselines/'))


@pytest.mark.parametrize('key', BASELINES)
def test_baseline_fragment_builds_and_gives_a_loss(key, tmp_path):
    fname, var = FRAGMENTS[key]
    # MGD / FGD: the tiny teacher's neck has 32 channels (the benchmark
    # sets them from its teacher the same way)
    model = build_with_fragment(fname, var, str(tmp_path), channels=32)
    losses = model.loss(*batch())
    kd = {k: v for k, v in losses.items() if k.startswith('loss_kd')}
    assert kd and all(torch.isfinite(v) and v.item() > 0
                      for v in kd.values())
