"""The plots of the KD benchmark (matplotlib is imported only when
plotting)."""
import os.path as osp
from typing import Dict, List


def plot(results: dict, records: Dict[str, Dict[str, dict]],
         out: str) -> List[str]:
    """Write metric_bars.png, loss_curves.png, acc_vs_fps.png and
    balance.png.

    Args:
        results (dict): results.json (test summaries are plotted).
        records (dict): ``{method: {seed: record}}``; the first seed's
            ``loss_curve`` of each method is drawn.
        out (str): folder of the PNG files.

    Returns:
        list[str]: the files written (none when no model has test
        metrics).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    names = [n for n, m in results['methods'].items()
             if m['summary'].get('test', {}).get('IDF1')]
    if not names:
        return written
    summ = {n: results['methods'][n]['summary']['test'] for n in names}

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, key in zip(axes, ('MOTA', 'IDF1', 'HOTA')):
        means = [summ[n][key]['mean'] for n in names]
        stds = [summ[n][key]['std'] for n in names]
        colors = ['tab:gray' if n in ('teacher', 'student') else
                  'tab:red' if n.startswith(('ours', 'only')) else
                  'tab:blue' for n in names]
        ax.bar(range(len(names)), means, yerr=stds, color=colors, capsize=3)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha='right', fontsize=8)
        ax.set_title(f'test {key} (mean ± std over seeds)')
    fig.tight_layout()
    written.append(osp.join(out, 'metric_bars.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        recs = records.get(name, {})
        if not recs:
            continue
        rec = recs[sorted(recs)[0]]
        curve = rec.get('loss_curve') or []
        if curve:
            ax.plot([p[0] for p in curve], [p[1] for p in curve],
                    label=name, lw=1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('total training loss (first seed)')
    ax.set_yscale('log')
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    written.append(osp.join(out, 'loss_curves.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for name in names:
        s = summ[name]
        if 'FPS' not in s:
            continue
        main = name in ('teacher', 'student', 'ours')
        ax.errorbar(s['FPS']['mean'], s['IDF1']['mean'],
                    xerr=s['FPS']['std'], yerr=s['IDF1']['std'],
                    fmt='o' if main else '.', ms=8 if main else 4,
                    alpha=1.0 if main else 0.5, label=name if main else None)
        ax.annotate(name, (s['FPS']['mean'], s['IDF1']['mean']), fontsize=7)
    ax.set_xlabel('tracking FPS (model + tracker, batch 1, CPU)')
    ax.set_ylabel('test IDF1')
    ax.legend()
    fig.tight_layout()
    written.append(osp.join(out, 'acc_vs_fps.png'))
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    path = plot_balance(records, osp.join(out, 'balance.png'))
    if path:
        written.append(path)
    return written


def plot_balance(records: Dict[str, Dict[str, dict]],
                 path: str) -> str:
    """balance.png: per method (first seed), the fraction of clipped steps,
    and each distillation loss's gradient norm over the task's on the
    student's neck (runs with ``loss_balance`` only). Returns ``path``, or
    '' when no record has balance curves."""
    firsts = {m: recs[sorted(recs)[0]].get('balance_curves') or {}
              for m, recs in records.items() if recs}
    firsts = {m: c for m, c in firsts.items() if c}
    if not firsts:
        return ''
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    for method, curves in firsts.items():
        clip = curves.get('clipped_frac') or []
        if clip:
            ax1.plot([p[0] for p in clip], [p[1] for p in clip], lw=1,
                     label=method)
        task = dict(map(tuple, curves.get('gnorm_task') or []))
        for key, curve in curves.items():
            if not key.startswith('gnorm_') or key == 'gnorm_task':
                continue
            pts = [(i, v / task[i]) for i, v in curve
                   if task.get(i, 0) > 0]
            if pts:
                ax2.plot([p[0] for p in pts], [p[1] for p in pts], lw=1,
                         label=f'{method}: {key[len("gnorm_"):]}')
    ax1.set_xlabel('iteration')
    ax1.set_ylabel('fraction of clipped steps (window of 50)')
    ax1.set_ylim(-0.05, 1.05)
    ax1.legend(fontsize=7, ncol=2)
    ax2.set_xlabel('iteration')
    ax2.set_ylabel('KD gradient norm / task gradient norm (neck)')
    ax2.set_yscale('log')
    if ax2.lines:
        ax2.legend(fontsize=7, ncol=2)
    fig.suptitle('balance of distillation against the task (first seed)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
