"""Causal Kalman smoothing of keypoints: constant velocity per coordinate, one 2x2 filter per element.

Every element of the input (e.g. each x and each y of ``(K, 2)`` keypoints) is an independent
constant-velocity model with state ``[p, v]`` (position, velocity per second). The ``M`` elements
are held as a batch: ``x`` (M, 2), ``P`` (M, 2, 2), and each step is the textbook filter written
for all elements at once, so the cost grows linearly with M (a whole-body person, 133 keypoints,
costs about 8x a COCO-17 one, not 500x as a (2M, 2M) joint filter would)::

    F_i = [[1, dt_i], [0, 1]]                         dt_i = t - (time of element i's last update)
    Q_i = Q_discrete_white_noise(2, dt_i, process_var) = process_var * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]
    x_i = F_i x_i,  P_i = F_i P_i F_i' + Q_i          (predict)
    R_i = r0 / max(score_i, score_eps)^2               measurement variance (px^2) from the keypoint score
    H = [1, 0],  S_i = H P_i H' + R_i,  K_i = P_i H' / S_i
    x_i = x_i + K_i (z_i - H x_i),  P_i = (I - K_i H) P_i (I - K_i H)' + K_i R_i K_i'   (update, Joseph form)

These are exactly filterpy's ``predict`` / ``update`` (``Q`` from filterpy's
``Q_discrete_white_noise``; the unit test runs filterpy's ``KalmanFilter`` beside it). filterpy
works on one state vector, so running it per element would be a Python loop of M small matrix
calls, and stacking the elements into one (2M, 2M) block-diagonal system (what this module did
before) costs O(M^3) per update: 17 keypoints took ~0.6 ms per person, 133 would take ~100x that.
Q is the *discrete* white-noise model: a piecewise-constant acceleration per step with variance
``process_var`` (units of x per s^2, squared).

Score gating (same contract as the one-euro filter). An element whose score is below
``score_threshold`` or whose measurement is not finite is held: its ``[p, v]``, its covariance and
its last-update time stay as they were and the output is the held position; it is not
extrapolated, so a long occlusion cannot drift away. When a good sample arrives again the predict
spans the whole gap (``dt_i`` = gap), which also inflates ``P`` so that sample is trusted more.
Above the threshold the score still matters through ``R``: a 0.5 score means 4x the variance of a
1.0 score. An element never seen with a good sample passes its raw measurement through. A sample
with ``dt_i <= 0`` (duplicated or out-of-order timestamp) is held too. The first good sample
initialises ``p = z``, ``v = 0``, ``P = diag(R_i, init_velocity_var)``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from posestream.filters.one_euro import expand_prefix

__all__ = ["KalmanSmoother"]

logger = logging.getLogger(__name__)

# Defaults chosen by benchmarks/smoothing_tuning.py (30 fps keypoint in pixels, jitter sigma 2 px, a
# 50 px step): least lag on motion among settings removing >= 60% of the frame-to-frame jitter and
# reaching 90% of the step within 3 frames. Measured: 65% less jitter, step reached in 2 frames with
# 8 px overshoot (a constant-velocity model overshoots a step). r0 is fixed at the jitter variance.
DEFAULT_PROCESS_VAR = 1.0e5  # (px/s^2)^2, acceleration variance
DEFAULT_R0 = 4.0  # px^2, measurement variance at score 1 (about the jitter of a good keypoint)
DEFAULT_INIT_VELOCITY_VAR = 1.0e4  # (px/s)^2, velocity uncertainty of a new element


class KalmanSmoother:
    """Constant-velocity Kalman filter over an array of any fixed shape, e.g. ``(K, 2)`` keypoints.

    Args:
        process_var: variance of the white-noise acceleration, (units/s^2)^2. Higher = follows fast
            changes sooner (less lag), smooths less (more jitter).
        r0: measurement variance (units^2) at score 1; ``R = r0 / max(score, score_eps)^2``. Higher =
            trusts measurements less (smoother, more lag). Only the ratio to ``process_var`` matters for
            the steady state.
        score_threshold: elements with a score below this are held (see module docstring).
        score_eps: floor on the score in R, so a score of 0 cannot give an infinite R.
        init_velocity_var: initial velocity variance of an element, (units/s)^2.
    """

    def __init__(
        self,
        process_var: float = DEFAULT_PROCESS_VAR,
        r0: float = DEFAULT_R0,
        score_threshold: float = 0.3,
        score_eps: float = 0.05,
        init_velocity_var: float = DEFAULT_INIT_VELOCITY_VAR,
    ) -> None:
        for name, value in (("process_var", process_var), ("r0", r0), ("score_eps", score_eps),
                            ("init_velocity_var", init_velocity_var)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"KalmanSmoother: {name} must be a finite number > 0, got {value}")
        if not math.isfinite(score_threshold):
            raise ValueError(f"KalmanSmoother: score_threshold must be finite, got {score_threshold}")
        self.process_var = float(process_var)
        self.r0 = float(r0)
        self.score_threshold = float(score_threshold)
        self.score_eps = float(score_eps)
        self.init_velocity_var = float(init_velocity_var)
        # filterpy's Q for dt = 1: var * [[1/4, 1/2], [1/2, 1]]; scaled per element by powers of dt below
        from filterpy.common import Q_discrete_white_noise  # here: filterpy imports scipy.stats (~1.5 s)

        self._q_unit = Q_discrete_white_noise(dim=2, dt=1.0, var=self.process_var)
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample passes through."""
        self._shape: tuple[int, ...] | None = None
        self._x = np.zeros((0, 2))  # (M, 2) [p, v] per element
        self._P = np.zeros((0, 2, 2))  # (M, 2, 2) covariance per element
        self._t_prev = np.zeros(0)  # (M,) time of each element's last update
        self._ready = np.zeros(0, dtype=bool)  # (M,) element has had a good sample

    def __call__(self, x: np.ndarray, t: float, score: np.ndarray | None = None) -> np.ndarray:
        """Filter one sample.

        Args:
            x: (*S,) measurement; the shape must stay the same between calls (``reset()`` to change it).
            t: timestamp of the sample in seconds.
            score: (*S,) or a prefix of it, e.g. (K,) for x (K, 2), in [0, 1]; None = all 1.

        Returns:
            (*S,) float64 filtered positions.
        """
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"KalmanSmoother: t must be a finite number of seconds, got {t}")
        s = expand_prefix(score, x.shape, "KalmanSmoother score")
        if self._shape is None:
            self._start(x.shape)
        elif x.shape != self._shape:
            raise ValueError(f"KalmanSmoother: x has shape {x.shape}, the filter holds {self._shape}; "
                             "call reset() to change shape")

        z = x.reshape(-1)  # (M,)
        s = np.ones_like(z) if s is None else s.reshape(-1)
        good = np.isfinite(z) & (s >= self.score_threshold)
        r = self.r0 / np.maximum(s, self.score_eps) ** 2  # (M,) measurement variances

        # first good sample of an element: p = z, v = 0
        born = np.flatnonzero(good & ~self._ready)
        self._x[born] = np.stack([z[born], np.zeros(born.size)], axis=1)
        self._P[born] = 0.0
        self._P[born, 0, 0], self._P[born, 1, 1] = r[born], self.init_velocity_var
        self._t_prev[born] = t

        dt = t - self._t_prev  # (M,)
        step = good & self._ready & (dt > 0)
        if np.any(good & self._ready & (dt <= 0)):
            logger.debug("KalmanSmoother: non-increasing timestamp %.6f, holding those elements", t)
        self._ready[born] = True

        idx = np.flatnonzero(step)
        if idx.size:
            x_i, P_i = self._predict(self._x[idx], self._P[idx], dt[idx])
            self._x[idx], self._P[idx] = self._update(x_i, P_i, z[idx], r[idx])
            self._t_prev[idx] = t

        out = np.where(self._ready, self._x[:, 0], z)
        return out.reshape(x.shape)

    def _start(self, shape: tuple[int, ...]) -> None:
        m = int(np.prod(shape))
        self._shape = shape
        self._x = np.zeros((m, 2))
        self._P = np.zeros((m, 2, 2))
        self._t_prev = np.zeros(m)
        self._ready = np.zeros(m, dtype=bool)

    def _predict(self, x: np.ndarray, P: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (n, 2), P (n, 2, 2) stepped by dt (n,): ``x = F x``, ``P = F P F' + Q``."""
        F = np.zeros((dt.size, 2, 2))
        F[:, 0, 0] = F[:, 1, 1] = 1.0
        F[:, 0, 1] = dt
        # Q(dt)[a, b] = Q(1)[a, b] * dt^(4 - a - b): filterpy's discrete white noise at any dt
        powers = 4 - np.add.outer(np.arange(2), np.arange(2))  # [[4, 3], [3, 2]]
        Q = self._q_unit[None] * dt[:, None, None] ** powers[None]
        x = np.einsum("nab,nb->na", F, x)
        P = F @ P @ F.transpose(0, 2, 1) + Q
        return x, P

    @staticmethod
    def _update(x: np.ndarray, P: np.ndarray, z: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement of the position (H = [1, 0]) with variance r: filterpy's update, Joseph form."""
        S = P[:, 0, 0] + r  # (n,) H P H' + R
        K = P[:, :, 0] / S[:, None]  # (n, 2) P H' S^-1
        x = x + K * (z - x[:, 0])[:, None]
        I_KH = np.broadcast_to(np.eye(2), P.shape).copy()
        I_KH[:, :, 0] -= K  # I - K H, with H selecting column 0
        P = I_KH @ P @ I_KH.transpose(0, 2, 1) + r[:, None, None] * K[:, :, None] * K[:, None, :]
        return x, P
