import threading
import time

import pytest

from posestream.pipeline.channel import Channel, Closed, Empty, Overflow


def test_drop_oldest_keeps_freshest():
    ch = Channel(capacity=2, overflow=Overflow.DROP_OLDEST)
    for i in range(5):
        assert ch.put(i)
    assert [ch.get(), ch.get()] == [3, 4]
    assert ch.dropped == 3


def test_block_times_out_when_full_and_drops_nothing():
    ch = Channel(capacity=1, overflow=Overflow.BLOCK)
    assert ch.put("a", timeout=0.01)
    t0 = time.monotonic()
    assert ch.put("b", timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.04
    assert ch.dropped == 0 and ch.get() == "a"


def test_blocked_put_resumes_when_consumer_reads():
    ch = Channel(capacity=1)
    ch.put(1)
    threading.Timer(0.05, ch.get).start()
    assert ch.put(2, timeout=2.0)
    assert ch.get() == 2


def test_close_drains_then_raises_closed():
    ch = Channel(capacity=3)
    ch.put(1)
    ch.close()
    assert ch.get(timeout=0.1) == 1
    with pytest.raises(Closed):
        ch.get(timeout=0.1)
    with pytest.raises(Closed):
        ch.put(2)


def test_get_times_out_with_empty():
    with pytest.raises(Empty):
        Channel(capacity=1).get(timeout=0.01)


def test_close_wakes_a_blocked_producer():
    ch = Channel(capacity=1)
    ch.put(1)
    errors = []

    def produce():
        try:
            ch.put(2, timeout=5)
        except Closed:
            errors.append("closed")

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.05)
    ch.close()
    t.join(timeout=1)
    assert not t.is_alive() and errors == ["closed"]


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        Channel(capacity=0)
