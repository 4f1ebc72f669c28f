"""Bounded channels between stages.

A channel is a FIFO with a capacity and an overflow policy:

- ``Overflow.BLOCK``: lossless back-pressure. ``put`` waits for room (with a timeout, so the caller
  can re-check the graph's stop event). For files, where every frame matters.
- ``Overflow.DROP_OLDEST``: ``put`` never waits; when full, the oldest item is discarded and
  counted in ``dropped``. For live sources, where the freshest frame matters and latency must stay
  bounded when a consumer is slower than the camera.

End of stream is ``close()``: consumers drain what is left, then ``get`` raises ``Closed``.
"""

from __future__ import annotations

import threading
from collections import deque
from enum import Enum
from typing import Generic, TypeVar

__all__ = ["Channel", "Closed", "Empty", "Overflow"]

T = TypeVar("T")


class Overflow(str, Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


class Closed(Exception):
    """The channel is closed (and, for ``get``, drained)."""


class Empty(Exception):
    """``get`` timed out with nothing to return."""


class Channel(Generic[T]):
    def __init__(self, capacity: int, overflow: Overflow = Overflow.BLOCK, name: str = "") -> None:
        if capacity < 1:
            raise ValueError(f"Channel capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.overflow = Overflow(overflow)
        self.name = name
        self.dropped = 0
        self.max_depth = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Add ``item``. Returns False if it timed out waiting for room (BLOCK only).

        Raises ``Closed`` if the channel was closed: nobody downstream will read it.
        """
        with self._cond:
            if self._closed:
                raise Closed(self.name)
            if len(self._items) >= self.capacity:
                if self.overflow is Overflow.DROP_OLDEST:
                    self._items.popleft()
                    self.dropped += 1
                elif not self._cond.wait_for(
                    lambda: self._closed or len(self._items) < self.capacity, timeout
                ):
                    return False
                elif self._closed:
                    raise Closed(self.name)
            self._items.append(item)
            self.max_depth = max(self.max_depth, len(self._items))
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T:
        """Take the oldest item. Raises ``Empty`` on timeout, ``Closed`` once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                raise Empty(self.name)
            if not self._items:
                raise Closed(self.name)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """End of stream: wake every waiter. Items already queued can still be read."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
