"""The graph runtime on plain items: ordering, errors, shutdown, drop-oldest, interruption."""

import threading
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
import pytest

from posestream.errors import StageError
from posestream.pipeline.channel import Overflow
from posestream.pipeline.graph import Graph, Many, Parallel


@dataclass
class Item:
    index: int
    payload: np.ndarray | None = None
    timings: dict = field(default_factory=dict)


class CountSource:
    name = "source"

    def __init__(self, n, live=False, period=0.0, payload_bytes=0):
        self.n, self.live, self.period, self.payload_bytes = n, live, period, payload_bytes
        self.i = 0
        self.closed = False

    def open(self):
        pass

    def read(self):
        if self.i >= self.n:
            return None
        if self.period:
            time.sleep(self.period)
        payload = np.zeros(self.payload_bytes, np.uint8) if self.payload_bytes else None
        self.i += 1
        return Item(self.i - 1, payload)

    def close(self):
        self.closed = True


class Collect:
    def __init__(self, name="collect", delay=0.0):
        self.name, self.delay = name, delay
        self.seen = []
        self.opened = self.closed = False

    def open(self, ctx):
        self.opened = True
        self.ctx = ctx

    def process(self, item):
        if self.delay:
            time.sleep(self.delay)
        self.seen.append(item.index)
        return item

    def close(self):
        self.closed = True


class RaiseAt(Collect):
    def __init__(self, at):
        super().__init__("faulty")
        self.at = at

    def process(self, item):
        if item.index == self.at:
            raise RuntimeError("boom")
        return super().process(item)


class BlockForever(Collect):
    def __init__(self):
        super().__init__("stuck")
        self.release = threading.Event()

    def process(self, item):
        self.release.wait()  # ignores the stop event on purpose
        return item


def test_items_flow_in_order_and_every_stage_is_closed():
    a, b = Collect("a"), Collect("b")
    src = CountSource(50)
    result = Graph(src, [a, b], capacity=2).run()
    assert a.seen == b.seen == list(range(50))
    assert a.opened and a.closed and b.closed and src.closed
    assert not result.interrupted and result.stuck == []
    names = [s.name for s in result.stages]
    assert names == ["source", "a", "b"]
    assert all(s.frames_in == 50 and s.frames_out == 50 for s in result.stages)


def test_timings_recorded_per_stage():
    sink = Collect("sink", delay=0.002)
    items = []

    class Keep(Collect):
        def process(self, item):
            items.append(item)
            return item

    Graph(CountSource(5), [sink, Keep("keep")]).run()
    assert all(it.timings["sink"] >= 0.002 for it in items)
    assert all("keep" in it.timings for it in items[:-1])


def test_stage_that_raises_stops_graph_promptly_naming_stage_and_frame():
    downstream = Collect("after")
    graph = Graph(CountSource(10_000, period=0.001), [RaiseAt(37), downstream], capacity=4)
    t0 = time.monotonic()
    with pytest.raises(StageError) as err:
        graph.run()
    assert time.monotonic() - t0 < 2.0
    assert err.value.stage == "faulty" and err.value.frame_index == 37
    assert "stage 'faulty' failed at frame 37" in str(err.value) and "boom" in str(err.value)
    assert downstream.closed  # the other stages were still finalised


def test_failure_in_source_is_reported_with_its_frame():
    class BadSource(CountSource):
        def read(self):
            if self.i == 5:
                raise OSError("device unplugged")
            return super().read()

    with pytest.raises(StageError, match="stage 'source' failed at frame 5: OSError: device unplugged"):
        Graph(BadSource(100), [Collect()]).run()


def test_failure_in_open_is_reported_and_close_still_called():
    class BadOpen(Collect):
        def open(self, ctx):
            raise ValueError("no model")

    stage = BadOpen("model")
    with pytest.raises(StageError, match="stage 'model' failed before the first frame"):
        Graph(CountSource(10), [stage]).run()
    assert stage.closed


def test_blocked_stage_does_not_hang_shutdown():
    stuck = BlockForever()
    graph = Graph(CountSource(100), [stuck, RaiseAt(-1)], shutdown_timeout=0.5)
    threading.Timer(0.3, graph.request_stop).start()
    t0 = time.monotonic()
    result = graph.run()
    assert time.monotonic() - t0 < 2.0
    assert result.interrupted and result.stuck == ["stuck"]
    stuck.release.set()


def test_error_elsewhere_while_a_stage_is_blocked_still_raises_within_timeout():
    stuck = BlockForever()

    class FailingSource(CountSource):
        def read(self):
            if self.i == 3:
                raise RuntimeError("read failed")
            return super().read()

    graph = Graph(FailingSource(100), [stuck], shutdown_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(StageError, match="source"):
        graph.run()
    assert time.monotonic() - t0 < 2.0
    stuck.release.set()


def test_slow_consumer_under_drop_oldest_keeps_memory_bounded_and_counts_drops():
    # 1 MB items produced every 1 ms, consumed every 20 ms: a lossless queue would grow without
    # bound; drop-oldest keeps `capacity` items and counts the rest as dropped.
    n, payload = 400, 1_000_000
    slow = Collect("slow", delay=0.02)
    tracemalloc.start()
    graph = Graph(CountSource(n, live=True, period=0.001, payload_bytes=payload), [slow],
                  capacity=2, overflow=Overflow.DROP_OLDEST)  # fmt: skip
    result = graph.run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    slow_stats = result.stages[1]
    assert slow_stats.dropped > n // 2
    assert slow_stats.frames_in + slow_stats.dropped == n
    assert slow_stats.max_queue <= 2
    assert peak < 20 * payload  # a few items in flight, not hundreds
    assert slow.seen == sorted(slow.seen)  # order kept among survivors
    assert slow.seen[-1] == n - 1  # the freshest item always gets through


def test_request_stop_is_clean_and_finalises():
    sink = Collect("sink", delay=0.005)
    src = CountSource(100_000)
    graph = Graph(src, [sink])
    threading.Timer(0.2, graph.request_stop).start()
    result = graph.run()
    assert result.interrupted and sink.closed and src.closed
    assert 0 < len(sink.seen) < 100_000


def test_on_tick_is_called_with_live_metrics():
    seen = []
    Graph(CountSource(30, period=0.01), [Collect()]).run(on_tick=lambda g: seen.append(g.snapshot()[-1].frames_in),
                                                        tick_s=0.05)  # fmt: skip
    assert seen and seen == sorted(seen)


def test_edge_configuration_is_validated():
    with pytest.raises(ValueError, match="one per edge"):
        Graph(CountSource(1), [Collect()], capacity=[1, 2])
    with pytest.raises(ValueError, match="at least one stage"):
        Graph(CountSource(1), [])


# --------------------------------------------------------------------------- context, Many, flush, Parallel
def test_open_receives_a_context_that_stops_the_graph_and_reads_metrics():
    seen = {}

    class StopAt(Collect):
        def process(self, item):
            if item.index == 5:
                seen["snapshot"] = [s.name for s in self.ctx.snapshot()]
                seen["live"] = self.ctx.live
                self.ctx.request_stop()
            return super().process(item)

    stage = StopAt("stopper")
    result = Graph(CountSource(100_000), [stage]).run()
    assert result.interrupted and stage.closed
    assert seen == {"snapshot": ["source", "stopper"], "live": False}
    assert 5 <= len(stage.seen) < 100_000


class BatchBy(Collect):
    """Holds items back and emits them in groups of ``size``; the rest at the end of the stream."""

    def __init__(self, size, name="batch"):
        super().__init__(name)
        self.size, self.held, self.flushed = size, [], 0

    def process(self, item):
        self.held.append(item)
        if len(self.held) < self.size:
            return Many()
        out, self.held = Many(self.held), []
        return out

    def flush(self):
        self.flushed += 1
        out, self.held = self.held, []
        return out


def test_many_and_flush_emit_every_item_in_order():
    batch, after = BatchBy(4), Collect("after")
    result = Graph(CountSource(10), [batch, after], capacity=2).run()
    assert after.seen == list(range(10))  # 8 in two groups, 2 from flush
    assert batch.flushed == 1
    stats = {s.name: s for s in result.stages}
    assert stats["batch"].frames_in == 10 and stats["batch"].frames_out == 10


def test_flush_is_not_called_after_a_stop():
    batch, after = BatchBy(1000), Collect("after")
    graph = Graph(CountSource(100_000, period=0.0005), [batch, after])
    threading.Timer(0.2, graph.request_stop).start()
    graph.run()
    assert batch.flushed == 0 and batch.closed and after.seen == []


class Jitter(Collect):
    """Takes a different time per item so parallel copies finish out of order."""

    made = 0

    def __init__(self):
        super().__init__("jitter")
        Jitter.made += 1
        self.copy = Jitter.made

    def process(self, item):
        time.sleep(0.001 * ((item.index * 7) % 5))
        item.worker = self.copy
        return super().process(item)


def test_parallel_copies_keep_arrival_order_and_share_the_work():
    Jitter.made = 0
    par = Parallel(Jitter, workers=3)
    after = Collect("after")
    items = []

    class Keep(Collect):
        def process(self, item):
            items.append(item)
            return item

    result = Graph(CountSource(200), [par, after, Keep("keep")], capacity=4).run()
    assert after.seen == list(range(200))
    assert {it.worker for it in items} == {1, 2, 3}  # every copy did some of the work
    assert all(r.opened and r.closed for r in par.replicas)
    stats = {s.name: s for s in result.stages}
    assert stats["jitter"].frames_in == stats["jitter"].frames_out == 200
    assert 0 < stats["jitter"].busy <= 1.0


def test_parallel_failure_names_the_stage_and_frame_and_closes_every_copy():
    par = Parallel(lambda: RaiseAt(23), workers=2)
    with pytest.raises(StageError, match="stage 'faulty' failed at frame 23"):
        Graph(CountSource(1000), [par, Collect()]).run()
    assert all(r.closed for r in par.replicas)


def test_parallel_copies_are_flushed_at_the_end():
    par = Parallel(lambda: BatchBy(7, name="pbatch"), workers=2)
    after = Collect("after")
    Graph(CountSource(30), [par, after]).run()
    assert sorted(after.seen) == list(range(30))  # held items of both copies come out at the end
    assert all(r.flushed == 1 for r in par.replicas)


def test_parallel_workers_are_validated():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        Parallel(Collect, workers=0)


# --------------------------------------------------------------------------- shutdown: drain, stuck (issue 10)
class Sink(Collect):
    drain_on_stop = True

    def __init__(self, name, delay=0.0, close_s=0.0, fail_at=None):
        super().__init__(name, delay)
        self.close_s, self.fail_at = close_s, fail_at

    def process(self, item):
        if item.index == self.fail_at:
            raise OSError("disk full")
        return super().process(item)

    def close(self):
        time.sleep(self.close_s)  # a slow encoder flushing its last frames
        super().close()


@pytest.mark.parametrize("stop", ["request", "error"])
def test_after_a_stop_every_item_that_reached_the_first_sink_reaches_the_last(stop):
    model = RaiseAt(60 if stop == "error" else -1)
    model.delay = 0.002
    first, last = Sink("video"), Sink("keypoints", delay=0.01)  # the last sink lags: a queue builds up
    graph = Graph(CountSource(10_000), [model, Collect("render"), first, last], capacity=4)
    if stop == "request":
        threading.Timer(0.3, graph.request_stop).start()
        result = graph.run()
        assert result.interrupted and result.stuck == []
    else:
        with pytest.raises(StageError, match="faulty"):
            graph.run()
    assert first.seen == last.seen and len(last.seen) > 5  # drained: the outputs agree
    assert first.closed and last.closed
    assert len(model.seen) >= len(first.seen)  # non-sink stages just stop (their queues dropped)


def test_a_sink_that_fails_stops_the_run_and_later_sinks_keep_what_it_passed():
    first, last = Sink("video", fail_at=25), Sink("keypoints")
    with pytest.raises(StageError, match="stage 'video' failed at frame 25: OSError: disk full"):
        Graph(CountSource(1000), [first, last], capacity=4).run()
    assert last.seen == list(range(25)) and last.closed


def test_a_failure_after_the_sinks_leaves_the_sinks_agreeing():
    first, last = Sink("video"), Sink("keypoints", delay=0.005)
    with pytest.raises(StageError, match="stage 'faulty' failed at frame 40"):
        Graph(CountSource(1000), [first, last, RaiseAt(40)], capacity=4).run()
    assert first.seen == last.seen and len(last.seen) >= 41 and last.closed


def test_finalising_and_draining_are_not_cut_by_the_stuck_timeout():
    slow_close = Sink("video", close_s=1.0)
    slow_drain = Sink("keypoints", delay=0.05)  # ~20 queued items x 50 ms: longer than the timeout
    graph = Graph(CountSource(10_000), [slow_close, slow_drain], capacity=20, shutdown_timeout=0.2)
    threading.Timer(0.3, graph.request_stop).start()
    result = graph.run()
    assert result.stuck == [] and slow_close.closed and slow_drain.closed
    assert slow_close.seen == slow_drain.seen


def test_a_stage_stuck_in_process_is_abandoned_and_the_sinks_after_it_still_finalise():
    stuck = BlockForever()
    first, last = Sink("video"), Sink("keypoints")

    class PassThenStuck(Collect):  # lets 10 items through, then blocks
        def process(self, item):
            if item.index == 10:
                stuck.release.wait()
            return super().process(item)

    graph = Graph(CountSource(1000), [PassThenStuck("pose"), first, last], shutdown_timeout=0.3)
    threading.Timer(0.5, graph.request_stop).start()
    t0 = time.monotonic()
    result = graph.run()
    assert time.monotonic() - t0 < 2.5
    assert result.stuck == ["pose"] and first.closed and last.closed
    assert first.seen == last.seen == list(range(10))
    stuck.release.set()


def test_a_sink_stuck_in_process_is_abandoned_too():
    class StuckSink(Sink):
        def process(self, item):
            if item.index == 3:
                threading.Event().wait(30)
            return super().process(item)

    first, last = StuckSink("video"), Sink("keypoints")
    graph = Graph(CountSource(100), [first, last], shutdown_timeout=0.3)
    threading.Timer(0.3, graph.request_stop).start()
    t0 = time.monotonic()
    result = graph.run()
    assert time.monotonic() - t0 < 2.5 and result.stuck == ["video"]
    assert last.seen == [0, 1, 2] and last.closed
