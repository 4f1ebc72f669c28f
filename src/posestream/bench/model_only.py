"""Model-only timing: one backend call on a pre-made normalised batch, nothing else.

A cell is (model, backend, batch size). The input is a seeded N(0, 1) batch (what a normalised
crop looks like), made once, so no decode, detection, warping or heatmap decoding is timed. What
*is* inside the call is what the pipeline pays for that call: for ONNX Runtime ``session.run``
(numpy in, numpy out); for PyTorch the host-to-device copy, the forward pass under
``inference_mode`` and the copy back to a float32 numpy array (which also synchronises CUDA, so the
wall clock is honest).

Warm-up calls first (first calls allocate arenas, pick kernels, build engines), then timed calls
until ``seconds`` have passed and at least ``MIN_CALLS`` were made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["CallTimes", "time_calls", "MIN_CALLS"]

MIN_CALLS = 3  # a p95 of fewer samples would be the maximum


@dataclass(frozen=True, slots=True)
class CallTimes:
    """Wall seconds of each timed call with ``batch`` crops."""

    batch: int
    seconds: tuple[float, ...]

    @property
    def calls(self) -> int:
        return len(self.seconds)

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.seconds) * 1e3)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.seconds, 50) * 1e3)

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.seconds, 95) * 1e3)

    @property
    def crops_per_s(self) -> float:
        return self.batch / float(np.mean(self.seconds))

    def as_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "mean_ms": round(self.mean_ms, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "crops_per_s": round(self.crops_per_s, 3),
        }


def make_batch(batch: int, input_size_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(batch, 3, H, W) float32, N(0, 1): a stand-in for normalised crops."""
    return np.random.default_rng(seed).standard_normal((batch, 3, *input_size_hw), dtype=np.float32)


def time_calls(
    call: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    *,
    seconds: float,
    warmup: int,
    min_calls: int = MIN_CALLS,
    clock: Callable[[], float] = time.perf_counter,
) -> CallTimes:
    """Call ``call(batch)`` ``warmup`` times untimed, then time calls for ``seconds`` (>= ``min_calls``)."""
    for _ in range(warmup):
        call(batch)
    times: list[float] = []
    t_end = clock() + seconds
    while len(times) < min_calls or clock() < t_end:
        t0 = clock()
        out = call(batch)
        times.append(clock() - t0)
        assert len(out) == len(batch), f"backend returned {len(out)} heatmaps for {len(batch)} crops"
    return CallTimes(len(batch), tuple(times))
