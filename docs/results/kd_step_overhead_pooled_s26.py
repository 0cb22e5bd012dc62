"""The 8-epoch config's step overhead pooled over every process of the
four `--processes` runs of near-identical code (session 25's final run at
eb30ed6, session 26's at b873064, at bd74ce4 and at 386ed9d, the last with
30 processes; between them only the
response loss's layout built once, -0.15 ms, and the balancer's
unmeasured iterations only counted, -0.08 ms): the mean of each reading
over the processes with its 95 % t interval, printed and written as JSON.

    python docs/results/kd_step_overhead_pooled_s26.py \
        docs/results/kd_step_overhead_pooled_s26.json
"""
import importlib.util
import json
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
RUNS = {
    'eb30ed6 (session 25)': 'kd_step_overhead_e8_s25_final.json',
    'b873064 (session 26)': 'kd_step_overhead_e8_s26_b873064.json',
    'bd74ce4 (session 26)': 'kd_step_overhead_e8_s26_10proc.json',
    '386ed9d (session 26)': 'kd_step_overhead.json',
}


def overhead_tool():
    """tools/benchmark/kd_step_overhead.py, whose ``process_intervals``
    makes the intervals (as ``--processes`` does for one run)."""
    spec = importlib.util.spec_from_file_location(
        'kd_step_overhead', osp.join(HERE, '..', '..', 'tools', 'benchmark',
                                     'kd_step_overhead.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def main(out=None):
    tool = overhead_tool()
    procs, runs = [], {}
    for name, fname in RUNS.items():
        with open(osp.join(HERE, fname)) as f:
            these = json.load(f)['processes']
        runs[name] = dict(file=f'docs/results/{fname}',
                          student_ms=[p['median_ms']['student']
                                      for p in these])
        procs += these
    doc = dict(runs=runs, readings={})
    for key, t in tool.process_intervals(procs).items():
        doc['readings'][key] = dict(t, values=[p[key] for p in procs])
        print(f'{key:<36} n={t["n"]} mean {100 * t["mean"]:.2f} % '
              f'[{100 * t["low"]:.2f}, {100 * t["high"]:.2f}]')
    if out:
        with open(out, 'w') as f:
            json.dump(doc, f, indent=2)


if __name__ == '__main__':
    main(*sys.argv[1:2])
