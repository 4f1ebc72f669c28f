"""One-euro filter (Casiez, Roussel, Vogel, "1 Euro Filter", CHI 2012), vectorised and timestamp-based.

The filter is a first-order low-pass whose cutoff rises with speed: slow motion is smoothed hard
(low jitter), fast motion gets a high cutoff (low lag). Per element and per sample, with ``Te`` the
seconds since that element's previous accepted sample (taken from the timestamps, not one step per
call, so dropped frames are handled)::

    alpha(Te, fc) = 1 / (1 + tau / Te),   tau = 1 / (2 pi fc)
    dx      = (x - x_hat_prev) / Te                             # raw speed, units of x per second
    dx_hat  = alpha(Te, d_cutoff) * dx + (1 - alpha(Te, d_cutoff)) * dx_hat_prev
    fc      = min_cutoff + beta * |dx_hat|                     # Hz
    x_hat   = alpha(Te, fc) * x + (1 - alpha(Te, fc)) * x_hat_prev

The first accepted sample of an element passes through unchanged (``x_hat = x``, ``dx_hat = 0``).

Confidence gating. ``weight`` (e.g. the keypoint score) has the shape of ``x`` or a prefix of it
(``(K,)`` for ``x`` of shape ``(K, 2)``). An element is *rejected* when its weight is below
``score_threshold`` or its measurement is not finite. A rejected element is held: ``x_hat``,
``dx_hat`` and its last-sample time stay as they were, and the output is the held ``x_hat``. When a
good sample arrives again, ``Te`` spans the whole gap, so alpha is larger and the estimate catches
up quickly instead of creeping. An element that has never had a good sample has no estimate: its
raw measurement is passed through (the caller still has the low score to judge it by).

Timestamps. ``t`` is seconds (``pts`` or ``time.monotonic()``). A sample whose ``Te <= 0`` (same or
earlier timestamp than the element's last accepted one: a duplicated or out-of-order frame) is
treated like a rejected one: held, state untouched. That is also the limit of the equations
(alpha -> 0 as Te -> 0).

Units. ``beta`` multiplies a speed in units of ``x`` per second, so it depends on the pixel scale:
for keypoints in source-frame pixels, ``beta = 0.01`` adds 1 Hz of cutoff per 100 px/s.
"""

from __future__ import annotations

import logging
import math

import numpy as np

__all__ = ["OneEuroFilter", "smoothing_factor", "expand_prefix"]

logger = logging.getLogger(__name__)

# Defaults chosen by benchmarks/smoothing_tuning.py (30 fps keypoint in pixels, jitter sigma 2 px, a
# 50 px step): least lag on motion among settings removing >= 60% of the frame-to-frame jitter at rest
# and moving and reaching 90% of the step within 3 frames. Measured: 72% less jitter at rest, 61%
# moving, step reached in 2 frames. Re-run it (writes reports/smoothing_tuning.md) after changing the filter.
DEFAULT_MIN_CUTOFF = 2.5  # Hz
DEFAULT_BETA = 0.01  # Hz per (px/s)
DEFAULT_D_CUTOFF = 1.0  # Hz


def smoothing_factor(te: np.ndarray | float, cutoff: np.ndarray | float) -> np.ndarray:
    """alpha = 1 / (1 + tau / Te) with tau = 1 / (2 pi cutoff). ``te`` seconds (> 0), ``cutoff`` Hz (> 0)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / np.asarray(te, dtype=np.float64))


def expand_prefix(values: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    """``values`` whose shape is a prefix of ``shape``, broadcast to ``shape`` (trailing axes added).

    Prefix rather than numpy's trailing alignment, so per-keypoint scores ``(K,)`` pair with keypoints
    ``(K, 2)`` unambiguously, also when ``K == 2``.
    """
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape[: values.ndim]:
        raise ValueError(f"{name}: expected shape {shape} or a prefix of it, got {values.shape}")
    return np.broadcast_to(values.reshape(values.shape + (1,) * (len(shape) - values.ndim)), shape)


class OneEuroFilter:
    """One-euro filter over an array of any fixed shape, e.g. ``(K, 2)`` keypoints of one person.

    Args:
        min_cutoff: cutoff (Hz) when still. Lower = less jitter at rest, more lag on slow motion.
        beta: speed coefficient (Hz per unit/s). Higher = less lag on fast motion, more jitter when
            moving. 0 gives a plain (timestamp-aware) exponential low-pass at ``min_cutoff``.
        d_cutoff: cutoff (Hz) of the low-pass on the speed estimate that drives the adaptive cutoff.
        score_threshold: elements whose ``weight`` is below this are held (see module docstring).
    """

    def __init__(
        self,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
        score_threshold: float = 0.3,
    ) -> None:
        if not (math.isfinite(min_cutoff) and min_cutoff > 0):
            raise ValueError(f"OneEuroFilter: min_cutoff must be a finite number > 0 Hz, got {min_cutoff}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"OneEuroFilter: beta must be a finite number >= 0, got {beta}")
        if not (math.isfinite(d_cutoff) and d_cutoff > 0):
            raise ValueError(f"OneEuroFilter: d_cutoff must be a finite number > 0 Hz, got {d_cutoff}")
        if not math.isfinite(score_threshold):
            raise ValueError(f"OneEuroFilter: score_threshold must be finite, got {score_threshold}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.score_threshold = float(score_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample passes through."""
        self._x_hat: np.ndarray | None = None  # (*S,) filtered value
        self._dx_hat: np.ndarray | None = None  # (*S,) filtered speed, units per second
        self._t_prev: np.ndarray | None = None  # (*S,) time of each element's last accepted sample
        self._ready: np.ndarray | None = None  # (*S,) bool, element has had a good sample

    def __call__(self, x: np.ndarray, t: float, weight: np.ndarray | None = None) -> np.ndarray:
        """Filter one sample.

        Args:
            x: (*S,) measurement; the shape must stay the same between calls (``reset()`` to change it).
            t: timestamp of the sample in seconds.
            weight: (*S,) or a prefix of it, e.g. scores (K,) for x (K, 2); None = every element good.

        Returns:
            (*S,) float64 filtered values (held estimate for rejected elements, raw value for elements
            never seen with a good sample).
        """
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"OneEuroFilter: t must be a finite number of seconds, got {t}")
        good = np.isfinite(x)
        w = expand_prefix(weight, x.shape, "OneEuroFilter weight")
        if w is not None:
            good &= w >= self.score_threshold

        if self._x_hat is None:
            self._x_hat = x.copy()
            self._dx_hat = np.zeros_like(x)
            self._t_prev = np.full(x.shape, t)
            self._ready = good.copy()
            return x.copy()
        if x.shape != self._x_hat.shape:
            raise ValueError(f"OneEuroFilter: x has shape {x.shape}, the filter holds {self._x_hat.shape}; "
                             "call reset() to change shape")

        te = t - self._t_prev  # (*S,) seconds since each element's last accepted sample
        step = good & self._ready & (te > 0)
        if np.any(good & self._ready & (te <= 0)):
            logger.debug("OneEuroFilter: non-increasing timestamp %.6f, holding those elements", t)

        # first good sample of an element: pass through
        born = good & ~self._ready
        self._x_hat[born] = x[born]
        self._dx_hat[born] = 0.0
        self._t_prev[born] = t
        self._ready |= born

        if np.any(step):
            te_s, x_s, x_prev = te[step], x[step], self._x_hat[step]
            a_d = smoothing_factor(te_s, self.d_cutoff)
            dx_hat = a_d * (x_s - x_prev) / te_s + (1.0 - a_d) * self._dx_hat[step]
            a = smoothing_factor(te_s, self.min_cutoff + self.beta * np.abs(dx_hat))
            self._x_hat[step] = a * x_s + (1.0 - a) * x_prev
            self._dx_hat[step] = dx_hat
            self._t_prev[step] = t

        return np.where(self._ready, self._x_hat, x)
