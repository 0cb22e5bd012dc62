"""Gather the runs of kd_step_overhead_e8_s25.sh (OUT/base*.json,
OUT/new*.json) into docs/results/kd_step_overhead_e8_s25.json (or the
file given after the folder: the shell script passes ``RESULT``), each run's
overhead and step medians, the median and range of each tree, and the
paired differences (new - base) of the rounds."""
import glob
import json
import os.path as osp
import statistics
import sys

from mmtrack_kd.benchmark.stats import paired_test


def load(folder, tag):
    runs = {}
    for path in sorted(glob.glob(osp.join(folder, f'{tag}*.json'))):
        name = osp.basename(path)[:-5]
        with open(path) as f:
            runs[int(name[len(tag):])] = json.load(f)
    return runs


def summary(runs):
    keys = ('connectors', 'loss.kd_id', 'loss.kd_feat', 'loss.kd_resp',
            'backward_extra', 'other')
    vals = [r['overhead_beyond_teacher'] for r in runs.values()]
    return dict(
        overhead_beyond_teacher_median=statistics.median(vals),
        overhead_beyond_teacher_range=[min(vals), max(vals)],
        in_step_median_ms={k: statistics.median(
            r['in_step'][k]['median_ms'] for r in runs.values())
            for k in keys},
        runs={str(i): dict(
            overhead_beyond_teacher=r['overhead_beyond_teacher'],
            overhead_beyond_teacher_amortised=r[
                'overhead_beyond_teacher_amortised'],
            median_ms=r['median_ms'], load_average=r['load_average'],
            date=r['date']) for i, r in sorted(runs.items())},
        command=next(iter(runs.values()))['command'])


def ci95(values):
    """The t-based 95 % interval of the mean of ``values`` (None for
    fewer than 2)."""
    t = paired_test(values)
    return None if t['n'] < 2 else [t['ci95_low'], t['ci95_high']]


def main(folder, out=None):
    base, new = load(folder, 'base'), load(folder, 'new')
    rounds = sorted(set(base) & set(new))
    diffs = [new[i]['overhead_beyond_teacher'] -
             base[i]['overhead_beyond_teacher'] for i in rounds]
    doc = dict(
        what='KD step overhead beyond the teacher forward (fraction of a '
        'student step), 8-epoch benchmark ours config, seed 5, random '
        'teacher, 1 thread, CPU time, after the connectors\' warm-up '
        '(kd_step_overhead_e8_s25_config.py: detach_iters=0, the state '
        'after it); base: code at 97bf830 (end of session 24), new: '
        'session 25',
        command='ROUNDS=%d bash docs/results/kd_step_overhead_e8_s25.sh' %
        len(rounds),
        base=summary(base), new=summary(new),
        paired_difference=dict(
            values=diffs, median=statistics.median(diffs),
            mean=statistics.fmean(diffs), ci95_of_mean=ci95(diffs)))
    out = out or osp.join(osp.dirname(osp.abspath(__file__)),
                          'kd_step_overhead_e8_s25.json')
    with open(out, 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')
    for tag in ('base', 'new'):
        s = doc[tag]
        print(f'{tag}: median {s["overhead_beyond_teacher_median"]:+.3f}, '
              f'range {s["overhead_beyond_teacher_range"][0]:+.3f} to '
              f'{s["overhead_beyond_teacher_range"][1]:+.3f}; in step (ms) '
              + ', '.join(f'{k} {v:.2f}'
                          for k, v in s['in_step_median_ms'].items()))
    print(f'paired new - base: median {statistics.median(diffs):+.3f}, '
          f'mean {statistics.fmean(diffs):+.3f} over {len(diffs)} rounds, '
          f'95 % CI of the mean {doc["paired_difference"]["ci95_of_mean"]}')
    print(f'wrote {out}')


if __name__ == '__main__':
    main(*sys.argv[1:3])
