"""Runner hooks."""
import time
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class TrackFPSHook(Hook):
    """Measure end-to-end tracking speed (model + tracker, batch 1) in test.

    The first ``num_warmup`` frames are not timed. The data loading time is
    excluded: the clock runs from ``before_test_iter`` to
    ``after_test_iter``, which wrap the model's ``test_step`` only.

    Args:
        num_warmup (int): frames skipped before timing. Defaults to 5.
    """
    priority = 'VERY_LOW'

    def __init__(self, num_warmup: int = 5) -> None:
        self.num_warmup = num_warmup
        self.fps: Optional[float] = None
        self._t0 = 0.0
        self._elapsed = 0.0
        self._frames = 0
        self._seen = 0

    def before_test_epoch(self, runner) -> None:
        self._elapsed, self._frames, self._seen = 0.0, 0, 0
        self.fps = None

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t0 = time.perf_counter()

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        dt = time.perf_counter() - self._t0
        self._seen += 1
        if self._seen > self.num_warmup:
            self._elapsed += dt
            self._frames += 1

    def after_test_epoch(self, runner, metrics=None) -> None:
        if self._frames and self._elapsed > 0:
            self.fps = self._frames / self._elapsed
            runner.logger.info(
                f'tracking speed: {self.fps:.2f} FPS over {self._frames} '
                'frames (model + tracker, batch 1)')
            if metrics is not None:
                metrics['FPS'] = round(self.fps, 3)


@HOOKS.register_module()
class DistillStopHook(Hook):
    """Stop distillation at an iteration or epoch (0-based): from then on
    the distiller skips the teacher and logs its losses as zeros.

    The hook sets ``distill_stopped`` on the model (a ``MOTDistiller``)
    before each training iteration and epoch, from the runner's counters,
    so a run resumed after the stop stays stopped (the counters are in the
    checkpoint); the flag is also written to the checkpoint's ``meta``.
    Stop points not given here are read from the model's
    ``distill_stop_iter``/``distill_stop_epoch``; with none, the hook does
    nothing (the KD configs always add it, so that those model keys work).
    Before training it also gives the distiller's ``loss_balance`` its
    ``decay_iters`` (the run's ``max_iters``) when a decay leaves it unset.

    Args:
        stop_iter (int, optional): First iteration without distillation.
        stop_epoch (int, optional): First epoch without distillation.
    """
    priority = 'LOW'

    def __init__(self, stop_iter: Optional[int] = None,
                 stop_epoch: Optional[int] = None) -> None:
        for key, value in (('stop_iter', stop_iter),
                           ('stop_epoch', stop_epoch)):
            if value is not None and (not isinstance(value, int)
                                      or value < 0):
                raise ValueError(f'DistillStopHook.{key}: expected an int '
                                 f'>= 0 or None, got {value!r}')
        self.stop_iter = stop_iter
        self.stop_epoch = stop_epoch

    @staticmethod
    def _distiller(runner):
        model = runner.model
        model = getattr(model, 'module', model)  # (MM)DistributedDataParallel
        if not hasattr(model, 'distill_stopped'):
            raise TypeError(
                f'custom_hooks: DistillStopHook needs a MOTDistiller model, '
                f'got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        if self.stop_iter is None:
            self.stop_iter = model.distill_stop_iter
        if self.stop_epoch is None:
            self.stop_epoch = model.distill_stop_epoch
        model.stop_hook_attached = True
        balance = getattr(model, 'loss_balance', None)
        if balance is not None and balance.decay and \
                balance.decay_iters is None:
            balance.decay_iters = int(runner.max_iters)
        self._update(runner)

    def _update(self, runner) -> None:
        model = self._distiller(runner)
        if (self.stop_iter is not None and runner.iter >= self.stop_iter) or \
                (self.stop_epoch is not None
                 and runner.epoch >= self.stop_epoch):
            model.distill_stopped = True

    def before_train_epoch(self, runner) -> None:
        self._update(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._update(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.stop_iter is None and self.stop_epoch is None:
            return
        checkpoint.setdefault('meta', {})['distill_stopped'] = bool(
            self._distiller(runner).distill_stopped)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint.get('meta', {}).get('distill_stopped'):
            self._distiller(runner).distill_stopped = True


@HOOKS.register_module()
class GradClipMonitorHook(Hook):
    """Log how often gradient clipping acts: the fraction of the last
    ``window`` training iterations whose gradient norm (before clipping)
    exceeded ``optim_wrapper.clip_grad.max_norm``.

    It reads the ``train/grad_norm`` that mmengine's ``OptimWrapper``
    writes when it clips by norm, and writes ``train/clipped_frac`` (in
    the training log and ``vis_data/scalars.json``). Without clipping by
    norm it does nothing.

    Args:
        window (int): iterations the fraction is taken over. Defaults
            to 50.
    """
    priority = 'BELOW_NORMAL'

    def __init__(self, window: int = 50) -> None:
        if not (isinstance(window, int) and window >= 1):
            raise ValueError(f'GradClipMonitorHook.window: expected an int '
                             f'>= 1, got {window!r}')
        self.window = window
        self._flags = []

    @staticmethod
    def max_norm(runner) -> Optional[float]:
        """The clip norm of the runner's optimizer wrapper, or None."""
        wrapper = getattr(runner, 'optim_wrapper', None)
        kwargs = getattr(wrapper, 'clip_grad_kwargs', None) or {}
        if getattr(wrapper, 'grad_name', None) != 'grad_norm':
            return None
        value = kwargs.get('max_norm')
        return float(value) if value is not None else None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        max_norm = self.max_norm(runner)
        hub = runner.message_hub
        if max_norm is None or 'train/grad_norm' not in hub.log_scalars:
            return
        norm = hub.get_scalar('train/grad_norm').current()
        self._flags.append(float(norm > max_norm))
        del self._flags[:-self.window]
        hub.update_scalar('train/clipped_frac',
                          sum(self._flags) / len(self._flags))
