"""State of one track of the JDE-family tracker (see :class:`JDETracker`)."""
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

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
        bbox (Tensor): Detection box (4,) x1y1x2y2 in image pixels.
        score (Tensor): Detection score, a 0-d tensor.
        label (Tensor): Class label, a 0-d tensor.
        embed (Tensor): L2-normalised embedding (D,).
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

    @property
    def confirmed(self) -> bool:
        """bool: whether the track has been confirmed (tracked or lost)."""
        return self.state != TENTATIVE

    def update_embed(self, embed: torch.Tensor, alpha: float) -> None:
        """Exponential moving average of the embedding, re-normalised.

        ``embed <- normalize(alpha * embed + (1 - alpha) * new)``.

        Args:
            embed (Tensor): New L2-normalised embedding (D,).
            alpha (float): Weight of the running embedding, in [0, 1].
        """
        smoothed = alpha * self.embed + (1.0 - alpha) * embed
        self.embed = F.normalize(smoothed, dim=0)

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
        self.bbox = bbox
        self.score = score
        self.label = label
        self.frame_id = frame_id
        self.state = state
