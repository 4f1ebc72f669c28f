"""Where ViTPose weights come from: an explicit path, a known released file, or none (random).

Known files are the easy_ViTPose releases of the official ViTPose COCO weights (mmpose 0.x key
layout), hosted on the Hugging Face Hub in ``JunkyByte/easy_ViTPose``. Each entry pins the Hub
revision and carries the byte size and sha256 of the file, checked (streaming) every time the file
is resolved, so a half-finished download or a different file never loads silently.

Pinned revision: ``2757e82adcccda02f9f7fef66e5a115b7be439fe`` is the commit the Hub cache of
several independent users of this repo holds for ``torch/coco/vitpose-b-coco.pth`` and the other
released files (``models--JunkyByte--easy_ViTPose/snapshots/<commit>/...`` in public code). The
machines this was written on have no network, so the revision could not be queried live; the
sha256 check is what guarantees the content either way.

Cache: ``$POSESTREAM_CACHE`` or ``~/.cache/posestream``; a known file lives at
``<cache>/<path in the Hub repo>``, e.g. ``~/.cache/posestream/torch/coco/vitpose-s-coco.pth``.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from posestream.errors import ModelFileError
from posestream.models.checkpoint import sha256_of_file
from posestream.models.vitpose import canonical_variant
from posestream.paths import cache_dir as _cache_dir

__all__ = [
    "KnownWeights",
    "KNOWN_WEIGHTS",
    "RANDOM_WEIGHTS_WARNING",
    "default_cache_dir",
    "known_weights",
    "resolve_weights",
    "verify_file",
]

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "WARNING: RANDOM WEIGHTS. This ViTPose model was not loaded from a checkpoint: its keypoints are "
    "noise. Pass --weights vitpose-s-coco (or a .pth/.safetensors path) for a real model."
)

HF_REPO = "JunkyByte/easy_ViTPose"
HF_REVISION = "2757e82adcccda02f9f7fef66e5a115b7be439fe"
_ETAG_TIMEOUT_S = 5.0  # the Hub's metadata request
_CONNECT_TIMEOUT_S = 3.0  # pre-flight TCP connect to the Hub (see _hub_unreachable)


@dataclass(frozen=True, slots=True)
class KnownWeights:
    """One released file. ``kind`` is 'torch' (a state dict) or 'onnx' (a whole exported model)."""

    name: str
    variant: str
    decoder: str
    num_keypoints: int
    kind: str
    repo_id: str
    filename: str  # path inside the Hub repo, also the path inside the cache dir
    revision: str
    size_bytes: int
    sha256: str

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/{self.revision}/{self.filename}"


def _known(name: str, variant: str, kind: str, filename: str, size: int, sha256: str) -> KnownWeights:
    return KnownWeights(name, variant, "classic", 17, kind, HF_REPO, filename, HF_REVISION, size, sha256)


# Sizes and hashes: ../shared/DATA.md (the official files). Names without an extension mean the .pth.
KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    k.name: k
    for k in (
        _known("vitpose-s-coco.pth", "s", "torch", "torch/coco/vitpose-s-coco.pth", 97_217_406,
               "d5399f0e60a74fe8b48e8a3692dd7311aa307b552cd2412a90452308d7372c66"),
        _known("vitpose-b-coco.pth", "b", "torch", "torch/coco/vitpose-b-coco.pth", 360_033_150,
               "776115a5187b570bde410e592a5fcd1f2763844c3acd0a3662c86b00ff0800a1"),
        _known("vitpose-s-coco.onnx", "s", "onnx", "onnx/coco/vitpose-s-coco.onnx", 97_280_548,
               "43b38f69aaabee526d928b345eb791c7896b536dda66f01a34c49691bf22da05"),
        _known("vitpose-b-coco.onnx", "b", "onnx", "onnx/coco/vitpose-b-coco.onnx", 360_096_343,
               "532bc22c4b6d84bc8e3acf0bfc64607e24d4853b152ae7109456861a7c8903c2"),
    )
}  # fmt: skip


def default_cache_dir() -> Path:
    """``$POSESTREAM_CACHE`` if set, else ``~/.cache/posestream``."""
    return _cache_dir()


def known_weights(name: str) -> KnownWeights | None:
    """The table entry for ``name`` ('vitpose-s-coco' = 'vitpose-s-coco.pth'), or None."""
    key = name.strip().lower()
    return KNOWN_WEIGHTS.get(key) or KNOWN_WEIGHTS.get(key + ".pth")


def verify_file(path: Path, known: KnownWeights) -> None:
    """Raise ModelFileError unless ``path`` has the known size and sha256 (hashed in 1 MiB chunks)."""
    size = path.stat().st_size
    if size != known.size_bytes:
        raise ModelFileError(
            f"weights file {path}: {size:,} bytes, expected {known.size_bytes:,} for {known.name} "
            f"(incomplete download? delete it and download {known.url} again)"
        )
    digest = sha256_of_file(path)
    if digest != known.sha256:
        raise ModelFileError(
            f"weights file {path}: sha256 {digest} does not match {known.name}'s {known.sha256} "
            f"(corrupt or a different file; delete it and download {known.url} again)"
        )


def resolve_weights(
    spec: str | os.PathLike[str] | None, variant: str | None, cache_dir: Path | None = None
) -> Path | None:
    """Turn a ``--weights`` value into a file, or None for random weights.

    spec: a path to an existing file; ``'none'`` (or None / '') for random weights (callers must then
        print ``RANDOM_WEIGHTS_WARNING``); or a known name from ``KNOWN_WEIGHTS`` such as
        ``'vitpose-s-coco'``, taken from the cache dir when present and verified, else downloaded from
        the Hugging Face Hub at the pinned revision into the cache dir.
    variant: the model variant the caller will build ('s', 'b', ...); a known file of another
        variant is an error here rather than a shape mismatch later. None: no check.

    Raises ModelFileError at once (never hangs) when a path does not exist, a known file is
    corrupt, or it cannot be downloaded: offline (``HF_HUB_OFFLINE=1``) or no network. The message
    says what to download, from where, and where to put it.
    """
    if spec is None or str(spec).strip().lower() in ("", "none", "random"):
        log.warning(RANDOM_WEIGHTS_WARNING)
        return None
    text = str(spec).strip()
    known = known_weights(text)
    if known is None:
        path = Path(text).expanduser()
        if not path.is_file():
            names = ", ".join(sorted({k.name.removesuffix(".pth") for k in KNOWN_WEIGHTS.values()}))
            raise ModelFileError(
                f"--weights {text}: no such file, and not a known name (known: {names}; or 'none' for random)"
            )
        return path

    wanted = canonical_variant(variant) if variant is not None else known.variant
    if known.variant != wanted:
        raise ModelFileError(
            f"--weights {text}: is ViTPose-{known.variant.upper()} weights but the model is "
            f"ViTPose-{wanted.upper()} (use --variant {known.variant})"
        )
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / known.filename
    if target.is_file():
        verify_file(target, known)
        return target
    return _download(known, cache, target)


def _download(known: KnownWeights, cache: Path, target: Path) -> Path:
    hint = (
        f"download {known.url} ({known.size_bytes / 1e6:.0f} MB, sha256 {known.sha256[:12]}...) "
        f"and put it at {target}, or pass --weights PATH"
    )
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        # Checked here rather than left to huggingface_hub: it reads HF_HUB_OFFLINE once, at import.
        raise ModelFileError(f"weights {known.name}: not in the cache and HF_HUB_OFFLINE is set: {hint}")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HTTPError

    # huggingface_hub retries a failed metadata request 5 times with backoff (~25 s without a
    # network); one short TCP connect first turns "no network" into an error in seconds.
    reason = _hub_unreachable(constants.ENDPOINT)
    if reason is not None:
        raise ModelFileError(
            f"weights {known.name}: not in the cache and the Hub is unreachable ({reason}): {hint}"
        )

    log.info("downloading %s from %s@%s to %s", known.filename, known.repo_id, known.revision, cache)
    try:
        path = Path(
            hf_hub_download(
                known.repo_id,
                known.filename,
                revision=known.revision,
                local_dir=cache,
                etag_timeout=_ETAG_TIMEOUT_S,
            )
        )
    except (EntryNotFoundError, HTTPError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"weights {known.name}: download failed ({type(exc).__name__}: {reason}): {hint}"
        ) from exc
    verify_file(path, known)
    return path


def _hub_unreachable(endpoint: str) -> str | None:
    """None when a TCP connection to ``endpoint`` opens within a few seconds, else the reason."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or type(exc).__name__}"
