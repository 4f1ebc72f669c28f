"""A CPU thread budget: the graph's cores shared out among the stages that compute in parallel.

Every stage already runs on its own worker thread; the budget is about the threads *inside* a stage
(an inference session's intra-op pool, a codec's threads), which is where oversubscription hides:
two 2-thread inference pools, a decoder and an encoder on 2 cores make every call wait for a core
and every pool spin. Rules:

* a consumer given a count keeps it (the user decides);
* every other consumer gets 1 (its own worker thread, no pool);
* the cores left over (``cores - sum``) go to the non-fixed consumers by weight, largest
  remainder first, so the model stages get most.

So the sum equals the cores whenever there are more cores than consumers. With as many or fewer
cores the floors already fill them, and the heaviest consumer's pool then spans every core not
fixed by the user: the light consumers (a decoder, an encoder, a small detector) wait most of the
time, and a model held to one thread leaves the other cores idle. Measured on a quiet 2-core
machine (multi-person clip, ViTPose-S on OpenVINO, video + JSON): pose 2 threads beside
decode/detector/encode 1 each ran 100 frames in 28.4 s, pose 1 thread in 56.2 s (one core
idle: 70 s of CPU in 62 s). Knows nothing about what the consumers are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ThreadBudget", "plan_threads", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ThreadBudget:
    """Threads per consumer (name -> count) out of ``cores``."""

    cores: int
    threads: Mapping[str, int]

    def __getitem__(self, name: str) -> int:
        return self.threads[name]

    @property
    def total(self) -> int:
        return sum(self.threads.values())

    def describe(self) -> str:
        parts = ", ".join(f"{name} {count}" for name, count in self.threads.items())
        return f"{self.total} threads on {self.cores} cores ({parts})"


def plan_threads(cores: int, requested: Mapping[str, int], weights: Mapping[str, float]) -> ThreadBudget:
    """Share ``cores`` among the consumers of ``requested`` (name -> count, 0 = auto).

    weights: share of the spare cores for each auto consumer (absent = 0: it keeps its floor of 1).
    """
    if cores < 1:
        raise ValueError(f"cores: expected >= 1, got {cores}")
    for name, count in requested.items():
        if count < 0:
            raise ValueError(f"threads for {name}: expected >= 0 (0 = auto), got {count}")
    threads = {name: (count if count > 0 else 1) for name, count in requested.items()}
    auto = [name for name, count in requested.items() if count == 0 and weights.get(name, 0) > 0]
    spare = cores - sum(threads.values())
    if spare > 0 and auto:
        total_weight = sum(weights[name] for name in auto)
        shares = {name: spare * weights[name] / total_weight for name in auto}
        for name in auto:
            threads[name] += int(shares[name])
        left = spare - sum(int(shares[name]) for name in auto)
        for name in sorted(auto, key=lambda n: shares[n] - int(shares[n]), reverse=True)[:left]:
            threads[name] += 1
    elif auto:
        top = max(auto, key=lambda n: weights[n])
        if sum(weights[n] == weights[top] for n in auto) == 1:  # one heaviest (not equal workers)
            fixed = sum(count for count in requested.values() if count > 0)
            threads[top] = max(threads[top], cores - fixed)
    return ThreadBudget(cores, dict(threads))
