"""What a benchmark record must match to be compared with the current run:
the data fingerprint, the hash of the full training config and the code
version; the stale-record check built on them.

- :func:`data_fingerprint`: SynthMOT's ``meta.json`` (generator version,
  preset, seed and knobs), the annotation files and every image (names and
  bytes). Hashing all bytes is cheap: about 0.1 s for the 1120 frames
  (~30 MB) of the ``full`` preset.
- :func:`config_hash`: sha1 of the dumped Config (every ``_base_`` merged)
  with the repository, run-folder and data paths replaced by placeholders,
  so that the same settings in another folder hash alike.
- :func:`code_version`: sha1 of the package's ``.py`` files (the benchmark's
  own reporting code left out) and the tools that train and test, plus the
  versions of torch, mmengine, mmcv and mmdet; the git commit and a dirty
  flag are stored beside it for information (absent without ``.git``).
"""
import functools
import hashlib
import json
import os
import os.path as osp
import subprocess
from typing import Dict, List, Optional, Sequence

from .plan import REPO_ROOT

DATA_SPLITS = ('train', 'val', 'test')
# modules of mmtrack_kd/benchmark that decide what is trained (configs,
# initial weights, the training command); reporting code is left out
BENCHMARK_TRAINING_MODULES = ('configs.py', 'init_state.py', 'runner.py')
TRAINING_TOOLS = ('train.py', 'test.py', 'extract_student.py')
LIBRARIES = ('torch', 'mmengine', 'mmcv', 'mmdet', 'numpy')


class StaleRecordsError(RuntimeError):
    """Records of other code, config or data than the current run."""


def data_fingerprint(data: str) -> str:
    """sha1 of a SynthMOT folder: ``meta.json`` (the generator's version,
    preset, seed and knobs; a placeholder when the folder has none), the
    three annotation files and every file under ``train/``, ``val/`` and
    ``test/`` (relative path and bytes, in sorted order).

    Raises:
        FileNotFoundError: an annotation file is missing (names it).
    """
    digest = hashlib.sha1()
    meta = osp.join(data, 'meta.json')
    if osp.isfile(meta):
        with open(meta, 'rb') as f:
            digest.update(b'meta\0' + f.read())
    else:
        digest.update(b'meta\0none')
    for split in DATA_SPLITS:
        with open(osp.join(data, 'annotations', f'{split}_cocoformat.json'),
                  'rb') as f:
            digest.update(f.read())
    for split in DATA_SPLITS:
        root = osp.join(data, split)
        files = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            files += [osp.join(folder, n) for n in names]
        for path in sorted(files):
            digest.update(osp.relpath(path, data).encode() + b'\0')
            with open(path, 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def normalise_paths(text: str, paths: Dict[str, Optional[str]]) -> str:
    """``text`` with every path of ``paths`` (placeholder -> absolute path)
    replaced by its placeholder, longest path first (the data folder may
    lie inside the run folder)."""
    pairs = sorted(((p.rstrip('/'), key) for key, p in paths.items() if p),
                   key=lambda x: -len(x[0]))
    for path, key in pairs:
        text = text.replace(path, key)
    return text


def config_hash(path: str, paths: Dict[str, Optional[str]]) -> str:
    """sha1 of the config file ``path`` as mmengine reads it (``_base_``
    merged), dumped as sorted JSON with ``paths`` normalised (see
    :func:`normalise_paths`; the repository root is always added as
    ``<repo>``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path).to_dict()
    text = json.dumps(cfg, sort_keys=True, default=repr)
    text = normalise_paths(text, dict(paths, **{'<repo>': REPO_ROOT}))
    return hashlib.sha1(text.encode()).hexdigest()


def _files_hash(files: Sequence[str], root: str) -> str:
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(osp.relpath(path, root).encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def package_files(root: str = REPO_ROOT) -> List[str]:
    """The ``.py`` files that decide what a benchmark run trains and scores:
    ``mmtrack_kd/**`` (of ``mmtrack_kd/benchmark`` only
    :data:`BENCHMARK_TRAINING_MODULES`) and :data:`TRAINING_TOOLS`."""
    pkg = osp.join(root, 'mmtrack_kd')
    bench = osp.join(pkg, 'benchmark')
    files = []
    for folder, dirs, names in os.walk(pkg):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in names:
            if not name.endswith('.py'):
                continue
            if folder == bench and name not in BENCHMARK_TRAINING_MODULES:
                continue
            files.append(osp.join(folder, name))
    files += [osp.join(root, 'tools', t) for t in TRAINING_TOOLS
              if osp.isfile(osp.join(root, 'tools', t))]
    return files


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', REPO_ROOT, *args],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def library_versions() -> Dict[str, str]:
    import importlib
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            out[name] = 'n/a'
    return out


def code_version(root: str = REPO_ROOT) -> dict:
    """The code a run trains with.

    Returns:
        dict: ``hash`` (sha1 of :func:`package_files` and the library
        versions: what records are compared by), ``libraries``, and, when
        ``root`` is a git checkout, ``git_commit`` and ``git_dirty``
        (uncommitted changes to tracked files), for information.
    """
    libs = library_versions()
    digest = hashlib.sha1(_files_hash(package_files(root), root).encode())
    digest.update(json.dumps(libs, sort_keys=True).encode())
    out = dict(hash=digest.hexdigest(), libraries=libs)
    if osp.exists(osp.join(root, '.git')):
        commit = _git('rev-parse', 'HEAD')
        status = _git('status', '--porcelain', '--untracked-files=no')
        if commit:
            out['git_commit'] = commit
            out['git_dirty'] = bool(status) if status is not None else None
    return out


def stale_reasons(rec: dict, config: Optional[str], code: str,
                  data: str) -> List[str]:
    """Why a record cannot be compared with the current run.

    Args:
        rec (dict): the record.
        config (str, optional): the config hash the current run would train
            it with (None: not checked).
        code (str): the current :func:`code_version` ``hash``.
        data (str): the current data fingerprint.

    Returns:
        list[str]: empty when the record is current.
    """
    out = []
    if config is not None and rec.get('config_hash') != config:
        out.append('config differs' if rec.get('config_hash') else
                   'no config hash (made before hashes were recorded)')
    rec_code = (rec.get('code_version') or {}).get('hash')
    if rec_code != code:
        out.append(f'code differs (recorded {rec_code[:10]}, current '
                   f'{code[:10]})' if rec_code else
                   'no code version (made before versions were recorded)')
    if rec.get('data_fingerprint') != data:
        out.append('data differs (data_fingerprint)')
    return out


def stale_message(stale: Sequence[dict]) -> str:
    """The refusal of :class:`StaleRecordsError`: one line per record."""
    lines = [f'{len(stale)} record(s) were made with other code, config or '
             'data than this run; rerun them (delete the record files) or '
             'pass --allow-stale to report them anyway:']
    lines += [f'  {s["record"]}: {"; ".join(s["reasons"])}' for s in stale]
    return '\n'.join(lines)
