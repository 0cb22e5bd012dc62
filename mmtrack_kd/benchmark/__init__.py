"""The KD benchmark on SynthMOT as a library (``tools/benchmark/
kd_benchmark.py`` and ``kd_search.py`` are its command lines).

- :mod:`.plan`: presets (``presets.yaml``), methods, the run plan.
- :mod:`.configs`: the generated config of each (method, seed).
- :mod:`.runner`: trainings and evaluations in subprocesses, parallel jobs.
- :mod:`.records`: per-run records, parameter counts, loss curves.
- :mod:`.provenance`: data fingerprints, config hashes, code versions, the
  stale-record check.
- :mod:`.init_state`: the initial student weights of each seed.
- :mod:`.thresholds`: the val-split choice of the detection and tracker
  thresholds.
- :mod:`.stats`: mean/std over seeds, gap recovered, paired comparisons.
- :mod:`.report`: results.json, results.md, the targets table.
- :mod:`.plots`: the PNG plots (matplotlib imported when plotting).
- :mod:`.search`: the val-split searches (gradient ratios, loss weights).
- :mod:`.cli`: the command-line options both tools share.
"""
from .plan import (
                   FRAGMENTS,
                   METHODS,
                   TEACHER_SEED,
                   BenchmarkPlan,
                   load_benchmark_data,
                   parse_loss_options,
                   parse_loss_scale,
                   parse_size_options,
)
from .runner import Benchmark, execute, run_benchmark
from .search import Search, parse_scales

__all__ = [
    'FRAGMENTS', 'METHODS', 'TEACHER_SEED', 'Benchmark', 'BenchmarkPlan',
    'Search', 'execute', 'load_benchmark_data', 'parse_loss_options',
    'parse_loss_scale', 'parse_scales', 'parse_size_options', 'run_benchmark'
]
