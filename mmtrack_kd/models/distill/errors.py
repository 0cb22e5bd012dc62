"""The error raised when a distillation config is wrong."""


class DistillConfigError(ValueError):
    """A distillation config key is wrong; the message names the key.

    Raised at build time by :class:`MOTDistiller`, its recorders, connectors
    and loss-forward mappings, so a bad config fails before training starts.
    """
