"""Detection and tracker thresholds chosen on the val split, per (method,
seed), from the grid of ``presets.yaml`` (``thresholds``), the same for
every method.

A preset turns the choice on with ``tune_thresholds: true``. Every
candidate of the grid is evaluated on val (``tools/test.py --cfg-options``,
no retraining); the one of the best ``metric`` (``tie_break`` breaks ties,
then the grid order) is kept and every split of the run is scored with it.
"""
import itertools
from typing import Dict, List, Optional

Candidate = Dict[str, float]


def grid_spec(data: dict) -> dict:
    """The ``thresholds`` section of the benchmark's data file, checked.

    Raises:
        KeyError: a missing key (named with the section).
    """
    spec = dict(data.get('thresholds') or {})
    for key in ('metric', 'tie_break', 'grid'):
        if key not in spec:
            raise KeyError(f'presets.yaml: thresholds: no {key!r}')
    for name, entry in spec['grid'].items():
        if not entry.get('keys') or not entry.get('values'):
            raise KeyError(f'presets.yaml: thresholds.grid.{name} needs '
                           '`keys` and `values`')
    return spec


def candidates(spec: dict) -> Dict[str, Candidate]:
    """The product of the grid's entries, in order: label (``ENTRY=VALUE,
    ...``, the candidate's name in records and reports) -> config options
    (an entry sets every key it names to each of its values in turn).

    Example:
        >>> candidates(dict(grid=dict(score=dict(
        ...     keys=['a.thr', 'b.thr'], values=[0.3, 0.5]))))
        {'score=0.3': {'a.thr': 0.3, 'b.thr': 0.3}, 'score=0.5': {'a.thr': 0.5, 'b.thr': 0.5}}
    """  # noqa: E501
    names = list(spec['grid'])
    entries = list(spec['grid'].values())
    out = {}
    for values in itertools.product(*(e['values'] for e in entries)):
        cand = {}
        for entry, value in zip(entries, values):
            for key in entry['keys']:
                cand[key] = float(value)
        label = ','.join(f'{n}={float(v):g}' for n, v in zip(names, values))
        out[label] = cand
    return out


def cfg_option_args(cand: Optional[Candidate]) -> List[str]:
    """``['--cfg-options', 'KEY=VALUE', ...]`` for ``tools/test.py`` (empty
    for none)."""
    if not cand:
        return []
    return ['--cfg-options'] + [f'{k}={v!r}' for k, v in cand.items()]


def choose(results: Dict[str, Optional[dict]], metric: str,
           tie_break: str) -> str:
    """The label of the best candidate: highest ``metric``, then
    ``tie_break``, then the first in order; NaN counts as the worst.

    Raises:
        RuntimeError: no candidate was scored.
    """
    def score(x):
        return x if x == x else float('-inf')  # NaN -> worst

    ok = [k for k, v in results.items() if v is not None]
    if not ok:
        raise RuntimeError('thresholds: no candidate was evaluated')
    best = ok[0]
    for key in ok[1:]:
        a, b = results[key], results[best]
        if (score(a[metric]), score(a[tie_break])) > \
                (score(b[metric]), score(b[tie_break])):
            best = key
    return best
