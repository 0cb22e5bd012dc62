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
import json
import os.path as osp
import sys

from mmtrack_kd.benchmark.stats import paired_test

HERE = osp.dirname(osp.abspath(__file__))
RUNS = {
    'eb30ed6 (session 25)': 'kd_step_overhead_e8_s25_final.json',
    'b873064 (session 26)': 'kd_step_overhead_e8_s26_b873064.json',
    'bd74ce4 (session 26)': 'kd_step_overhead_e8_s26_10proc.json',
    '386ed9d (session 26)': 'kd_step_overhead.json',
}
READINGS = ('overhead_beyond_teacher', 'overhead_paired',
            'overhead_beyond_teacher_amortised')


def main(out=None):
    values = {k: [] for k in READINGS}
    runs = {}
    for name, fname in RUNS.items():
        with open(osp.join(HERE, fname)) as f:
            procs = json.load(f)['processes']
        runs[name] = dict(file=f'docs/results/{fname}',
                          student_ms=[p['median_ms']['student']
                                      for p in procs])
        for key in READINGS:
            values[key] += [p[key] for p in procs]
    doc = dict(runs=runs, readings={})
    for key, vals in values.items():
        t = paired_test(vals)
        doc['readings'][key] = dict(n=t['n'], mean=t['mean_diff'],
                                    low=t['ci95_low'], high=t['ci95_high'],
                                    values=vals)
        print(f'{key:<36} n={t["n"]} mean {100 * t["mean_diff"]:.2f} % '
              f'[{100 * t["ci95_low"]:.2f}, {100 * t["ci95_high"]:.2f}]')
    if out:
        with open(out, 'w') as f:
            json.dump(doc, f, indent=2)


if __name__ == '__main__':
    main(*sys.argv[1:2])
