"""Live web view: the annotated video as an MJPEG stream plus live stats, for `run SRC --serve`.

``LiveServer`` is fed by the render/sink stage through ``publish(image_bgr, stats)`` and serves:

    /             the page (page.html, inline CSS/JS, no external assets)
    /stream.mjpg  multipart/x-mixed-replace MJPEG: every client gets the newest frame when it changes
    /stats.json   the latest stats dict, as published
    /frame.jpg    the latest frame as one JPEG (503 until the first publish)
    /healthz      "ok"

Why the standard library is enough: this is a local monitoring view for a handful of browsers on
one machine. ``ThreadingHTTPServer`` gives each connection its own daemon thread, so a long-lived
MJPEG response never holds up the accept loop or another client, and daemon threads can never keep
the process alive. The work per request is a dict lookup and one ``sendall`` of bytes encoded once
per frame, so the GIL is not the limit. An async framework would add a dependency and an event loop
to bridge from the pipeline's threads, and buy nothing at this scale.

Never blocking the pipeline: ``publish`` encodes on the caller's thread (a few ms at 640x480,
counted in that stage's timings), then swaps two references under a lock that nobody holds while
doing I/O. Clients copy the reference under the lock and write outside it, so a slow or stalled
browser only misses frames; a client that reads nothing for ``_SOCKET_TIMEOUT_S`` is dropped.

Shutdown: ``stop()`` sets a flag, wakes every waiting stream thread, stops the accept loop and
shuts down every open connection's socket (which also unblocks a ``sendall`` to a stalled client),
then waits for the handler threads to finish, all within one deadline.
"""

from __future__ import annotations

import errno
import http.server
import importlib.resources
import json
import logging
import math
import socket
import socketserver
import sys
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from posestream.errors import InputError

__all__ = ["LiveServer"]

log = logging.getLogger(__name__)

_BOUNDARY = "posestream-frame"
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
_ACCEPT_POLL_S = 0.1  # the accept loop re-checks the stop flag this often
_WAIT_SLICE_S = 0.5  # stream threads re-check the stop flag at least this often
_SOCKET_TIMEOUT_S = 10.0  # a client that reads (or sends) nothing for this long is dropped


class LiveServer:
    """Serve the newest annotated frame and stats to browsers.

    host: interface to bind; 127.0.0.1 keeps the view on this machine. A wildcard host
        (0.0.0.0, ::) makes the video visible to anyone on the network and logs a warning.
    port: TCP port; 0 picks a free one (read it back from ``address`` / ``url``).
    jpeg_quality: 1-100 for cv2.imencode; lower means less bandwidth and faster encoding.

    Use as a context manager (``with LiveServer(port=0) as live: ...``) or call ``start()`` /
    ``stop()``. ``publish`` may be called from any thread, before or after ``start()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, jpeg_quality: int = 80) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"LiveServer: port must be in 0..65535, got {port}")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"LiveServer: jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.host = host
        self.port = port
        self.jpeg_quality = jpeg_quality
        if host in _WILDCARD_HOSTS:
            log.warning(
                "live view on %s:%d is visible to anyone on the network; use 127.0.0.1 to keep it local",
                host or "*", port,
            )
        self._page = importlib.resources.files(__package__).joinpath("page.html").read_bytes()

        # Latest published state, guarded by _cond. _seq counts encoded frames (0 = none yet).
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._stats_json = b"{}"
        self._stopping = threading.Event()

        # Open connections, so stop() can shut them down and wait for their threads.
        self._conn_cond = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._stream_clients = 0

        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LiveServer:
        """Bind and serve in a daemon thread. Raises InputError if the address cannot be bound."""
        if self._httpd is not None:
            raise RuntimeError("LiveServer.start: already started")
        where = _format_hostport(self.host, self.port)
        try:
            httpd = _Httpd((self.host, self.port), self)
        except OSError as exc:  # also socket.gaierror for a host that does not resolve
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"cannot serve the live view on {where}: address already in use") from exc
            raise InputError(f"cannot serve the live view on {where}: {exc.strerror or exc}") from exc
        self._httpd = httpd
        self._thread = threading.Thread(target=self._serve, args=(httpd,), name="live-server", daemon=True)
        self._thread.start()
        log.info("live view at %s", self.url)
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Close the listening socket and every connection; returns within about ``timeout`` s.

        Safe to call twice, or without ``start()``. Frames published afterwards are ignored.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._stopping.set()
            self._cond.notify_all()  # wake every stream thread waiting for a frame
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("live view: accept loop still running after %.1f s", timeout)
        httpd.server_close()
        with self._conn_cond:
            open_now = list(self._connections)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # unblocks a sendall() to a client that stopped reading
            except OSError:
                pass  # already closed by its handler
        with self._conn_cond:
            drained = self._conn_cond.wait_for(
                lambda: not self._connections, timeout=max(0.0, deadline - time.monotonic())
            )
            if not drained:
                log.warning("live view: %d connection(s) still closing after stop()", len(self._connections))
        self._httpd = None
        self._thread = None
        log.info("live view stopped")

    def __enter__(self) -> LiveServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; the real port when constructed with port 0."""
        if self._httpd is None:
            raise RuntimeError("LiveServer.address: not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Where a browser on this machine opens the page, e.g. ``http://127.0.0.1:8080/``."""
        host, port = self.address
        if host in _WILDCARD_HOSTS:
            host = "::1" if ":" in host else "127.0.0.1"
        return f"http://{_format_hostport(host, port)}/"

    @property
    def stream_clients(self) -> int:
        """How many ``/stream.mjpg`` responses are open right now."""
        with self._conn_cond:
            return self._stream_clients

    # -- feeding ---------------------------------------------------------------------------------

    def publish(self, image_bgr: np.ndarray, stats: dict[str, Any]) -> None:
        """Make ``image_bgr`` ((H, W, 3) uint8 BGR) and ``stats`` the latest; never waits on clients.

        The image is encoded here, once, and the stats serialised (a snapshot: later changes to
        the dict are not seen). Non-finite floats become null, numpy scalars and arrays plain JSON.
        """
        if self._stopping.is_set():
            return
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(
                f"LiveServer.publish: expected (H, W, 3) uint8 BGR, got {image_bgr.shape} {image_bgr.dtype}"
            )
        ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        stats_json = json.dumps(_jsonable(stats), separators=(",", ":"), allow_nan=False).encode()
        if not ok:
            log.warning("live view: JPEG encoding failed for a %s frame; kept the last one", image_bgr.shape)
        with self._cond:
            if ok:
                self._jpeg = buf.tobytes()
                self._seq += 1
            self._stats_json = stats_json
            self._cond.notify_all()

    # -- used by the request handler -------------------------------------------------------------

    def _serve(self, httpd: _Httpd) -> None:
        # Our own loop instead of serve_forever(): shutdown() waits without a timeout.
        while not self._stopping.is_set():
            try:
                httpd.handle_request()  # returns after _ACCEPT_POLL_S when nobody connects
            except OSError:
                if not self._stopping.is_set():
                    log.exception("live view: accept loop failed")
                    return

    def _latest(self) -> tuple[bytes | None, bytes]:
        with self._cond:
            return self._jpeg, self._stats_json

    def _next_frame(self, seen: int) -> tuple[bytes | None, int]:
        """The newest JPEG once it is newer than ``seen``: ``(jpeg, seq)``; ``(None, seen)`` after
        a wait slice with nothing new. Raises _Stopping when the server is stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seen or self._stopping.is_set(), timeout=_WAIT_SLICE_S)
            if self._stopping.is_set():
                raise _Stopping
            if self._seq == seen:
                return None, seen
            return self._jpeg, self._seq

    def _track(self, sock: socket.socket, *, opened: bool) -> None:
        with self._conn_cond:
            if opened:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)
                self._conn_cond.notify_all()

    def _count_stream(self, delta: int) -> None:
        with self._conn_cond:
            self._stream_clients += delta


class _Stopping(Exception):
    """Raised in a stream thread when the server is stopping."""


class _Httpd(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # LiveServer.stop() waits for the handler threads itself, with a deadline
    request_queue_size = 16
    timeout = _ACCEPT_POLL_S

    def __init__(self, address: tuple[str, int], live: LiveServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.live = live
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn(): a reverse DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called from inside an `except` by socketserver; the default prints a traceback to stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("live view: client %s went away: %s", client_address, exc)
        else:
            log.exception("live view: request from %s failed", client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Httpd
    server_version = "posestream"
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads to reap
    timeout = _SOCKET_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        self.server.live._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.live._track(self.connection, opened=False)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        live = self.server.live
        path = urlsplit(self.path).path
        try:
            if path == "/stream.mjpg":
                self._stream(live)
            elif path in ("/", "/index.html"):
                self._reply(200, "text/html; charset=utf-8", live._page)
            elif path == "/stats.json":
                self._reply(200, "application/json", live._latest()[1])
            elif path == "/frame.jpg":
                jpeg = live._latest()[0]
                if jpeg is None:
                    self._reply(503, "text/plain; charset=utf-8", b"no frame published yet\n")
                else:
                    self._reply(200, "image/jpeg", jpeg)
            elif path == "/healthz":
                self._reply(200, "text/plain; charset=utf-8", b"ok\n")
            else:
                self._reply(404, "text/plain; charset=utf-8", b"not found\n")
        except OSError as exc:  # the browser closed the tab, or stop() shut the socket
            log.debug("live view: %s %s ended: %s", self.address_string(), path, exc)

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, live: LiveServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        live._count_stream(+1)
        seen = 0  # sequence 0 means "no frame": the current frame, if any, goes out at once
        try:
            while True:
                jpeg, seen = live._next_frame(seen)
                if jpeg is None:
                    continue
                head = f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode("ascii") + jpeg + b"\r\n")
        except _Stopping:
            pass
        finally:
            live._count_stream(-1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        log.debug("live view: %s %s", self.address_string(), format % args)


def _format_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy scalars/arrays unpacked, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
