"""State of one track of the JDE-family tracker (see :class:`JDETracker`)."""
from typing import Optional

import numpy as np
import torch


def as_numpy(value, dtype=None) -> np.ndarray:
    """A tensor's or an array's values as a CPU numpy array, of ``dtype``
    if given (bfloat16, which numpy lacks, read as float32)."""
    if isinstance(value, torch.Tensor):
        if (value.requires_grad or value.dtype == torch.bfloat16
                or value.device.type != 'cpu'):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                value = value.float()
        value = value.numpy()
    value = np.asarray(value)
    return value if dtype is None else value.astype(dtype, copy=False)


def _as_tensor(value):
    """A numpy array or scalar as a tensor (on its memory where it can);
    anything else as it is."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return torch.from_numpy(np.asarray(value))
    return value


class _TensorView:
    """An attribute kept as it is set (in ``_<name>``) and read as a
    tensor (:func:`_as_tensor`)."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = '_' + name

    def __get__(self, obj, owner=None):
        return self if obj is None else _as_tensor(getattr(obj, self.slot))

    def __set__(self, obj, value) -> None:
        setattr(obj, self.slot, value)


class _StackRow(_TensorView):
    """A track's Kalman mean, covariance or running embedding (``index``
    0, 1 or 2 of the tracker's stacks): row ``i`` of the stacks while the
    track holds its rows of them (``_rows`` is ``(stacks, i)``, set by
    the tracker after each frame), else the value last set (in
    ``_<name>``). Setting one detaches the track from the stacks first
    (its other two keep their rows' values). Read as a tensor when
    ``as_tensor``."""

    def __init__(self, index: int, as_tensor: bool = False) -> None:
        self.index = index
        self.as_tensor = as_tensor

    def raw(self, obj):
        """The value as kept (a row view of the stacks, or what was set)."""
        rows = obj._rows
        if rows is None:
            return getattr(obj, self.slot)
        return rows[0][self.index][rows[1]]

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = self.raw(obj)
        return _as_tensor(value) if self.as_tensor else value

    def __set__(self, obj, value) -> None:
        obj._detach()
        setattr(obj, self.slot, value)


def normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``F.normalize(x, dim=1)`` in numpy: each row over its L2 norm
    (at least ``eps``)."""
    norm = np.sqrt(np.einsum('ij,ij->i', x, x))
    return x / np.maximum(norm, eps)[:, None]


def smooth_embeds(old: np.ndarray, new: np.ndarray,
                  alpha: float) -> np.ndarray:
    """``normalize(alpha * old + (1 - alpha) * new)`` of M running
    embeddings ``old`` (M, D) and new ones (M, D), float32."""
    return normalize_rows(np.float32(alpha) * old +
                          np.float32(1.0 - alpha) * new)


# Life-cycle states of a track.
TENTATIVE = 'tentative'  # seen on one frame only, not yet output
TRACKED = 'tracked'  # confirmed and matched on the previous frame
LOST = 'lost'  # confirmed but missed on one or more recent frames


class JDETrack:
    """One tracked object: Kalman state, smoothed embedding and last detection.

    Plain state holder, not registered: :class:`JDETracker` creates and
    updates these. The Kalman filter itself is shared and owned by the
    tracker; this object only keeps the filter's mean and covariance.

    Args:
        bbox (Tensor | np.ndarray): Detection box (4,) x1y1x2y2 in image
            pixels.
        score (Tensor | np.generic): Detection score, 0-d.
        label (Tensor | np.generic): Class label, 0-d.
        embed (Tensor | np.ndarray): L2-normalised embedding (D,).
        (numpy values read back as tensors.)
        frame_id (int): Frame index the detection comes from.
        mean (np.ndarray): Kalman mean (8,) in xyah + velocities.
        covariance (np.ndarray): Kalman covariance (8, 8).
        confirmed (bool): Whether the track starts confirmed (on the first
            frame of a video) instead of tentative.
    """

    def __init__(self, bbox: torch.Tensor, score: torch.Tensor,
                 label: torch.Tensor, embed: torch.Tensor, frame_id: int,
                 mean: np.ndarray, covariance: np.ndarray,
                 confirmed: bool) -> None:
        self.bbox = bbox
        self.score = score
        self.label = label
        self.embed = embed
        self.frame_id = frame_id  # last frame with a matched detection
        self.mean = mean
        self.covariance = covariance
        self.state = TRACKED if confirmed else TENTATIVE
        # Public identity, given when the track is confirmed (-1 before).
        self.instance_id: int = -1

    # the tracker's stacks and this track's row of them (see _StackRow)
    _rows = None
    #: np.ndarray: Kalman mean (8,).
    mean = _StackRow(0)
    #: np.ndarray: Kalman covariance (8, 8).
    covariance = _StackRow(1)
    #: Tensor: the L2-normalised running embedding (D,).
    embed = _StackRow(2, as_tensor=True)

    def _detach(self) -> None:
        """Keep this track's rows of the stacks as its own values."""
        rows = self._rows
        if rows is not None:
            self._rows = None
            stacks, i = rows
            self._mean, self._covariance, self._embed = (stacks[0][i],
                                                         stacks[1][i],
                                                         stacks[2][i])

    def embed_values(self) -> np.ndarray:
        """The running embedding as float32 numpy (D,)."""
        return as_numpy(JDETrack.embed.raw(self), np.float32)

    @property
    def confirmed(self) -> bool:
        """bool: whether the track has been confirmed (tracked or lost)."""
        return self.state != TENTATIVE

    # The tracker keeps numpy values (its frame's work is in numpy): they
    # read as tensors on the same memory. A tensor set here is kept as it
    # is.
    #: Tensor: the last matched detection's box (4,) x1y1x2y2.
    bbox = _TensorView()
    #: Tensor: its score (0-d).
    score = _TensorView()
    #: Tensor: its label (0-d).
    label = _TensorView()

    def update_embed(self, embed: torch.Tensor, alpha: float) -> None:
        """Exponential moving average of the embedding, re-normalised.

        ``embed <- normalize(alpha * embed + (1 - alpha) * new)``
        (:func:`smooth_embeds`, as the tracker computes it for all its
        tracks at once).

        Args:
            embed (Tensor): New L2-normalised embedding (D,).
            alpha (float): Weight of the running embedding, in [0, 1].
        """
        self.embed = smooth_embeds(self.embed_values()[None],
                                   as_numpy(embed, np.float32)[None],
                                   alpha)[0]

    def record(self, bbox: torch.Tensor, score: torch.Tensor,
               label: torch.Tensor, frame_id: int,
               state: Optional[str] = TRACKED) -> None:
        """Store the detection matched on ``frame_id`` and set the state.

        Args:
            bbox (Tensor): Matched detection box (4,) x1y1x2y2.
            score (Tensor): Its score (0-d).
            label (Tensor): Its label (0-d).
            frame_id (int): Current frame index.
            state (str, optional): New state. Defaults to ``'tracked'``.
        """
        # the views' slots written directly: this runs for every matched
        # track on every frame
        self._bbox, self._score, self._label = bbox, score, label
        self.frame_id = frame_id
        self.state = state
