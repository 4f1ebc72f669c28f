"""Checks shared by the tests of hostile cases: outputs that decode and parse, clean errors, tiny disks.

Importable from every test (``tests/`` is on ``sys.path`` through its conftest). Everything here
reads files with PyAV or the json module directly, never through posestream.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import av


def decode_all(path: str | os.PathLike) -> list[float]:
    """Every frame's time in seconds; raises if any packet fails to demux or decode."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"err_detect": "explode"}  # no silent error concealment
        return [float(f.time) for f in container.decode(stream)]


def parse_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every line as JSON; the file must end with a newline (whole lines only)."""
    text = Path(path).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: last line is torn: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_one_line_error(err: str, *fragments: str) -> str:
    """The error output is one line, without a traceback, containing every fragment."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("posestream: error")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


MODEL_FLAGS = ("--pose-model", "--variant", "--weights", "--detector")


def run_args(*args: object) -> list[str]:
    """``run`` arguments as strings; a run that names no model gets ``--pose-model none`` (the
    whole frame, no pose) instead of the default models, which this machine cannot download."""
    args = [str(a) for a in args]
    if args and args[0] == "run" and not any(a in MODEL_FLAGS for a in args):
        args += ["--pose-model", "none"]
    return args


def posestream_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "posestream", *run_args(*args)]


def namespaces_work() -> bool:
    """Whether ``unshare -rm`` can mount a tmpfs here (root, or unprivileged user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


def run_on_tiny_fs(folder: Path, size: str, command: list[str], keep: Path, read_only: bool = False,
                   timeout: float = 120) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``command`` with a fresh ``size`` tmpfs mounted at ``folder`` (a private mount namespace).

    The mount disappears with the namespace, so whatever the command left there is copied to
    ``keep`` before it ends. read_only: the tmpfs is read-only (a folder nobody can write, even root).
    """
    keep.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    script = (f"mount -t tmpfs -o {opts} tmpfs {shlex.quote(str(folder))} || exit 99; "
              f"{shlex.join(command)}; rc=$?; cp -a {shlex.quote(str(folder))}/. {shlex.quote(str(keep))}/; "
              "exit $rc")  # fmt: skip
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=timeout)


def write_noisy_video(path: Path, n: int, size_wh: tuple[int, int] = (160, 120), fps: int = 30,
                      audio: str | None = None) -> Path:  # fmt: skip
    """An H.264 MP4 of seeded noise (hard to compress: fills a small disk fast), made with PyAV.

    audio: an audio codec ("aac", "mp3", "pcm_s16le" in .mov/.mkv...) to add a 440 Hz tone track.
    """
    from fractions import Fraction

    import numpy as np

    w, h = size_wh
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"bf": "0", "preset": "ultrafast"}
        astream = None
        if audio:
            astream = container.add_stream(audio, rate=48000)
            astream.layout = "mono"
        samples = 0
        for i in range(n):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            while astream is not None and samples < (i + 1) * 48000 // fps:
                t = (samples + np.arange(1024)) / 48000
                tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)[None]
                aframe = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
                aframe.sample_rate, aframe.pts = 48000, samples
                samples += 1024
                for packet in astream.encode(aframe):
                    container.mux(packet)
        for s in (stream, astream):
            if s is not None:
                for packet in s.encode(None):
                    container.mux(packet)
    return path


def encode_frames(path: Path, frames, fps: int = 30, *, codec: str = "libx264", pix_fmt: str = "yuv420p",
                  options: dict | None = None, rotation: int = 0, container_options: dict | None = None,
                  fmt: str | None = None) -> Path:  # fmt: skip
    """Write ``frames`` ((H, W, 3) uint8 BGR, any iterable) as a video with PyAV; frame i at i / fps.

    rotation: a display-matrix rotation (what phones write); options: the encoder's options
    (default for x264: no B-frames, ultrafast).
    """
    from fractions import Fraction

    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = options if options is not None else ({"bf": "0", "preset": "ultrafast"} if codec == "libx264" else {})
        if rotation:
            stream.set_display_rotation(rotation)
        for i, img in enumerate(_chain(first, frames)):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _chain(first, rest):
    yield first
    yield from rest
