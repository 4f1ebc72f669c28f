"""What every stage shares: a name, and no-op ``open``/``close`` to override when needed."""

from __future__ import annotations

from posestream.pipeline.graph import StageContext
from posestream.types import Packet

__all__ = ["StageBase"]


class StageBase:
    """Thin adapter over a core. Subclasses implement ``process``; the runtime owns the thread."""

    name = "stage"

    def open(self, ctx: StageContext) -> None:
        """Called on the worker thread before the first packet; ``ctx`` stops the graph, reads metrics."""

    def process(self, packet: Packet) -> Packet | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Always called, also after a failure: finalise outputs here."""
