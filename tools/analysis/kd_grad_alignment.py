"""How a distiller's terms pull on the student: gradient norms, pairwise
cosines and the share of each term's gradient that the others do not span,
on the student's shared layers (see :mod:`mmtrack_kd.apis.grad_alignment`).

Example (the `ours` runs of a benchmark folder, at the end of training):
    python tools/analysis/kd_grad_alignment.py \
        --run outputs/e8_rep/configs/ours__seed5.py \
              outputs/e8_rep/work/ours__seed5/epoch_8.pth \
        --run outputs/e8_rep/configs/ours__seed6.py \
              outputs/e8_rep/work/ours__seed6/epoch_8.pth \
        --batches 8 --shared neck --out alignment.json

Each ``--run CONFIG CHECKPOINT`` (a ``MOTDistiller`` config and a checkpoint
of it; ``none`` keeps the weights the config builds, teacher included) is
analysed on the first ``--batches`` batches of the config's training
loader (seed 0, the same batches for every run); the runs are summarised
by mean and 95 % t interval.
"""
import argparse
import math
import os.path as osp
import sys
from typing import List, Optional

import torch
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='gradient alignment of the terms of a KD config')
    parser.add_argument('--run', nargs=2, action='append', required=True,
                        metavar=('CONFIG', 'CHECKPOINT'),
                        help="a MOTDistiller config and its checkpoint "
                        "('none': as built); repeat for several runs")
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--shared', nargs='+', default=['neck'],
                        help='student module paths whose parameters the '
                        'gradients are taken on (default: neck)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--out', metavar='FILE.json',
                        help='also write the report as JSON')
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error('--batches must be >= 1')
    return args


def load_run(config: str, checkpoint: Optional[str], cfg_options,
             batches: int):
    """The distiller of ``config`` (with ``checkpoint`` loaded) and the
    first ``batches`` pre-processed batches of its training loader."""
    from mmengine.runner import load_checkpoint

    from mmtrack_kd.apis.speed import build_distiller_loader
    model, loader = build_distiller_loader(config, cfg_options)
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise ValueError(f'--run {config}: no checkpoint {checkpoint}')
        load_checkpoint(model, checkpoint, map_location='cpu',
                        logger='silent')
    out = []
    for batch in loader:
        if len(out) == batches:
            break
        data = model.data_preprocessor(batch, True)
        out.append((data['inputs'], data['data_samples']))
    return model, out


def _no_nan(x):
    """NaN (a zero gradient's cosine) as null in the JSON."""
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_no_nan(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmtrack_kd.apis.grad_alignment import (
        alignment_of_run,
        format_alignment,
        summarise_runs,
    )
    from mmtrack_kd.apis.speed import write_json
    runs: List[dict] = []
    try:
        for config, ckpt in args.run:
            ckpt = None if ckpt.lower() == 'none' else ckpt
            model, batches = load_run(config, ckpt, args.cfg_options,
                                      args.batches)
            res = alignment_of_run(model, batches, args.shared)
            res.update(config=config, checkpoint=ckpt)
            runs.append(res)
            print(f'{config}: ' + ', '.join(
                f'{k} {v:+.3f}' for k, v in res['mean']['cos'].items()))
    except ValueError as err:
        print(f'kd_grad_alignment: {err}', file=sys.stderr)
        return 2
    summary = summarise_runs(runs)
    print(format_alignment(summary, len(runs)))
    if args.out:
        doc = dict(summary=summary, runs=runs, shared=args.shared,
                   batches=args.batches,
                   command='python tools/analysis/kd_grad_alignment.py ' +
                   ' '.join(sys.argv[1:] if argv is None else argv))
        write_json(_no_nan(doc), args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
