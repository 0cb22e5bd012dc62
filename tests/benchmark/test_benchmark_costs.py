"""mmtrack_kd.benchmark.costs: the per-iteration timing of
``kd_benchmark.py --measure-costs``."""
import pytest

from mmtrack_kd.benchmark import configs, costs
from mmtrack_kd.benchmark.runner import Benchmark


def test_time_training_reports_the_median_of_the_timed_iterations(
        tmp_path, tiny_synthmot):
    # 2 epochs of the 10-frame tiny split at batch 2: 10 iterations
    bench = Benchmark(str(tmp_path), 'micro', 1, [], data=tiny_synthmot,
                      epochs=2)
    cfg = configs.model_cfg(bench, 'student', 0)
    bench.make_init(0)
    out = costs.time_training(cfg, 6, str(tmp_path / 'w'))
    assert out['iters'] == 6 - costs.WARMUP
    assert 0 < out['cpu_s_per_iter'] < 60
    assert 0 < out['wall_s_per_iter'] < 60
    # stopped in the second epoch (5 iterations an epoch)
    assert (tmp_path / 'w' / 'epoch_1.pth').is_file()
    assert not (tmp_path / 'w' / 'epoch_2.pth').exists()
    with pytest.raises(ValueError, match='at least 4 iterations'):
        costs.time_training(cfg, 3, str(tmp_path / 'w'))
    with pytest.raises(RuntimeError, match='only 10 iterations ran'):
        costs.time_training(cfg, 30, str(tmp_path / 'w2'))
