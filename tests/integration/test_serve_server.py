"""LiveServer over real sockets on 127.0.0.1: endpoints, the MJPEG stream, shutdown, errors."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from posestream.errors import InputError
from posestream.serve.server import LiveServer

TIMEOUT_S = 5.0  # every socket operation in these tests


def synthetic_frame(index: int, size_wh: tuple[int, int] = (64, 48)) -> np.ndarray:
    """(H, W, 3) uint8 BGR whose content depends on ``index``."""
    w, h = size_wh
    image = np.full((h, w, 3), index % 256, np.uint8)
    cv2.putText(image, str(index), (2, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return image


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


class Publisher:
    """Publishes numbered frames from a thread every ``period_s`` until stopped."""

    def __init__(self, server: LiveServer, period_s: float = 0.02, size_wh: tuple[int, int] = (64, 48)):
        self.server, self.period_s, self.size_wh = server, period_s, size_wh
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-publisher", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.server.publish(synthetic_frame(self.count, self.size_wh), {"frame": self.count})
            self.count += 1
            self._stop.wait(self.period_s)

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT_S)
        assert not self._thread.is_alive()


class MjpegClient:
    """A raw-socket /stream.mjpg reader that parses the multipart body itself."""

    def __init__(self, server: LiveServer, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT_S)
        self.sock.connect(server.address)
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: test\r\n\r\n")
        self.buf = b""

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def headers(self) -> dict[str, str]:
        lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "200", lines[0]
        return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}

    def part(self, boundary: str) -> bytes:
        """The next part's body, after checking its boundary line and headers."""
        lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        assert lines[0] == f"--{boundary}", lines
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        assert headers["content-type"] == "image/jpeg"
        body = self._read_exactly(int(headers["content-length"]))
        assert self._read_exactly(2) == b"\r\n"
        return body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(port=0).start()
    try:
        yield live
    finally:
        live.stop()


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/x-mixed-replace"
    key, _, value = params.strip().partition("=")
    assert key == "boundary" and value
    return value


def wait_for(predicate, timeout: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_binds_loopback_on_a_free_port(server: LiveServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    assert server.url == f"http://127.0.0.1:{port}/"


def test_stats_and_frame_are_the_latest_published(server: LiveServer) -> None:
    with Publisher(server, size_wh=(64, 48)) as pub:
        assert wait_for(lambda: pub.count >= 3)
    last = pub.count - 1

    status, ctype, body = get(server.url + "stats.json")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {"frame": last}

    status, ctype, body = get(server.url + "frame.jpg")
    assert (status, ctype) == (200, "image/jpeg")
    assert body[:3] == b"\xff\xd8\xff"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (48, 64, 3)
    # JPEG is lossy, but the flat background keeps its value within a few levels
    assert abs(int(image[0, 0, 0]) - last % 256) <= 4


def test_before_any_frame(server: LiveServer) -> None:
    assert get(server.url + "stats.json")[::2] == (200, b"{}")
    assert get(server.url + "frame.jpg")[0] == 503


def test_stats_become_strict_json(server: LiveServer) -> None:
    stats = {"fps": float("nan"), "people": np.int64(2), "stages": [{"p50_ms": np.float32(1.5)}]}
    stats["x"] = object()
    server.publish(synthetic_frame(0), stats)
    stats["fps"] = 99.0  # publish took a snapshot
    got = json.loads(get(server.url + "stats.json")[2])
    assert got["fps"] is None and got["people"] == 2 and got["stages"] == [{"p50_ms": 1.5}]
    assert isinstance(got["x"], str)


def test_page_healthz_and_404(server: LiveServer) -> None:
    status, ctype, body = get(server.url)
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert '<img id="stream" src="/stream.mjpg"' in page and "/stats.json" in page
    assert "random weights: keypoints are meaningless" in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert get(server.url + "healthz")[::2] == (200, b"ok\n")
    assert get(server.url + "nope")[0] == 404
    assert get(server.url + "stream.mjpg/x")[0] == 404


def test_mjpeg_stream_sends_newer_frames(server: LiveServer) -> None:
    client = MjpegClient(server)
    try:
        boundary = boundary_of(client.headers()["content-type"])
        with Publisher(server):
            parts = [client.part(boundary) for _ in range(3)]
    finally:
        client.close()
    for body in parts:
        assert body[:3] == b"\xff\xd8\xff" and body[-2:] == b"\xff\xd9"
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
    assert len(set(parts)) == 3  # each part is a new frame, never a repeat


def test_new_stream_client_gets_the_current_frame_at_once(server: LiveServer) -> None:
    server.publish(synthetic_frame(7), {"frame": 7})
    client = MjpegClient(server)
    try:
        body = client.part(boundary_of(client.headers()["content-type"]))
    finally:
        client.close()
    assert body == get(server.url + "frame.jpg")[2]


def test_stop_is_prompt_with_a_stream_client_connected() -> None:
    server = LiveServer(port=0).start()
    address = server.address
    client = MjpegClient(server)
    try:
        boundary = boundary_of(client.headers()["content-type"])
        server.publish(synthetic_frame(0), {})
        client.part(boundary)
        assert server.stream_clients == 1
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 2.0
        with pytest.raises((EOFError, ConnectionError)):
            client.part(boundary)  # the server closed the stream
    finally:
        client.close()
        server.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()  # nothing listens any more


def test_stop_is_prompt_with_a_client_that_stopped_reading() -> None:
    server = LiveServer(port=0, jpeg_quality=100).start()
    client = MjpegClient(server, rcvbuf=4096)  # reads the headers, then nothing: the server's sendall blocks
    rng = np.random.default_rng(0)
    try:
        client.headers()
        t0 = time.monotonic()
        for _ in range(20):  # noise compresses badly: ~20 x 600 kB, far more than the socket buffers
            server.publish(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), {})
            time.sleep(0.01)
        assert time.monotonic() - t0 < 10.0  # publish never waited for the stalled client
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 2.0
        assert server.stream_clients == 0
    finally:
        client.close()
        server.stop()


def test_client_disconnects_leave_no_traceback(
    server: LiveServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="posestream.serve")
    with Publisher(server):
        for _ in range(3):
            client = MjpegClient(server)
            client.part(boundary_of(client.headers()["content-type"]))
            client.close()  # mid-stream, while frames keep coming
        assert wait_for(lambda: server.stream_clients == 0)
        assert get(server.url + "healthz")[0] == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_port_in_use_is_an_input_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"127.0.0.1:{port}.*in use"):
            LiveServer(port=port).start()


def test_context_manager_serves_then_closes() -> None:
    with LiveServer(port=0) as server:
        address = server.address
        assert get(server.url + "healthz")[0] == 200
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()


def test_wildcard_host_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="posestream.serve")
    LiveServer(host="0.0.0.0", port=0)  # constructed only: tests bind loopback
    assert any("visible to anyone on the network" in r.getMessage() for r in caplog.records)
    caplog.clear()
    LiveServer(port=0)
    assert not caplog.records


@pytest.mark.parametrize(
    "kwargs", [{"port": -1}, {"port": 70000}, {"jpeg_quality": 0}, {"jpeg_quality": 101}]
)
def test_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        LiveServer(**kwargs)


def test_publish_rejects_non_bgr_images() -> None:
    server = LiveServer(port=0)
    with pytest.raises(ValueError, match="uint8"):
        server.publish(np.zeros((4, 4), np.uint8), {})
    with pytest.raises(ValueError, match="uint8"):
        server.publish(np.zeros((4, 4, 3), np.float32), {})
