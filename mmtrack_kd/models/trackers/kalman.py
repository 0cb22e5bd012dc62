"""mmdet's xyah ``KalmanFilter`` run on stacks of tracks at once.

Every function takes the states of ``T`` tracks stacked along the first
axis (means ``(T, 8)``, covariances ``(T, 8, 8)``) and does in a fixed
number of numpy calls what ``KalmanFilter`` does one track at a time:
no Python loop over the tracks. The linear algebra is the filter's own
(Cholesky factor of the projected covariance, then triangular solves):
the factor comes from one batched ``np.linalg.cholesky`` call and the
solves are substitutions over the (at most 4) rows of the measurement
space, each vectorised over all tracks and right-hand sides. When every
projected covariance is diagonal, as it always is for mmdet's filter (see
:func:`diagonal_factor`), the factor is the square root of the diagonal
and the solves are divisions: the same numbers with fewer calls. The
results equal the filter's to float rounding
(tests/models/test_tracker_batched.py).

The filter's parameters are read from the ``KalmanFilter`` instance
(``_motion_mat``, ``_std_weight_position``, ``_std_weight_velocity``);
NSA filters (``use_nsa=True``) are not covered (the tracker runs them one
track at a time).
"""
from typing import Optional, Tuple

import numpy as np

__all__ = [
    'batch_initiate', 'batch_predict', 'batch_project',
    'batch_project_factor', 'batch_update',
    'batch_gating_distance', 'lower_solve', 'cholesky_solve',
    'diagonal_factor'
]


def _noise_weights(kf, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """The noise's std per state entry as ``h * w + c``: the weights ``w``
    and constants ``c`` of the first ``size`` entries (8 for the process
    noise, 4 for the measurement noise), made once per filter and
    weights."""
    wp, wv = kf._std_weight_position, kf._std_weight_velocity
    key = (size, wp, wv)
    cached = _NOISE.get(key)
    if cached is None:
        if size == 8:
            cached = (np.array([wp, wp, 0., wp, wv, wv, 0., wv]),
                      np.array([0., 0., 1e-2, 0., 0., 0., 1e-5, 0.]))
        else:
            cached = (np.array([wp, wp, 0., wp]), np.array([0., 0., 1e-1,
                                                            0.]))
        for array in cached:
            array.setflags(write=False)
        _NOISE[key] = cached
    return cached


_NOISE: dict = {}


def _add_to_diagonal(cov: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``cov[:, i, i] += values[:, i]`` for C-contiguous (T, n, n)
    ``cov``, in place through a strided view of the diagonals (one
    operation, the same numbers as fancy indexing)."""
    n = cov.shape[-1]
    flat = cov.view()
    flat.shape = (len(cov), n * n)  # raises rather than copy
    flat[:, ::n + 1] += values
    return cov


def lower_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``chol @ x = rhs`` for lower-triangular ``chol``, batched.

    Forward substitution over the ``n`` rows; each row is one vectorised
    step over the batch and the right-hand sides.

    Args:
        chol (np.ndarray): Lower-triangular matrices (T, n, n).
        rhs (np.ndarray): Right-hand sides (T, n, m).

    Returns:
        np.ndarray: ``x`` (T, n, m).
    """
    n = chol.shape[-1]
    out = np.empty(np.broadcast_shapes(chol.shape[:-2], rhs.shape[:-2]) +
                   rhs.shape[-2:],
                   dtype=np.result_type(chol, rhs))
    for i in range(n):
        row = rhs[:, i]
        if i:
            row = row - (chol[:, i:i + 1, :i] @ out[:, :i])[:, 0]
        out[:, i] = row / chol[:, i, i, None]
    return out


def upper_solve_transposed(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``chol^T @ x = rhs`` for lower-triangular ``chol``, batched
    (back substitution; shapes as :func:`lower_solve`)."""
    n = chol.shape[-1]
    out = np.empty(np.broadcast_shapes(chol.shape[:-2], rhs.shape[:-2]) +
                   rhs.shape[-2:],
                   dtype=np.result_type(chol, rhs))
    for i in range(n - 1, -1, -1):
        row = rhs[:, i]
        if i < n - 1:
            # (chol^T)[i, j] = chol[j, i] for j > i
            row = row - (chol[:, None, i + 1:, i] @ out[:, i + 1:])[:, 0]
        out[:, i] = row / chol[:, i, i, None]
    return out


def cholesky_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``A @ x = rhs`` given the lower Cholesky factor ``chol`` of
    ``A`` (T, n, n), for ``rhs`` (T, n, m): what ``scipy.linalg.cho_solve``
    does for one matrix, for all at once."""
    return upper_solve_transposed(chol, lower_solve(chol, rhs))


def diagonal_factor(cov: np.ndarray) -> Optional[np.ndarray]:
    """The Cholesky factors' diagonals (T, n) of covariances (T, n, n)
    that are all diagonal, else None.

    mmdet's filter keeps the 4 (position, velocity) pairs apart: its
    initial covariance and noises are diagonal and its motion couples an
    entry only with its own velocity, so the projected covariance of its
    tracks is diagonal. Its Cholesky factor is then the square root of the
    diagonal (what a general factorisation gives, to the bit), and the
    substitutions are divisions.
    """
    diag = np.diagonal(cov, axis1=1, axis2=2)
    # nothing but a positive diagonal is nonzero
    if np.count_nonzero(cov) != diag.size or not np.all(diag > 0):
        return None
    return np.sqrt(diag)


def batch_initiate(kf, xyah: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``KalmanFilter.initiate`` of N measurements.

    Args:
        kf (KalmanFilter): mmdet's filter (its weights are read).
        xyah (np.ndarray): Measurements (N, 4) ``(cx, cy, a, h)``.

    Returns:
        tuple[np.ndarray, np.ndarray]: means (N, 8) (zero velocities) and
        diagonal covariances (N, 8, 8).
    """
    xyah = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    n = xyah.shape[0]
    h = xyah[:, 3]
    pos = 2 * kf._std_weight_position * h
    vel = 10 * kf._std_weight_velocity * h
    std = np.stack([
        pos, pos, np.full(n, 1e-2), pos, vel, vel, np.full(n, 1e-5), vel
    ], 1)
    mean = np.concatenate([xyah, np.zeros_like(xyah)], 1)
    cov = np.zeros((n, 8, 8))
    diag = np.arange(8)
    cov[:, diag, diag] = np.square(std)
    return mean, cov


def batch_predict(kf, mean: np.ndarray,
                  cov: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``KalmanFilter.predict`` of T tracks: ``F x`` and ``F P F^T + Q``.

    Args:
        kf (KalmanFilter): mmdet's filter.
        mean (np.ndarray): Means (T, 8).
        cov (np.ndarray): Covariances (T, 8, 8).

    Returns:
        tuple[np.ndarray, np.ndarray]: new arrays, the inputs untouched.
    """
    # the noise's std per entry, h times a weight or a constant, in one
    # broadcast (h * 0 + c is c, h * w + 0 is h * w: the same numbers)
    weights, consts = _noise_weights(kf, 8)
    std = mean[:, 3, None] * weights + consts
    motion = kf._motion_mat
    mean = mean @ motion.T
    cov = motion @ (cov @ motion.T)
    return mean, _add_to_diagonal(cov, np.square(std))


def batch_project(kf, mean: np.ndarray,
                  cov: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``KalmanFilter.project`` of T tracks: the first 4 state entries
    (the filter's update matrix) and their covariance plus the
    measurement noise. Returns means (T, 4) and covariances (T, 4, 4)."""
    weights, consts = _noise_weights(kf, 4)
    std = mean[:, 3, None] * weights + consts
    proj_cov = cov[:, :4, :4].copy()
    return mean[:, :4], _add_to_diagonal(proj_cov, np.square(std))


def batch_project_factor(kf, mean: np.ndarray, cov: np.ndarray
                         ) -> Tuple[np.ndarray, np.ndarray,
                                    Optional[np.ndarray]]:
    """:func:`batch_project` and the :func:`diagonal_factor` of the
    projected covariances: what :func:`batch_update` and
    :func:`batch_gating_distance` compute first, made once for tracks that
    are gated and corrected on one frame (pass rows of it as their
    ``projected``)."""
    proj_mean, proj_cov = batch_project(kf, mean, cov)
    return proj_mean, proj_cov, diagonal_factor(proj_cov)


def batch_update(kf, mean: np.ndarray, cov: np.ndarray,
                 meas: np.ndarray,
                 projected: Optional[tuple] = None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """``KalmanFilter.update`` of T tracks, each with its measurement.

    ``S = H P H^T + R``, gain ``K = P H^T S^-1`` (from the Cholesky factor
    of ``S``), ``x + K (z - H x)`` and ``P - K S K^T``.

    Args:
        kf (KalmanFilter): mmdet's filter.
        mean (np.ndarray): Predicted means (T, 8).
        cov (np.ndarray): Predicted covariances (T, 8, 8).
        meas (np.ndarray): Measurements (T, 4) ``(cx, cy, a, h)``.
        projected (tuple, optional): :func:`batch_project_factor` of
            ``mean`` and ``cov``, if already made.

    Returns:
        tuple[np.ndarray, np.ndarray]: corrected means (T, 8) and
        covariances (T, 8, 8).
    """
    if projected is None:
        projected = batch_project_factor(kf, mean, cov)
    proj_mean, proj_cov, diag = projected
    # K^T = S^-1 (P H^T)^T = S^-1 P[:4, :] (P symmetric)
    if diag is not None:
        gain_t = cov[:, :4, :] / diag[:, :, None] / diag[:, :, None]
    else:
        chol = np.linalg.cholesky(proj_cov)
        gain_t = cholesky_solve(chol, cov[:, :4, :])  # (T, 4, 8)
    innovation = meas - proj_mean  # (T, 4)
    mean = mean + np.einsum('tn,tnm->tm', innovation, gain_t)
    gain = gain_t.transpose(0, 2, 1)
    cov = cov - gain @ (proj_cov @ gain_t)
    return mean, cov


def batch_gating_distance(kf,
                          mean: np.ndarray,
                          cov: np.ndarray,
                          meas: np.ndarray,
                          center_only: bool = False,
                          projected: Optional[tuple] = None) -> np.ndarray:
    """``KalmanFilter.gating_distance`` of T tracks to K measurements.

    Args:
        kf (KalmanFilter): mmdet's filter.
        mean (np.ndarray): Means (T, 8) (None when ``projected`` is given).
        cov (np.ndarray): Covariances (T, 8, 8) (None when ``projected``
            is given).
        meas (np.ndarray): Measurements (K, 4).
        center_only (bool): Distances on the centres only (2 dof).
        projected (tuple, optional): :func:`batch_project_factor` of
            ``mean`` and ``cov``, if already made.

    Returns:
        np.ndarray: Squared Mahalanobis distances (T, K).
    """
    if projected is None:
        projected = batch_project_factor(kf, mean, cov)
    proj_mean, proj_cov, diag = projected
    meas = np.asarray(meas, dtype=np.float64).reshape(-1, 4)
    if center_only:
        proj_mean, proj_cov = proj_mean[:, :2], proj_cov[:, :2, :2]
        meas = meas[:, :2]
        # the factor of a diagonal matrix's block is that block of its
        # factor; the block alone may be diagonal when the whole is not
        diag = diagonal_factor(proj_cov) if diag is None else diag[:, :2]
    d = meas.T[None] - proj_mean[:, :, None]  # (T, n, K)
    if diag is not None:
        z = d / diag[:, :, None]
    else:
        z = lower_solve(np.linalg.cholesky(proj_cov), d)  # (T, n, n)
    return np.einsum('tnk,tnk->tk', z, z)
