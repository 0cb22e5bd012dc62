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
