"""Where ViTPose weights come from: an explicit path, a known released file, a Hub repo, or none.

Known files are the table of ``posestream.models.known_weights`` (every easy_ViTPose release and
the transformers Hub repos). Resolution of a known name:

1. the cache: ``<cache>/<path in the Hub repo>``, e.g. ``~/.cache/posestream/torch/coco/vitpose-s-coco.pth``
   (transformers repos: ``<cache>/hub/<owner>--<name>/``), verified before use;
2. else a download through ``huggingface_hub`` at the table's revision into that place, verified.

Verification follows the entry's ``verify``: ``sha256`` = the pinned size and sha256 (streamed in
1 MiB chunks); ``hub-lfs`` = the size and LFS sha256 the Hub reports for the file (its HEAD
metadata), checked after the download and recorded in ``<file>.sha256`` so a later run re-checks
the cached bytes against it without the network. A hub-lfs file placed in the cache by hand (no
record) is used with a warning when the Hub cannot be asked.

Cache: ``$POSESTREAM_CACHE`` or ``~/.cache/posestream``. Offline (``HF_HUB_OFFLINE=1``) or without a
network every failure is immediate and says what to download, from where, and where to put it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

from posestream.errors import ModelFileError
from posestream.models.checkpoint import sha256_of_file
from posestream.models.known_weights import KNOWN_WEIGHTS, KnownWeights, known_weight_names, known_weights
from posestream.models.vitpose import canonical_variant
from posestream.paths import cache_dir as _cache_dir

__all__ = [
    "KnownWeights",
    "KNOWN_WEIGHTS",
    "RANDOM_WEIGHTS_WARNING",
    "default_cache_dir",
    "known_weights",
    "cache_path",
    "resolve_weights",
    "resolve_known",
    "verify_file",
    "verify_lfs_file",
    "is_offline",
    "hub_unreachable",
]

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "WARNING: RANDOM WEIGHTS. This ViTPose model was not loaded from a checkpoint: its keypoints are "
    "noise. Pass --weights vitpose-s-coco (or a .pth/.safetensors path) for a real model."
)

_ETAG_TIMEOUT_S = 5.0  # the Hub's metadata request
_CONNECT_TIMEOUT_S = 3.0  # pre-flight TCP connect to the Hub (see hub_unreachable)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def default_cache_dir() -> Path:
    """``$POSESTREAM_CACHE`` if set, else ``~/.cache/posestream``."""
    return _cache_dir()


def cache_path(known: KnownWeights, cache_dir: Path | None = None) -> Path:
    """Where ``known`` lives in the cache (a folder for a transformers repo)."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if known.filename is None:
        return cache / "hub" / known.repo_id.replace("/", "--")
    return cache / known.filename


def is_offline() -> bool:
    """HF_HUB_OFFLINE set (read here: huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify_file(path: Path, known: KnownWeights) -> None:
    """Raise ModelFileError unless ``path`` is ``known``'s file (see the module docstring)."""
    size = path.stat().st_size
    if known.verify == "sha256":
        expected_size, expected_sha = known.size_bytes, known.sha256
    else:
        record = _record(path)
        if not record.is_file():
            log.warning("%s: no recorded hash (placed by hand?); not verified", path)
            return
        expected_sha, _, size_text = record.read_text().strip().partition(" ")
        expected_size = int(size_text) if size_text.isdigit() else None
    if expected_size is not None and size != expected_size:
        raise ModelFileError(
            f"weights file {path}: {size:,} bytes, expected {expected_size:,} for {known.name} "
            f"(incomplete download? delete it and download {known.url} again)"
        )
    digest = sha256_of_file(path)
    if digest != expected_sha:
        raise ModelFileError(
            f"weights file {path}: sha256 {digest} does not match {known.name}'s {expected_sha} "
            f"(corrupt or a different file; delete it and download {known.url} again)"
        )


def verify_lfs_file(
    path: Path, repo_id: str, filename: str, revision: str, endpoint: str | None = None
) -> str:
    """Check a downloaded file against the size and LFS sha256 the Hub reports; record the hash.

    Returns the sha256. ModelFileError naming the file when the bytes differ. A file the Hub keeps
    in git rather than LFS has no sha256 in its metadata: only the size is checked then.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, timeout=_ETAG_TIMEOUT_S, endpoint=endpoint)
    except Exception as exc:  # noqa: BLE001 - httpx / HfHubHTTPError / OSError: one message either way
        raise ModelFileError(f"{url}: cannot read the Hub's metadata to verify {path} ({exc})") from exc
    size = path.stat().st_size
    if meta.size is not None and size != meta.size:
        raise ModelFileError(f"weights file {path}: {size:,} bytes, the Hub says {meta.size:,} for {url}")
    digest = sha256_of_file(path)
    expected = (meta.etag or "").strip('"').lower()
    if _SHA256.match(expected) and digest != expected:
        raise ModelFileError(
            f"weights file {path}: sha256 {digest} does not match the Hub's LFS hash {expected}"
        )
    if not _SHA256.match(expected):
        log.info("%s: the Hub gives no LFS sha256 for it (a git file); size checked only", url)
    _record(path).write_text(f"{digest} {size}\n")
    return digest


def resolve_known(known: KnownWeights, cache_dir: Path | None = None, endpoint: str | None = None) -> Path:
    """The verified local copy of ``known`` (downloaded into the cache when absent)."""
    target = cache_path(known, cache_dir)
    if known.kind == "transformers":
        from posestream.models.hub import download_hub_repo

        return download_hub_repo(known.repo_id, target.parent.parent, known.revision, endpoint)
    if target.is_file():
        verify_file(target, known)
        return target
    return _download(known, target, endpoint)


def resolve_weights(
    spec: str | os.PathLike[str] | None,
    variant: str | None,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
) -> Path | None:
    """Turn a ``--weights`` value into a file (or a transformers folder), or None for random weights.

    spec: a path to an existing file or transformers folder; ``'none'`` (or None / '') for random
        weights (callers must then print ``RANDOM_WEIGHTS_WARNING``); a known name of
        ``KNOWN_WEIGHTS`` such as ``'vitpose-s-wholebody'``, taken from the cache dir when present
        and verified, else downloaded into the cache dir; or a Hub repo id ('owner/name') of a
        transformers ViTPose, downloaded into ``<cache>/hub/``.
    variant: the model variant the caller will build ('s', 'b', ...); a known file of another
        variant is an error here rather than a shape mismatch later. None: no check.
    endpoint: the Hub's URL (default: huggingface_hub's, ``HF_ENDPOINT``).

    Raises ModelFileError at once (never hangs) when a path does not exist, a known file is
    corrupt, or it cannot be downloaded: offline (``HF_HUB_OFFLINE=1``) or no network.
    """
    if spec is None or str(spec).strip().lower() in ("", "none", "random"):
        log.warning(RANDOM_WEIGHTS_WARNING)
        return None
    text = str(spec).strip()
    known = known_weights(text)
    if known is None:
        path = Path(text).expanduser()
        if path.is_file() or path.is_dir():
            return path
        from posestream.models.hub import download_hub_repo, is_hub_id

        if is_hub_id(text):
            cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            return download_hub_repo(text, cache, None, endpoint)
        sets = sorted({k.keypoint_set for k in KNOWN_WEIGHTS.values()})
        raise ModelFileError(
            f"--weights {text}: no such file, and not a known name (vitpose-<s|b|l|h>-<set>[.onnx] for "
            f"set in {', '.join(sets)}; {len(known_weight_names())} in all, `posestream models` lists "
            "them; or a "
            "Hub id owner/name; or 'none' for random)"
        )
    wanted = canonical_variant(variant) if variant is not None else known.variant
    if known.variant != wanted:
        raise ModelFileError(
            f"--weights {text}: is ViTPose-{known.variant.upper()} weights but the model is "
            f"ViTPose-{wanted.upper()} (use --variant {known.variant})"
        )
    return resolve_known(known, cache_dir, endpoint)


def _download(known: KnownWeights, target: Path, endpoint: str | None) -> Path:
    size = (
        f"{known.size_bytes / 1e6:.0f} MB, sha256 {known.sha256[:12]}..."
        if known.sha256
        else "size from the Hub"
    )
    hint = f"download {known.url} ({size}) and put it at {target}, or give a local file in place of {known.name!r}"
    if is_offline():
        raise ModelFileError(f"weights {known.name}: not in the cache and HF_HUB_OFFLINE is set: {hint}")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    endpoint = endpoint or constants.ENDPOINT
    # huggingface_hub retries a failed metadata request 5 times with backoff (~25 s without a
    # network); one short TCP connect first turns "no network" into an error in seconds.
    reason = hub_unreachable(endpoint)
    if reason is not None:
        raise ModelFileError(
            f"weights {known.name}: not in the cache and the Hub is unreachable ({reason}): {hint}"
        )
    cache = target.parents[len(Path(known.filename).parts) - 1]  # local_dir: the repo's root in the cache
    log.info("downloading %s from %s@%s to %s", known.filename, known.repo_id, known.revision, cache)
    try:
        path = Path(hf_hub_download(known.repo_id, known.filename, revision=known.revision, local_dir=cache,
                                    etag_timeout=_ETAG_TIMEOUT_S, endpoint=endpoint))  # fmt: skip
    except (EntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"weights {known.name}: download failed ({type(exc).__name__}: {reason}): {hint}"
        ) from exc
    if known.verify == "sha256":
        verify_file(path, known)
    else:
        verify_lfs_file(path, known.repo_id, known.filename, known.revision, endpoint)
    return path


def hub_unreachable(endpoint: str) -> str | None:
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
