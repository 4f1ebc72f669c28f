"""Constant-velocity Kalman filter over boxes, in real time (seconds), vectorised over tracks.

State, one row per track: ``x = (cx, cy, a, h, vcx, vcy, va, vh)`` where ``(cx, cy)`` is the box
centre in pixels, ``a = w / h`` the aspect ratio, ``h`` the height in pixels, and the last four are
their rates of change **per second**. The measurement is ``z = (cx, cy, a, h)`` (``H = [I 0]``).
This is the SORT / ByteTrack motion model (Zhang et al., ECCV 2022, sec. 3) with one change: the
reference steps one frame per call, here every prediction takes the real elapsed time ``dt``, so a
dropped frame is a longer step instead of a silently shorter motion.

The filter object holds only constants; the state ``(mean, cov)`` goes in and out of every call,
so a whole batch of tracks is predicted or updated in one numpy call:

- ``mean``: (N, 8) float64, ``cov``: (N, 8, 8) float64, ``dt``: (N,) or scalar seconds.

Noise model (all standard deviations scale with the box height ``h``, as in the reference, so the
filter behaves the same for near and far people). The reference defines its noise *per frame*;
``frame_rate`` says which frame period that is. With ``T = 1 / frame_rate`` and ``k = dt / T``:

- prediction ``x <- F(dt) x``, ``P <- F(dt) P F(dt)^T + Q(dt)`` with ``F(dt) = [[I, dt I], [0, I]]``;
- process noise ``Q(dt) = k * diag(sp^2, sp^2, sa^2, sp^2, sv^2, sv^2, sav^2, sv^2)`` with
  ``sp = std_weight_position * h``, ``sv = std_weight_velocity * h / T`` (per second),
  ``sa = std_aspect``, ``sav = std_aspect_velocity / T``.

  Q grows **linearly** with ``dt``: each component receives independent white noise (a random walk
  on position and on velocity), whose variance adds up over time, so ``Q(a + b) = Q(a) + Q(b)``
  and a 5-frame gap gets the process variance of 5 frames. The pos-vel cross terms that the exact
  continuous-time integral would add are left out, as in the reference's diagonal Q; with that
  choice ``dt = T`` gives ``k = 1`` and the filter is exactly the reference per-frame filter up to
  the change of velocity units (per frame -> per second, factor ``frame_rate``). This is what lets
  the differential test match ``supervision``'s ByteTrack.
- measurement noise ``R = diag(rp^2, rp^2, std_aspect_measurement^2, rp^2)``,
  ``rp = std_weight_position * h``, with ``h`` from the predicted state;
- a new track starts at the measurement with zero velocity; position / height std
  ``initial_position_factor * sp``, their velocities ``initial_velocity_factor * sv``, aspect and
  aspect rate ``sa`` and ``sav`` unscaled (the reference's initial covariance).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BoxKalmanFilter", "xyxy_to_cxcyah", "cxcyah_to_xyxy"]


def xyxy_to_cxcyah(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) ``x1, y1, x2, y2`` -> (N, 4) float64 ``cx, cy, w / h, h``.

    The caller guarantees ``h > 0`` (ByteTrack drops zero-height boxes before they get here).
    """
    xyxy = np.asarray(xyxy, dtype=np.float64)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], axis=1)


def cxcyah_to_xyxy(cxcyah: np.ndarray) -> np.ndarray:
    """(N, >=4) ``cx, cy, a, h, ...`` -> (N, 4) float64 ``x1, y1, x2, y2`` (extra columns ignored)."""
    cxcyah = np.asarray(cxcyah, dtype=np.float64)
    h = cxcyah[:, 3]
    w = cxcyah[:, 2] * h
    cx, cy = cxcyah[:, 0], cxcyah[:, 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


class BoxKalmanFilter:
    """Matrices and noise levels of the box filter; state passed in and out (see module docstring).

    Args:
        frame_rate: frames per second at which the per-frame noise weights below are defined
            (ByteTrack's reference values are per frame). Velocities in the state are per second
            regardless. Must be > 0.
        std_weight_position: position / height noise per frame, as a fraction of the box height.
            Larger trusts the motion model less (follows detections more tightly).
        std_weight_velocity: velocity noise per frame, as a fraction of the box height per frame.
            Larger lets the velocity change faster (agile motion) at the cost of noisier prediction.
        std_aspect: aspect-ratio process noise per frame (the aspect ratio is nearly constant).
        std_aspect_velocity: aspect-ratio-rate process noise per frame.
        std_aspect_measurement: aspect-ratio measurement noise (detectors jitter box widths).
        initial_position_factor: a new track's position std is this many times the per-frame
            process std (it has seen one detection only).
        initial_velocity_factor: a new track's velocity std is this many times the per-frame
            velocity process std (its velocity is unknown, started at zero).

    Defaults are the reference values (1/20, 1/160, 1e-2, 1e-5, 1e-1, 2, 10).
    """

    ndim = 4

    def __init__(
        self,
        frame_rate: float = 30.0,
        std_weight_position: float = 1.0 / 20,
        std_weight_velocity: float = 1.0 / 160,
        std_aspect: float = 1e-2,
        std_aspect_velocity: float = 1e-5,
        std_aspect_measurement: float = 1e-1,
        initial_position_factor: float = 2.0,
        initial_velocity_factor: float = 10.0,
    ) -> None:
        for name, value in (
            ("frame_rate", frame_rate),
            ("std_weight_position", std_weight_position),
            ("std_weight_velocity", std_weight_velocity),
            ("std_aspect", std_aspect),
            ("std_aspect_velocity", std_aspect_velocity),
            ("std_aspect_measurement", std_aspect_measurement),
            ("initial_position_factor", initial_position_factor),
            ("initial_velocity_factor", initial_velocity_factor),
        ):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"BoxKalmanFilter: {name} must be a finite number > 0, got {value!r}")
        self.frame_rate = float(frame_rate)
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.std_aspect = float(std_aspect)
        self.std_aspect_velocity = float(std_aspect_velocity)
        self.std_aspect_measurement = float(std_aspect_measurement)
        self.initial_position_factor = float(initial_position_factor)
        self.initial_velocity_factor = float(initial_velocity_factor)

        # Per-frame process variance, velocities per second: var = h^2 * _q_per_h2 + _q_const.
        wp2, wv2 = self.std_weight_position**2, (self.std_weight_velocity * self.frame_rate) ** 2
        self._q_per_h2 = np.array([wp2, wp2, 0.0, wp2, wv2, wv2, 0.0, wv2])
        sa2, sav2 = self.std_aspect**2, (self.std_aspect_velocity * self.frame_rate) ** 2
        self._q_const = np.array([0.0, 0.0, sa2, 0.0, 0.0, 0.0, sav2, 0.0])
        # Measurement variance: var = h^2 * _r_per_h2 + _r_const.
        self._r_per_h2 = np.array([wp2, wp2, 0.0, wp2])
        self._r_const = np.array([0.0, 0.0, self.std_aspect_measurement**2, 0.0])

    def _process_var(self, h: np.ndarray) -> np.ndarray:
        """(N,) heights -> (N, 8) process-noise variances for one reference frame (velocities per second)."""
        return np.square(h)[:, None] * self._q_per_h2 + self._q_const

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start tracks from measurements.

        measurement: (N, 4) ``cx, cy, a, h``. Returns mean (N, 8) (zero velocity), cov (N, 8, 8).
        """
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, self.ndim)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        # The reference scales position / height stds by initial_position_factor and their
        # velocities by initial_velocity_factor, but starts the aspect ratio and its rate at the
        # unscaled process stds; keep that so dt = 1 frame reproduces it exactly.
        factor = np.array([self.initial_position_factor] * 4 + [self.initial_velocity_factor] * 4)
        factor[[2, 6]] = 1.0
        var = self._process_var(z[:, 3]) * np.square(factor)
        cov = np.zeros((len(z), 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = var
        return mean, cov

    def predict(
        self, mean: np.ndarray, cov: np.ndarray, dt: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance tracks by ``dt`` seconds.

        mean: (N, 8); cov: (N, 8, 8); dt: (N,) or scalar, seconds, >= 0.
        Returns new (mean (N, 8), cov (N, 8, 8)); inputs are not modified.
        """
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        n = len(mean)
        dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), (n,))
        if np.any(dt < 0) or not np.all(np.isfinite(dt)):
            raise ValueError(f"BoxKalmanFilter.predict: dt must be finite and >= 0 seconds, got {dt}")
        # F(dt) = [[I, dt I], [0, I]]: x <- x + dt * v.
        new_mean = mean.copy()
        new_mean[:, :4] += dt[:, None] * mean[:, 4:]
        # F P F^T by blocks, P = [[A, B], [B^T, C]] (cheaper than stacked 8x8 matmuls):
        # [[A + dt (B + B^T) + dt^2 C, B + dt C], [(B + dt C)^T, C]].
        d = dt[:, None, None]
        a, b, c = cov[:, :4, :4], cov[:, :4, 4:], cov[:, 4:, 4:]
        b_new = b + d * c
        new_cov = np.empty_like(cov)
        new_cov[:, :4, :4] = a + d * (b + b.transpose(0, 2, 1)) + d * d * c
        new_cov[:, :4, 4:] = b_new
        new_cov[:, 4:, :4] = b_new.transpose(0, 2, 1)
        new_cov[:, 4:, 4:] = c
        # Q(dt) = (dt / T) * Q(T), T = 1 / frame_rate: linear in elapsed time (module docstring).
        idx = np.arange(8)
        new_cov[:, idx, idx] += self._process_var(mean[:, 3]) * (dt * self.frame_rate)[:, None]
        return new_mean, new_cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State -> measurement space: returns (N, 4) mean and (N, 4, 4) innovation covariance H P H^T + R."""
        s = cov[:, :4, :4].copy()
        idx = np.arange(4)
        s[:, idx, idx] += np.square(mean[:, 3])[:, None] * self._r_per_h2 + self._r_const
        return mean[:, :4].copy(), s

    def update(
        self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct predicted tracks with their matched measurements.

        mean: (N, 8); cov: (N, 8, 8); measurement: (N, 4) ``cx, cy, a, h``.
        Returns new (mean (N, 8), cov (N, 8, 8)).
        """
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        z = np.asarray(measurement, dtype=np.float64).reshape(-1, self.ndim)
        if len(z) != len(mean):
            raise ValueError(f"BoxKalmanFilter.update: measurement has {len(z)} rows, mean has {len(mean)}")
        if len(z) == 0:
            return mean.copy(), cov.copy()
        z_pred, s = self.project(mean, cov)  # (N, 4), (N, 4, 4)
        pht = cov[:, :, :4]  # P H^T: (N, 8, 4)
        # K = P H^T S^-1; S is symmetric, so K^T = S^-1 (P H^T)^T.
        gain = np.linalg.solve(s, pht.transpose(0, 2, 1)).transpose(0, 2, 1)  # (N, 8, 4)
        innovation = z - z_pred  # (N, 4)
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = cov - gain @ s @ gain.transpose(0, 2, 1)
        return new_mean, new_cov
