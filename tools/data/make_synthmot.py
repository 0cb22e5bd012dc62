"""Generate SynthMOT, the synthetic pedestrian-tracking data set.

Examples:
    python tools/data/make_synthmot.py --out data/synthmot_quick
    python tools/data/make_synthmot.py --out data/synthmot_bench \\
        --preset bench --seed 0
    python tools/data/make_synthmot.py --out data/hard --preset bench \\
        --max-people 30 --lookalike-frac 0.5 --occluders 6 --overwrite

Every generation knob of ``mmtrack_kd.datasets.synthmot.KNOBS`` is a flag;
a flag left out takes the preset's value. See ``--help`` for the list.
"""
import argparse
import json
import sys
from typing import List, Optional


def build_parser(knobs: dict, presets: dict) -> argparse.ArgumentParser:
    """The argument parser: fixed options plus one flag per knob."""
    parser = argparse.ArgumentParser(
        description='Generate SynthMOT (MOTChallenge layout + CocoVID json).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', required=True,
                        help='dataset root to create')
    parser.add_argument('--preset', default='quick', choices=sorted(presets),
                        help='size preset: quick (seconds, for tests) or '
                        'bench (the CPU benchmark)')
    parser.add_argument('--seed', default=0, type=int,
                        help='master seed (same seed, same bytes)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing non-empty --out (the old '
                        'data is removed only after the new data is ready)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    group = parser.add_argument_group(
        'scene knobs (default: the preset value)')
    for name, knob in knobs.items():
        preset_vals = ', '.join(
            f'{p}={v[name]}' for p, v in presets.items() if name in v)
        group.add_argument(
            '--' + name.replace('_', '-'), dest=name, default=None,
            type=str, metavar=knob.type.__name__.upper(),
            help=f'{knob.help} [{knob.low:g}..{knob.high:g}; default '
            f'{knob.default}{"; " + preset_vals if preset_vals else ""}]')
    return parser


def parse_knobs(parser: argparse.ArgumentParser, args: argparse.Namespace,
                knobs: dict, check_knob) -> dict:
    """Convert and check the knob flags; a bad value is a parser error that
    names the flag."""
    values = {}
    for name, knob in knobs.items():
        text = getattr(args, name)
        if text is None:
            continue
        flag = '--' + name.replace('_', '-')
        try:
            value = float(text) if knob.type is float else int(text)
        except ValueError:
            kind = 'a number' if knob.type is float else 'an integer'
            parser.error(f'argument {flag}: expected {kind}, got {text!r}')
        problem = check_knob(name, value)
        if problem:
            parser.error(f'argument {flag}: {problem}')
        values[name] = value
    return values


def main(argv: Optional[List[str]] = None) -> dict:
    """Parse ``argv``, generate, print a summary; returns the meta dict."""
    from mmtrack_kd.datasets.synthmot import (
        KNOBS,
        PRESETS,
        check_knob,
        generate_synthmot,
    )
    parser = build_parser(KNOBS, PRESETS)
    args = parser.parse_args(argv)
    values = parse_knobs(parser, args, KNOBS, check_knob)
    if args.seed < 0:
        parser.error(f'argument --seed: expected an integer >= 0, '
                     f'got {args.seed}')
    lo = values.get('min_people', PRESETS[args.preset].get(
        'min_people', KNOBS['min_people'].default))
    hi = values.get('max_people', PRESETS[args.preset].get(
        'max_people', KNOBS['max_people'].default))
    if lo > hi:
        parser.error(f'argument --min-people: {lo} is larger than '
                     f'--max-people {hi}')
    try:
        meta = generate_synthmot(
            args.out, preset=args.preset, seed=args.seed,
            overwrite=args.overwrite, show_progress=not args.no_progress,
            **values)
    except FileExistsError as e:
        parser.error(f'argument --out: {e}')
    summary = {s: {k: v for k, v in d.items() if k != 'sequences'}
               for s, d in meta['splits'].items()}
    print(f'SynthMOT written to {args.out}')
    print(json.dumps(summary, indent=2))
    return meta


if __name__ == '__main__':
    main(sys.argv[1:])
