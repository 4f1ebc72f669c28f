"""The live page in headless Chromium: frames arrive in the <img>, stats update, the banner shows.

Chromium is driven over the Chrome DevTools Protocol (CDP) with a minimal standard-library
websocket client below (RFC 6455: handshake, masked client frames, unmasked server frames).
CI installs the browser with ``apt-get install -y chromium``; without it the test is skipped.
Set ``POSESTREAM_SAVE_SCREENSHOT=1`` to also copy the screenshot to ``reports/serve_screenshot.png``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest

from posestream.serve.server import LiveServer

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0  # Chromium's first start on a busy 2-core machine
STEP_TIMEOUT_S = 10.0  # each thing the test waits for in the page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium absent (CI: apt-get install -y chromium)"
    ),
]


# -- a minimal CDP client over a websocket --------------------------------------------------------

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # fixed by RFC 6455


class CdpSession:
    """One websocket to one DevTools target; ``call`` sends a command and returns its result."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        url = urlsplit(ws_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (url.path.encode(), url.hostname.encode(), url.port, key)
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "101", f"websocket handshake refused: {lines[0]}"
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode()
        assert headers.get("sec-websocket-accept") == accept, "not a websocket server"
        self.next_id = 0

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("DevTools websocket closed")
        return chunk

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = bytes([0x80 | opcode, 0x80 | n])
        elif n < 1 << 16:
            header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)  # clients must mask every frame
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        self.sock.sendall(header + mask + masked)

    def _read_message(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise EOFError("DevTools websocket closed by the browser")
            if opcode == 0x9:
                self._send_frame(0xA, payload)  # pong
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if b0 & 0x80:  # FIN
                    return b"".join(parts).decode()

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = STEP_TIMEOUT_S) -> Any:
        self.next_id += 1
        command = {"id": self.next_id, "method": method, "params": params or {}}
        self._send_frame(0x1, json.dumps(command).encode())
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            message = json.loads(self._read_message())
            if message.get("id") == self.next_id:  # anything else is an event: ignored
                if "error" in message:
                    raise RuntimeError(f"CDP {method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page JS failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Callable[[str], CdpSession]]:
    """Opens a URL in headless Chromium and returns a CDP session on its page; cleans up after."""
    procs: list[subprocess.Popen[bytes]] = []
    sessions: list[CdpSession] = []
    stderr_path = tmp_path / "chromium.stderr"

    def open_page(url: str) -> CdpSession:
        profile = tmp_path / "profile"
        args = [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
            "--no-default-browser-check", "--window-size=1280,760", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", url,
        ]  # fmt: skip
        with stderr_path.open("wb") as stderr:
            # its own session, so cleanup can end Chromium's helper processes with it
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        procs.append(proc)
        port_file = profile / "DevToolsActivePort"  # Chromium writes "<port>\n<browser path>" here

        def started_or_exited() -> bool:
            return proc.poll() is not None or (port_file.is_file() and "\n" in port_file.read_text())

        wait_until(started_or_exited, START_TIMEOUT_S)
        assert port_file.is_file() and proc.poll() is None, f"Chromium did not start:\n{tail(stderr_path)}"
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=STEP_TIMEOUT_S) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        assert pages, "Chromium opened no page"
        sessions.append(CdpSession(pages[0]["webSocketDebuggerUrl"], timeout=STEP_TIMEOUT_S))
        return sessions[-1]

    yield open_page

    for session in sessions:
        try:
            session.call("Browser.close", timeout=5)
        except (OSError, EOFError, RuntimeError):
            pass  # the browser may close the socket before answering
        session.close()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("Chromium did not close; killing its process group %d", proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (renderer, zygote) that outlived it
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def wait_until(predicate: Callable[[], Any], timeout: float, period: float = 0.1) -> Any:
    """The first truthy value of ``predicate()`` within ``timeout`` s, else the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(period)


def tail(path: Path, n: int = 2000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no output)"


# -- a fake pipeline ------------------------------------------------------------------------------


def fake_frame(index: int) -> np.ndarray:
    """(360, 640, 3) uint8 BGR: a dark scene, a box sweeping across, the frame number in big digits."""
    image = np.zeros((360, 640, 3), np.uint8)
    image[:] = (40, 28, 22)
    x = 40 + (index * 7) % 520
    cv2.rectangle(image, (x, 110), (x + 80, 300), (80, 200, 90), 2)
    cv2.circle(image, (x + 40, 135), 14, (90, 220, 255), -1)
    cv2.putText(image, f"frame {index}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3)
    return image


def fake_stats(index: int, t0: float) -> dict[str, Any]:
    stages = [("decode", 2.1), ("detect", 18.4), ("track", 0.6), ("pose", 24.9), ("smooth", 0.2),
              ("render", 3.3)]  # fmt: skip
    return {
        "frame": index,
        "fps": 15.0 + (index % 5) * 0.1,
        "people": 1 + index % 3,
        "latency_ms": {"capture_to_render": 61.5 + index % 7},
        "drops": index // 20,
        "stages": [
            {"name": name, "p50_ms": ms, "p95_ms": ms * 1.6, "busy": min(1.0, ms / 27), "queue": i % 3,
             "dropped": index // 20 if name == "detect" else 0}
            for i, (name, ms) in enumerate(stages)
        ],  # fmt: skip
        "source": "synthetic://test",
        "model": "vitpose-s (test)",
        "random_weights": True,
        "uptime_s": time.monotonic() - t0,
    }


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    stop = threading.Event()
    with LiveServer(host="127.0.0.1", port=0) as server:

        def publish() -> None:
            index, t0 = 0, time.monotonic()
            while not stop.is_set():
                server.publish(fake_frame(index), fake_stats(index, t0))
                index += 1
                stop.wait(1 / 15)  # 15 fps keeps the shared CPUs calm

        thread = threading.Thread(target=publish, name="test-publisher", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            stop.set()
            thread.join(timeout=5)


# JS run in the page: what the user sees, read from the DOM.
READ_PAGE = """(() => {
  const img = document.getElementById("stream");
  const banner = document.getElementById("banner");
  if (!img || !banner || !window.posestream) return null;  // page still loading
  return {
    width: img.naturalWidth, height: img.naturalHeight,
    frame: document.getElementById("frame").textContent,
    fps: document.getElementById("fps").textContent,
    stageRows: document.querySelectorAll("#stages tr").length,
    stagesText: document.getElementById("stages").textContent,
    banner: getComputedStyle(banner).display !== "none" ? banner.textContent : null,
    statsUpdates: window.posestream.statsUpdates,
  };
})()"""

# A signature of the pixels currently shown by the <img> (same origin, so the canvas is readable).
IMG_SIGNATURE = """(() => {
  const img = document.getElementById("stream");
  const c = document.createElement("canvas");
  c.width = 64; c.height = 36;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0, c.width, c.height);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0;
  return h;
})()"""


def test_page_shows_live_frames_and_stats(
    live_server: LiveServer, chromium: Callable[[str], CdpSession], tmp_path: Path
) -> None:
    page = chromium(live_server.url)

    # 1. Frames arrive: the <img> has decoded the stream at the published size.
    first = wait_until(lambda: (lambda s: s if s and s["width"] > 0 and s["frame"].isdigit() else None)(
        page.evaluate(READ_PAGE)), START_TIMEOUT_S)  # fmt: skip
    assert first, f"no frame or stats in the page: {page.evaluate(READ_PAGE)}"
    assert (first["width"], first["height"]) == (640, 360)

    # 2. ... and keep arriving: the pixels shown change.
    signature = page.evaluate(IMG_SIGNATURE)
    assert wait_until(lambda: page.evaluate(IMG_SIGNATURE) != signature, STEP_TIMEOUT_S), "the image froze"

    # 3. Stats update: the displayed frame number increases.
    later = wait_until(lambda: (lambda s: s if int(s["frame"]) > int(first["frame"]) else None)(
        page.evaluate(READ_PAGE)), STEP_TIMEOUT_S)  # fmt: skip
    assert later, f"frame number stuck at {first['frame']}"
    assert later["statsUpdates"] > first["statsUpdates"]

    # 4. Everything published is rendered: stage table, fps, the random-weights banner.
    assert later["stageRows"] == 6 and "detect" in later["stagesText"] and "pose" in later["stagesText"]
    assert float(later["fps"]) >= 15.0
    assert later["banner"] == "random weights: keypoints are meaningless"

    # 5. A screenshot to look at.
    png = base64.b64decode(page.call("Page.captureScreenshot", {"format": "png"})["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    shot = tmp_path / "serve_screenshot.png"
    shot.write_bytes(png)
    if os.environ.get("POSESTREAM_SAVE_SCREENSHOT"):
        (REPO / "reports").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "reports" / "serve_screenshot.png")
