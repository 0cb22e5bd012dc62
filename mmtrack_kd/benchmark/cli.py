"""The command-line options that ``kd_benchmark.py`` and ``kd_search.py``
share, declared once so that both tools spell, default and explain them
the same way."""
import argparse

from .plan import family_names, preset_names


def add_shared_options(parser: argparse.ArgumentParser,
                       preset_default: str,
                       kd_decay_help: str = '', ema_help: str = '') -> None:
    """Add ``--preset``, ``--family``, ``--threads``, ``--jobs``,
    ``--loss-option``, ``--kd-decay``, ``--epochs``, ``--ema``,
    ``--student-size`` and ``--allow-stale`` to ``parser``.

    Args:
        parser: the tool's parser.
        preset_default: the tool's default preset.
        kd_decay_help: what the tool adds to ``--kd-decay``'s help (when
            it applies).
        ema_help: what the tool adds to ``--ema``'s help.
    """
    parser.add_argument('--preset', choices=sorted(preset_names()),
                        default=preset_default,
                        help=f'sizes, data and schedule (micro: tests only; '
                        f'default {preset_default})')
    parser.add_argument('--family', choices=family_names(),
                        default='cstrack',
                        help='tracker family: its teacher/student/KD '
                        'configs, the sizes and costs of its section of '
                        'presets.yaml, the methods that apply (default '
                        'cstrack)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per subprocess (default 1)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='trainings at once (default 2: one per core '
                        'of the 2-core reference machine)')
    parser.add_argument('--loss-option', nargs='+', default=[],
                        metavar='LOSS.ARG=VALUE',
                        help='set an argument of a fragment\'s losses, e.g. '
                        'feat.normalize=True, of its connectors, e.g. '
                        'feat.connector.detach_iters=120, or of its '
                        'recorders, e.g. "feat.recorder.source=\'backbone\'" '
                        '(a loss reading the backbone is then balanced on '
                        'the backbone; VALUE is a Python literal)')
    parser.add_argument('--kd-decay', nargs='+', default=None,
                        metavar='LOSS=END',
                        help='with the gradient balance: decay a loss '
                        'fragment linearly over the training to END times '
                        'its balanced scale (e.g. feat=0 id=0: hints early, '
                        'the task and the other losses late); '
                        'METHOD.LOSS=END for one method only' +
                        kd_decay_help)
    parser.add_argument('--epochs', type=int, default=None,
                        help="epochs of every student (default: the "
                        "preset's); the teacher keeps its own")
    parser.add_argument('--ema', type=float, default=None,
                        metavar='MOMENTUM',
                        help='score the exponential moving average of each '
                        "student's weights (mmengine's EMAHook with an "
                        'ExponentialMovingAverage of this momentum, the '
                        "new value's weight per iteration, e.g. 0.01); the "
                        'teacher is trained without it' + ema_help)
    parser.add_argument('--student-size', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='model overrides merged into the preset\'s '
                        'student (every plain and KD student), e.g. '
                        'backbone.base_channels=12 neck.in_channels=96 '
                        '(VALUE a Python literal): a larger or smaller '
                        'student of the same design')
    parser.add_argument('--allow-stale', action='store_true',
                        help='keep and use records made with other code, '
                        'config or data (noted in results.md) instead of '
                        'refusing them')
