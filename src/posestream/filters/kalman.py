"""Causal Kalman smoothing of keypoints: constant velocity per coordinate, on filterpy.

Every element of the input (e.g. each x and each y of ``(K, 2)`` keypoints) is an independent
constant-velocity model with state ``[p, v]`` (position, velocity per second). The ``M`` elements are
stacked into one state vector ``x = [p0, v0, p1, v1, ...]`` (2M,) with block-diagonal ``P, F, Q`` so
one ``filterpy.kalman.predict`` / ``update`` call handles a whole person. Textbook names::

    F_i = [[1, dt_i], [0, 1]]                         dt_i = t - (time of element i's last update)
    Q_i = Q_discrete_white_noise(2, dt_i, process_var) = process_var * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]
    x, P = predict(x, P, F, Q)                         x = F x,  P = F P F' + Q
    R_i = r0 / max(score_i, score_eps)^2               measurement variance (px^2) from the keypoint score
    x, P = update(x, P, z, R, H)                       H picks the positions of the accepted elements

Q is filterpy's *discrete* white-noise model: a piecewise-constant acceleration per step with
variance ``process_var`` (units of x per s^2, squared). Because blocks never couple, an element
left out of ``H`` is exactly unaffected by the update.

Score gating (same contract as the one-euro filter). An element whose score is below
``score_threshold`` or whose measurement is not finite is held: its ``[p, v]``, its covariance block
and its last-update time stay as they were (``F_i = I``, ``Q_i = 0``, not in ``H``) and the output is
the held position; it is not extrapolated, so a long occlusion cannot drift away. When a good
sample arrives again the predict spans the whole gap (``dt_i`` = gap), which also inflates ``P`` so
that sample is trusted more. Above the threshold the score still matters through ``R``: a 0.5
score means 4x the variance of a 1.0 score. An element never seen with a good sample passes its raw
measurement through. A sample with ``dt_i <= 0`` (duplicated or out-of-order timestamp) is held too.
The first good sample initialises ``p = z``, ``v = 0``, ``P = diag(R_i, init_velocity_var)``.

Cost: the block-diagonal matrices are (2M, 2M), 68x68 for 17 keypoints: about 0.6 ms per person
per frame on a busy shared CPU (the one-euro filter: about 0.09 ms); fine for a few people. A
batched 2x2 formulation would be cheaper but would no longer go through filterpy.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import predict, update

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
        self._q_unit = Q_discrete_white_noise(dim=2, dt=1.0, var=self.process_var)
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample passes through."""
        self._shape: tuple[int, ...] | None = None
        self._x = np.zeros(0)  # (2M,) [p0, v0, p1, v1, ...]
        self._P = np.zeros((0, 0))  # (2M, 2M) block diagonal
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
        self._x[2 * born], self._x[2 * born + 1] = z[born], 0.0
        self._P[2 * born, 2 * born], self._P[2 * born + 1, 2 * born + 1] = r[born], self.init_velocity_var
        self._t_prev[born] = t

        dt = t - self._t_prev  # (M,)
        step = good & self._ready & (dt > 0)
        if np.any(good & self._ready & (dt <= 0)):
            logger.debug("KalmanSmoother: non-increasing timestamp %.6f, holding those elements", t)
        self._ready[born] = True

        idx = np.flatnonzero(step)
        if idx.size:
            self._x, self._P = predict(self._x, self._P, *self._transition(idx, dt[idx]))
            H = np.zeros((idx.size, self._x.size))
            H[np.arange(idx.size), 2 * idx] = 1.0
            self._x, self._P = update(self._x, self._P, z[idx], np.diag(r[idx]), H)
            self._t_prev[idx] = t

        out = np.where(self._ready, self._x[0::2], z)
        return out.reshape(x.shape)

    def _start(self, shape: tuple[int, ...]) -> None:
        m = int(np.prod(shape))
        self._shape = shape
        self._x = np.zeros(2 * m)
        self._P = np.zeros((2 * m, 2 * m))
        self._t_prev = np.zeros(m)
        self._ready = np.zeros(m, dtype=bool)

    def _transition(self, idx: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block-diagonal F, Q (2M, 2M): element ``idx[j]`` steps by ``dt[j]``, all others stay (I, 0)."""
        n = self._x.size
        F = np.eye(n)
        F[2 * idx, 2 * idx + 1] = dt
        Q = np.zeros((n, n))
        for a in range(2):
            for b in range(2):  # Q(dt)[a, b] = Q(1)[a, b] * dt^(4 - a - b), one vectorised assignment each
                Q[2 * idx + a, 2 * idx + b] = self._q_unit[a, b] * dt ** (4 - a - b)
        return F, Q
