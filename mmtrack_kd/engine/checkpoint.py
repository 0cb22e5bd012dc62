"""Atomic checkpoint files: a crash while saving never leaves a partial file
under a checkpoint's name nor damages the checkpoint saved before.

mmengine writes a checkpoint with ``open(path, 'wb')`` (through
``LocalBackend.put``) and ``last_checkpoint`` with ``open(path, 'w')``: both
truncate the file first, so a crash (kill, full disk, power loss) during the
write leaves a truncated file under the final name; and ``CheckpointHook``
deletes the oldest kept checkpoint *before* writing the new one.

Design (the narrowest places that see every checkpoint write):

- :func:`save_atomically` runs any ``save_checkpoint(out_dir, filename,
  ...)`` callable under a hidden temporary name in the same folder, fsyncs
  it and ``os.replace``-s it onto the final name (atomic on POSIX and
  Windows within one file system), then fsyncs the folder.
- :class:`AtomicRunner` (``runner_type='AtomicRunner'``) routes every
  ``Runner.save_checkpoint`` through it: the periodic, best and any
  user-requested checkpoint.
- :class:`AtomicCheckpointHook` (``default_hooks.checkpoint.type``) is a
  drop-in ``CheckpointHook`` that saves atomically with any runner, writes
  ``last_checkpoint`` atomically, and deletes the checkpoint that falls out
  of ``max_keep_ckpts`` only after the new one and ``last_checkpoint`` are in
  place (so, briefly, ``max_keep_ckpts + 1`` files are on disk).

Remote back-ends (paths with a ``scheme://`` prefix, or ``backend_args``
naming another back-end) are passed through unchanged.
"""
import contextlib
import os
import os.path as osp
from typing import Callable, Optional

from mmdet.registry import HOOKS, RUNNERS
from mmengine.dist import is_main_process, master_only
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmtrack_kd.utils.io import atomic_write


def is_local_path(path: str, backend_args: Optional[dict] = None) -> bool:
    """Whether ``path`` is written by mmengine's local file back-end.

    Args:
        path (str): a folder or file path.
        backend_args (dict, optional): mmengine ``backend_args``; a
            ``backend`` other than ``'local'`` means not local.

    Returns:
        bool
    """
    if backend_args and backend_args.get('backend', 'local') != 'local':
        return False
    return '://' not in str(path)


def _fsync_path(path: str) -> None:
    """Flush a file's (or a folder's) data to disk; a no-op where the OS does
    not allow opening folders (Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_atomically(save_fn: Callable[..., None], out_dir: str,
                    filename: str, **kwargs) -> None:
    """Call ``save_fn(out_dir, tmp_name, **kwargs)`` and move the file it
    wrote onto ``out_dir/filename`` in one ``os.replace``.

    On any exception the temporary file is removed and a previous
    ``out_dir/filename`` is left untouched. Non-main ranks (where mmengine's
    ``save_checkpoint`` writes nothing) and remote paths call ``save_fn``
    directly.

    Args:
        save_fn (callable): ``Runner.save_checkpoint``-like function taking
            ``(out_dir, filename, **kwargs)``.
        out_dir (str): folder of the checkpoint.
        filename (str): final file name, relative to ``out_dir``.
        **kwargs: passed to ``save_fn`` (``backend_args`` is read to decide
            whether the path is local).
    """
    if not is_main_process() or not is_local_path(
            out_dir, kwargs.get('backend_args')):
        save_fn(out_dir, filename, **kwargs)
        return
    sub, base = osp.split(filename)
    tmp_name = osp.join(sub, f'.{base}.{os.getpid()}.tmp')
    final = osp.join(out_dir, filename)
    tmp = osp.join(out_dir, tmp_name)
    try:
        save_fn(out_dir, tmp_name, **kwargs)
        if not osp.isfile(tmp):
            raise RuntimeError(
                f'saving checkpoint {final}: the save function wrote no file '
                f'at the temporary path {tmp}')
        _fsync_path(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_path(osp.dirname(osp.abspath(final)))


@RUNNERS.register_module()
class AtomicRunner(Runner):
    """mmengine ``Runner`` whose ``save_checkpoint`` is atomic (see
    :func:`save_atomically`); everything else is the stock runner.

    Select it with ``runner_type = 'AtomicRunner'`` in a config (built by
    ``RUNNERS.build(cfg)`` in the ``mmdet`` scope).
    """

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """Same arguments as ``mmengine.runner.Runner.save_checkpoint``."""
        save_atomically(
            super().save_checkpoint,
            out_dir,
            filename,
            file_client_args=file_client_args,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=backend_args)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with crash-safe files; same arguments.

    - the checkpoint is written under a temporary name and renamed (also
      with the stock ``Runner``);
    - ``work_dir/last_checkpoint`` is replaced atomically, after the
      checkpoint it names is complete;
    - the checkpoint dropped by ``max_keep_ckpts`` is deleted last, so a
      crash at any point leaves the previous complete checkpoint and a
      ``last_checkpoint`` that names a complete file.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2))
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not is_local_path(self.out_dir, self.backend_args):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            # saved inside the checkpoint: the list already names this step
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        save_kwargs = dict(
            file_client_args=self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if isinstance(runner, AtomicRunner):
            runner.save_checkpoint(self.out_dir, filename, **save_kwargs)
        else:
            save_atomically(runner.save_checkpoint, self.out_dir, filename,
                            **save_kwargs)
        if not is_main_process():
            return
        with atomic_write(osp.join(runner.work_dir, 'last_checkpoint')) as f:
            f.write(self.last_ckpt)
        if stale is not None and stale != step:
            path = osp.join(self.out_dir, self.filename_tmpl.format(stale))
            if osp.isfile(path):
                os.remove(path)
            elif osp.isdir(path):  # deepspeed saves folders
                self.file_backend.rmtree(path)
