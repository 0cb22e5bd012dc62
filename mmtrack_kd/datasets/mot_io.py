"""Reading and writing MOTChallenge text files (``gt.txt``, results).

Ground-truth rows: ``frame,id,x,y,w,h,conf,class,visibility``.
Result rows: ``frame,id,x,y,w,h,score,-1,-1,-1``.
Every malformed line raises :class:`MOTFormatError` naming file and line.
"""
from typing import Optional

import numpy as np

from ..utils.io import atomic_write

GT_COLUMNS = ('frame', 'id', 'x', 'y', 'w', 'h', 'conf', 'class',
              'visibility')


class MOTFormatError(ValueError):
    """A MOTChallenge text file has a malformed line."""


def read_mot_txt(path: str, min_columns: int = 6,
                 max_columns: Optional[int] = 10) -> np.ndarray:
    """Read a MOTChallenge text file into a float64 array (rows, 10).

    Missing trailing columns are filled with ``-1`` (conf, class, visibility
    default to 1, -1, -1 as in the MOTChallenge devkit: conf 1 means "count
    this box").

    Args:
        path: the file.
        min_columns: fewer columns on a line is an error.
        max_columns: more columns on a line is an error (None: no limit).

    Returns:
        np.ndarray: (R, 10) with columns frame, id, x, y, w, h, conf, class,
        visibility, unused.

    Raises:
        MOTFormatError: with ``path:line`` for wrong column counts, text where
            numbers belong, non-integer frame or id, frame < 1, or negative
            width/height.
    """
    rows = []
    with open(path, 'r') as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if not text:
                continue
            parts = [p.strip() for p in text.replace(' ', ',').split(',')
                     if p.strip() != '']
            where = f'{path}:{lineno}'
            if len(parts) < min_columns or (max_columns is not None
                                            and len(parts) > max_columns):
                raise MOTFormatError(
                    f'{where}: expected {min_columns}'
                    f'{"-" + str(max_columns) if max_columns else "+"} '
                    f'comma-separated columns, got {len(parts)}: {text!r}')
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                bad = next(p for p in parts if not _is_number(p))
                raise MOTFormatError(
                    f'{where}: {bad!r} is not a number: {text!r}') from None
            if not np.all(np.isfinite(vals)):
                raise MOTFormatError(f'{where}: non-finite value: {text!r}')
            frame, tid, w, h = vals[0], vals[1], vals[4], vals[5]
            if frame != int(frame) or frame < 1:
                raise MOTFormatError(
                    f'{where}: frame must be an integer >= 1, got {parts[0]}')
            if tid != int(tid):
                raise MOTFormatError(
                    f'{where}: id must be an integer, got {parts[1]}')
            if w < 0 or h < 0:
                raise MOTFormatError(
                    f'{where}: negative box size w={w:g} h={h:g}')
            defaults = [1.0, -1.0, -1.0, -1.0]
            full = vals[:10] + defaults[len(vals) - 6:] if len(vals) < 10 \
                else vals[:10]
            rows.append(full)
    if not rows:
        return np.zeros((0, 10), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_mot_txt(path: str, rows: np.ndarray, gt: bool = False) -> None:
    """Write rows atomically in MOTChallenge format.

    Args:
        path: output file.
        rows: (R, >=6) array: frame, id, x, y, w, h, then score (results) or
            conf, class, visibility (``gt=True``).
        gt: write 9 ground-truth columns instead of 10 result columns.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[-1]
                                                      if len(rows) else 6)
    with atomic_write(path) as f:
        for r in rows:
            frame, tid = int(r[0]), int(r[1])
            box = ','.join(f'{v:.2f}' for v in r[2:6])
            if gt:
                conf = int(r[6]) if len(r) > 6 else 1
                cls = int(r[7]) if len(r) > 7 else 1
                vis = r[8] if len(r) > 8 else 1.0
                f.write(f'{frame},{tid},{box},{conf},{cls},{vis:.3f}\n')
            else:
                score = r[6] if len(r) > 6 else 1.0
                f.write(f'{frame},{tid},{box},{score:.4f},-1,-1,-1\n')
