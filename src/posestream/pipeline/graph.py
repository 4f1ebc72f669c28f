"""The graph runtime: a source and a chain of stages, each on its own worker thread.

It knows nothing about pose. Items are opaque; the runtime only reads ``item.index`` (to name the
frame in an error) and, when present, writes ``item.timings[stage_name]`` (seconds spent).

Lifecycle of one worker::

    open(ctx) -> loop { get from inbox -> process() -> put result(s) to outbox } -> flush() -> close()

``close()`` is always called; ``flush()`` (optional) only at the end of the stream, not after a stop
or an error. ``process`` returns one item, ``None`` (dropped on purpose) or ``Many(items)`` (zero or
more items: a stage that batches across frames holds items back and emits them later, in order).
``ctx`` is a ``StageContext``: what a stage may ask of the running graph (stop it, read its metrics)
without holding a reference to it.

``Parallel(factory, workers=n)`` runs n copies of one stage on n threads that share the stage's
inbox; outputs leave in the order the items arrived (a re-order buffer keyed by arrival number), so
downstream stages cannot tell it from one worker.

End of stream is a closed channel: the source closes its outbox when ``read()`` returns None, each
worker drains its inbox, flushes and closes its stage and then its outbox (and its inbox, so nobody
upstream waits on a stage that has ended).

A stop (Ctrl-C in the main thread, ``request_stop()`` for SIGTERM, or a failing stage, which
records its exception and sets the shared stop event) ends the source at once. What happens to the
items in flight depends on the stage:

- A stage that declares ``drain_on_stop = True`` (a sink: it writes outputs) and every stage after
  it *drain*: they process everything already queued for them, to the end, then close. So all
  sinks of a chain hold the same items (an item that reached the first sink reaches the last).
- Every other stage finishes the item in hand and stops; its queued items are dropped.

``shutdown_timeout`` bounds one thing only: a single ``process`` (or ``read``) call that is still
running that long after the stop. Such a stage is *stuck*: the graph closes its edges (the stages
after it drain what they have, then finalise) and ``run`` returns without waiting for it. Draining
and ``close()`` (finalising a file can take long: a slow encoder flushing) are never cut: a
second Ctrl-C is the user's way out (``posestream.cli``). ``Graph.run`` then re-raises a failure
as ``StageError(stage, frame_index)`` once the workers have finalised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from posestream.errors import StageError
from posestream.pipeline.channel import Channel, Closed, Empty, Overflow
from posestream.pipeline.metrics import StageMetrics, StageSnapshot

__all__ = ["Graph", "GraphResult", "Many", "Parallel", "Source", "Stage", "StageContext"]

log = logging.getLogger(__name__)

POLL_S = 0.1  # every blocking call wakes at least this often to re-check the stop event


def _drains(stage: Any) -> bool:
    target = stage.replicas[0] if isinstance(stage, Parallel) else stage
    return bool(getattr(target, "drain_on_stop", False))


class Many(tuple):
    """What ``process``/``flush`` return to emit several items (or none) downstream, in this order."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class StageContext:
    """Handed to ``Stage.open``: what a stage may ask of the graph that runs it.

    request_stop: stop the graph cleanly, as Ctrl-C would (a closed window, a quit key).
    snapshot: metrics of the source and every stage, as of now (``StageSnapshot`` list).
    live: whether the source runs on its own clock (edges drop the oldest item when behind).
    """

    request_stop: Callable[[], None]
    snapshot: Callable[[], list[StageSnapshot]]
    live: bool


class Stage(Protocol):
    name: str

    def open(self, ctx: StageContext) -> None: ...  # on the worker thread, before the first item

    def process(self, item: Any) -> Any | None: ...  # an item, None (drop on purpose) or Many(items)

    def close(self) -> None: ...  # always called, also after a failed open()

    # Optional: ``def flush(self) -> Iterable[Any]`` returns held-back items at the end of the stream.


class Parallel:
    """``workers`` copies of one stage, each on its own thread, outputs kept in arrival order.

    factory: builds one copy (called ``workers`` times now, on the caller's thread, so a copy that
    cannot be built fails before the graph starts). Each copy is opened, flushed and closed on its
    own thread. For stages whose work releases the GIL (model inference, codecs); worth it only where
    measured: each copy should then be given a share of the cores, not all of them.
    """

    def __init__(self, factory: Callable[[], Stage], workers: int, name: str | None = None) -> None:
        if workers < 1:
            raise ValueError(f"Parallel: workers must be >= 1, got {workers}")
        self.replicas: list[Stage] = [factory() for _ in range(workers)]
        self.name = name or self.replicas[0].name

    @property
    def workers(self) -> int:
        return len(self.replicas)


class Source(Protocol):
    name: str
    live: bool  # True: frames arrive on their own clock (camera, network); edges drop oldest

    def open(self) -> None: ...

    def read(self) -> Any | None: ...  # None = end of stream

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GraphResult:
    interrupted: bool  # stopped by Ctrl-C / request_stop() before the source ended
    wall_s: float
    stages: list[StageSnapshot]
    stuck: list[str]  # stages that did not stop within shutdown_timeout


class Graph:
    """A linear stage graph: ``source -> stages[0] -> ... -> stages[-1]``.

    overflow: one policy for every edge, or one per edge (``len(stages)`` edges: the edge *into*
    each stage). capacity: queue length of each edge, likewise.
    """

    def __init__(
        self,
        source: Source,
        stages: Sequence[Stage],
        *,
        capacity: int | Sequence[int] = 4,
        overflow: Overflow | Sequence[Overflow] = Overflow.BLOCK,
        shutdown_timeout: float = 2.0,
    ) -> None:
        if not stages:
            raise ValueError("Graph needs at least one stage after the source")
        n = len(stages)
        capacities = [capacity] * n if isinstance(capacity, int) else list(capacity)
        overflows = [overflow] * n if isinstance(overflow, (str, Overflow)) else list(overflow)
        if len(capacities) != n or len(overflows) != n:
            raise ValueError(f"Graph: need {n} capacities/overflows (one per edge)")
        self.source = source
        self.stages = list(stages)
        self.edges = [
            Channel(c, Overflow(o), name=f"->{s.name}") for c, o, s in zip(capacities, overflows, stages)
        ]
        self.metrics = [StageMetrics(source.name)] + [
            StageMetrics(s.name, workers=s.workers if isinstance(s, Parallel) else 1) for s in stages
        ]
        self.shutdown_timeout = shutdown_timeout
        # drains[i]: stage i processes its queued items after a stop (the first draining stage
        # and every stage after it: see the module docstring).
        first = next((i for i, s in enumerate(self.stages) if _drains(s)), n)
        self.drains = [i >= first for i in range(n)]
        self._busy: dict[str, tuple[int, float]] = {}  # thread name -> (edge it reads, call start)
        self._t_stop: float | None = None
        self._stop = threading.Event()
        self._interrupted = False
        self._error: StageError | None = None
        self._error_lock = threading.Lock()

    # ----------------------------------------------------------------- control
    def request_stop(self) -> None:
        """Stop without error (Ctrl-C, SIGTERM, a closed window). Safe from any thread/handler."""
        self._interrupted = True
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def context(self) -> StageContext:
        """What stages are handed in ``open``."""
        return StageContext(request_stop=self.request_stop, snapshot=self.snapshot, live=bool(self.source.live))

    def snapshot(self) -> list[StageSnapshot]:
        """Metrics of the source and every stage, as of now (any thread)."""
        out = [self.metrics[0].snapshot()]
        for m, edge in zip(self.metrics[1:], self.edges):
            out.append(m.snapshot(queue=len(edge), max_queue=edge.max_depth, dropped=edge.dropped))
        return out

    # ----------------------------------------------------------------- workers
    def _fail(self, name: str, index: int | None, exc: BaseException, when: str | None = None) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = StageError(name, index, exc, when)
                self._error.__cause__ = exc
                log.debug("stage %s failed", name, exc_info=exc)
        self._stop.set()

    def _put(self, edge: Channel, item: Any, drain: bool = False) -> bool:
        """Put with back-pressure that keeps re-checking the stop event. False = stop/closed.

        drain: keep trying after a stop too, until the item is in or the edge is closed (the
        stage after it ended, or was abandoned as stuck).
        """
        try:
            while drain or not self._stop.is_set():
                if edge.put(item, timeout=POLL_S):
                    return True
        except Closed:
            pass
        return False

    def _call(self, inbox: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as this thread's current call (a stop watches it for being stuck)."""
        name = threading.current_thread().name
        self._busy[name] = (inbox, time.monotonic())
        try:
            return fn(*args)
        finally:
            self._busy.pop(name, None)

    def _run_source(self) -> None:
        src, out, m = self.source, self.edges[0], self.metrics[0]
        count = 0
        try:
            src.open()
            m.t_start = time.monotonic()
            while not self._stop.is_set():
                t0 = time.perf_counter()
                item = self._call(-1, src.read)
                if item is None:
                    break
                m.record(time.perf_counter() - t0, emitted=True)
                count += 1
                if not self._put(out, item):
                    break
        except Exception as exc:  # noqa: BLE001 - any failure is reported as StageError
            self._fail(src.name, count, exc)
        finally:
            m.t_end = time.monotonic()
            out.close()
            try:
                src.close()
            except Exception as exc:  # noqa: BLE001
                self._fail(src.name, None, exc)

    def _emit(self, outbox: Channel | None, result: Any, dt: float, stage_name: str, drain: bool = False) -> bool:
        """Send what ``process``/``flush`` returned downstream. False = the graph is stopping."""
        if result is None:
            return True
        items = list(result) if isinstance(result, Many) else [result]
        for item in items:
            timings = getattr(item, "timings", None)
            if isinstance(timings, dict):  # a batch's time is shared by the items it emits
                timings[stage_name] = dt / len(items)
            if outbox is not None and not self._put(outbox, item, drain):
                return False
        return True

    @staticmethod
    def _count(result: Any) -> int:
        return 0 if result is None else len(result) if isinstance(result, Many) else 1

    def _run_stage(self, i: int) -> None:
        stage, inbox, m = self.stages[i], self.edges[i], self.metrics[i + 1]
        outbox = self.edges[i + 1] if i + 1 < len(self.edges) else None
        drain = self.drains[i]
        downstream = True  # the outbox still takes items
        index: int | None = None
        try:
            stage.open(self.context())
            m.t_start = time.monotonic()
            ended = False
            while drain or not self._stop.is_set():
                try:
                    item = inbox.get(timeout=POLL_S)
                except Empty:
                    continue
                except Closed:
                    ended = True
                    break
                index = getattr(item, "index", None)
                t0 = time.perf_counter()
                result = self._call(i, stage.process, item)
                dt = time.perf_counter() - t0
                m.record(dt, emitted=self._count(result))
                if downstream and not self._emit(outbox, result, dt, stage.name, drain):
                    if not drain:
                        break
                    downstream = False  # the stage after this one ended: drain into this one only
            if ended and not self._stop.is_set():
                self._flush(stage, outbox, m)
        except Exception as exc:  # noqa: BLE001 - any failure is reported as StageError
            self._fail(stage.name, index, exc)
        finally:
            m.t_end = time.monotonic()
            if outbox is not None:
                outbox.close()
            inbox.close()  # nobody reads it any more: an upstream put must not wait for us
            try:
                stage.close()
            except Exception as exc:  # noqa: BLE001
                self._fail(stage.name, index, exc, when="while finalising")

    def _flush(self, stage: Any, outbox: Channel | None, m: StageMetrics) -> None:
        flush = getattr(stage, "flush", None)
        if flush is None:
            return
        t0 = time.perf_counter()
        items = Many(flush() or ())
        dt = time.perf_counter() - t0
        m.add_emitted(len(items), dt)
        self._emit(outbox, items, dt, stage.name)

    def _run_parallel(self, i: int) -> list[threading.Thread]:
        """Threads for a ``Parallel`` stage: shared inbox, re-order buffer, last one out closes."""
        par: Parallel = self.stages[i]
        inbox, m = self.edges[i], self.metrics[i + 1]
        drain = self.drains[i]
        outbox = self.edges[i + 1] if i + 1 < len(self.edges) else None
        take_lock = threading.Lock()  # arrival numbers follow the order items leave the inbox
        emit_lock = threading.Lock()  # one thread at a time sends ready results, in order
        state = {"taken": 0, "next": 0, "alive": par.workers, "ended": False}
        ready: dict[int, Any] = {}

        def send_ready() -> bool:
            while True:
                if emit_lock.acquire(timeout=POLL_S):
                    break
                if self._stop.is_set() and not drain:
                    return False
            try:
                while state["next"] in ready:
                    result, dt = ready.pop(state["next"])
                    state["next"] += 1
                    if not self._emit(outbox, result, dt, par.name, drain):
                        return False
                return True
            finally:
                emit_lock.release()

        def worker(stage: Stage) -> None:
            index: int | None = None
            try:
                stage.open(self.context())
                with take_lock:
                    m.t_start = m.t_start or time.monotonic()
                while drain or not self._stop.is_set():
                    with take_lock:  # get + numbering under one lock: seq order = inbox order
                        try:
                            item = inbox.get(timeout=POLL_S)
                        except Empty:
                            continue
                        except Closed:
                            state["ended"] = True
                            break
                        seq = state["taken"]
                        state["taken"] += 1
                    index = getattr(item, "index", None)
                    t0 = time.perf_counter()
                    result = self._call(i, stage.process, item)
                    dt = time.perf_counter() - t0
                    m.record(dt, emitted=self._count(result))
                    ready[seq] = (result, dt)
                    if not send_ready():
                        break
            except Exception as exc:  # noqa: BLE001 - any failure is reported as StageError
                self._fail(par.name, index, exc)
            finally:
                with take_lock:
                    state["alive"] -= 1
                    last = state["alive"] == 0
                if last:  # every item is numbered and processed: flush the copies, then end
                    try:
                        if state["ended"] and not self._stop.is_set():
                            send_ready()
                            for replica in par.replicas:
                                self._flush(replica, outbox, m)
                    except Exception as exc:  # noqa: BLE001
                        self._fail(par.name, None, exc)
                    m.t_end = time.monotonic()
                    if outbox is not None:
                        outbox.close()
                    inbox.close()
                try:
                    stage.close()
                except Exception as exc:  # noqa: BLE001
                    self._fail(par.name, None, exc)

        return [
            threading.Thread(target=worker, args=(replica,), name=f"ps-{par.name}.{k}", daemon=True)
            for k, replica in enumerate(par.replicas)
        ]

    # ----------------------------------------------------------------- run
    def run(self, on_tick: Callable[[Graph], None] | None = None, tick_s: float = 0.2) -> GraphResult:
        """Run to the end of the stream (or a stop) in worker threads; block until done.

        ``on_tick(graph)`` is called from this thread every ``tick_s`` (progress bars, live stats).
        Raises ``StageError`` if a stage failed, after every other stage has finalised its outputs.
        """
        t_start = time.monotonic()
        threads = [threading.Thread(target=self._run_source, name=f"ps-{self.source.name}", daemon=True)]
        for i, stage in enumerate(self.stages):
            if isinstance(stage, Parallel):
                threads += self._run_parallel(i)
            else:
                threads.append(threading.Thread(target=self._run_stage, args=(i,), name=f"ps-{stage.name}", daemon=True))
        for t in threads:
            t.start()
        stuck: dict[str, str] = {}  # thread name -> stage name, for threads abandoned inside a call
        while True:
            try:
                alive = [t for t in threads if t.is_alive()]
                if not alive or all(t.name in stuck for t in alive):
                    break
                if self._stop.is_set():
                    self._on_stop()
                    self._find_stuck(stuck)
                alive[0].join(timeout=tick_s if on_tick else POLL_S)
                if on_tick is not None:
                    on_tick(self)
            except KeyboardInterrupt:
                log.warning("interrupted: stopping the graph and finalising outputs")
                self.request_stop()
        stuck_stages = list(dict.fromkeys(stuck.values()))
        if self._error is not None:
            raise self._error
        return GraphResult(
            interrupted=self._interrupted,
            wall_s=time.monotonic() - t_start,
            stages=self.snapshot(),
            stuck=stuck_stages,
        )

    def _on_stop(self) -> None:
        """Once, at the stop: end the source and wake the stages that do not drain."""
        if self._t_stop is not None:
            return
        self._t_stop = time.monotonic()
        self.edges[0].close()  # the source puts nothing more
        for edge, drain in zip(self.edges, self.drains):
            if not drain:  # its consumer stops: wake it (and anyone putting into it)
                edge.close()

    def _find_stuck(self, stuck: dict[str, str]) -> None:
        """Abandon a thread whose current call has run ``shutdown_timeout`` past the stop."""
        now = time.monotonic()
        for name, (inbox, t_call) in list(self._busy.items()):
            if name in stuck or now - max(t_call, self._t_stop or now) <= self.shutdown_timeout:
                continue
            stage = name.removeprefix("ps-").split(".")[0]
            stuck[name] = stage
            log.error("stage '%s' did not stop within %.1f s (blocked inside a call); abandoned", stage,
                      self.shutdown_timeout)  # fmt: skip
            # Close its edges: the stages after it drain what they have and finalise; nobody
            # upstream waits for it.
            if inbox + 1 < len(self.edges):
                self.edges[inbox + 1].close()
            if inbox >= 0:
                self.edges[inbox].close()
