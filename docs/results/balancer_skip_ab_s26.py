"""Gather session 26's A/B of the balancer's unmeasured iterations
(``GradientBalancer.skip``): b873064 (base) against 003e974 (new), one
process each, alternated, 4 rounds, run as

    BASE=/work/wt26 NEW=/work/wt26n OUT=outputs/s26/ab \
        CFG=docs/results/kd_step_overhead_e8_config.py ROUNDS=4 \
        bash docs/results/kd_step_overhead_e8_s25.sh
    (its gatherer, which had no RESULT then, rewrote
    kd_step_overhead_e8_s25.json; that file was restored from git)
    python docs/results/balancer_skip_ab_s26.py outputs/s26/ab \
        docs/results/balancer_skip_ab_s26.json

For each round: the balancing's time inside the step (``in_step.balance``)
and the step overhead of both; their paired differences (new - base) with
the 95 % t interval of the mean.
"""
import glob
import json
import os.path as osp
import sys

from mmtrack_kd.benchmark.stats import paired_test


def load(folder, tag):
    out = {}
    for path in glob.glob(osp.join(folder, f'{tag}*.json')):
        with open(path) as f:
            out[int(osp.basename(path)[len(tag):-5])] = json.load(f)
    return out


def main(folder, out=None):
    base, new = load(folder, 'base'), load(folder, 'new')
    rounds = sorted(set(base) & set(new))
    doc = dict(what='balancing time inside the KD step and the step overhead '
               '(8-epoch ours config, random teacher, 1 thread, CPU time); '
               'base b873064, new 003e974 (GradientBalancer.skip)',
               rounds=rounds)
    for key, get in (
            ('balance_ms', lambda r: r['in_step']['balance']['median_ms']),
            ('overhead_beyond_teacher',
             lambda r: r['overhead_beyond_teacher'])):
        b = [get(base[i]) for i in rounds]
        n = [get(new[i]) for i in rounds]
        t = paired_test([y - x for x, y in zip(b, n)])
        doc[key] = dict(base=b, new=n, mean_diff=t['mean_diff'],
                        ci95=[t['ci95_low'], t['ci95_high']])
        print(f'{key}: base {b}, new {n}; new - base {t["mean_diff"]:+.4f} '
              f'[{t["ci95_low"]:+.4f}, {t["ci95_high"]:+.4f}]')
    if out:
        with open(out, 'w') as f:
            json.dump(doc, f, indent=2)


if __name__ == '__main__':
    main(*sys.argv[1:3])
