"""Models on demand: known names -> verified files in the cache, exported once per precision, reused.

Two kinds of names:

* **pose models**: the known ViTPose weights of ``posestream.models.known_weights.KNOWN_WEIGHTS``,
  the one table of them (every easy_ViTPose release, sets x sizes, .pth and .onnx, and the
  transformers Hub repos; it pins each file's Hub revision and says how it is verified: size and
  sha256 where known, else the Hub's LFS hash). A .pth name (``vitpose-s-coco``,
  ``vitpose-l-wholebody``, ...) run on an ONNX engine needs an ONNX file: it is exported from the
  checkpoint once per precision, with its keypoint set in the metadata, verified against PyTorch
  (``posestream.export.onnx``), and kept in the cache as
  ``exported/<name>-<key>-<precision>.onnx`` (key: sha256[:12] of the weights where the table pins
  it, else the pinned revision's first 12 characters); later runs open that file and never read the
  checkpoint again. ``.onnx`` names are fetched as they are (``--pose-model vitpose-l-wholebody.onnx``),
  Hub repo ids are read with ``--weights``. (Compiled engine blobs, e.g. OpenVINO's, are the
  runtime's cache, not this one.) The export step itself (``pose_model_file``, ``pull``) lives in
  ``posestream.export.on_demand``: this module only names things and finds them, so ``models``
  never imports ``export`` (which imports ``runtime``, which imports ``models``).
* **detectors**: ``KNOWN_DETECTORS`` below, the official ONNX files of the YOLOX releases, fetched
  over HTTPS into ``detectors/<file>``, size and sha256 checked before the file is ever opened.

Cache folder: ``$POSESTREAM_CACHE`` or ``~/.cache/posestream`` (``default_cache_dir``). A file that
is not there is downloaded once; without a network (``HF_HUB_OFFLINE=1`` / ``POSESTREAM_OFFLINE=1``,
or the host unreachable) the error is one line saying which URL to fetch and where to put the
file. A file whose size differs from the table is never loaded.

Defaults (``DEFAULT_POSE_MODEL``, ``DEFAULT_DETECTOR``) are what ``posestream run SOURCE`` uses
when no model is named anywhere (``with_default_models``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posestream.errors import ModelFileError
from posestream.models.known_weights import KNOWN_WEIGHTS, KnownWeights, known_weights
from posestream.paths import cache_dir

__all__ = [
    "KnownDetector",
    "KNOWN_DETECTORS",
    "DEFAULT_POSE_MODEL",
    "DEFAULT_DETECTOR",
    "EXPORT_PRECISIONS",
    "ModelRow",
    "is_model_name",
    "is_known_pose_model",
    "is_known_detector",
    "known_detector",
    "detector_file",
    "model_rows",
    "cache_dir",
    "exported_path",
    "pose_entry",
    "export_key",
    "cache_folder",
]

log = logging.getLogger(__name__)

DEFAULT_POSE_MODEL = "vitpose-s-coco"
DEFAULT_DETECTOR = "yolox-nano"
# Runtime precision (pose.precision) -> precision of the exported ONNX file. bf16 is an engine
# setting (OpenVINO, torch) applied to the fp32 graph, and int8 is quantised from the fp32 file by
# the runtime (which caches that), so they share the fp32 export; fp16 runs a file exported as fp16.
EXPORT_PRECISIONS = {"auto": "fp32", "fp32": "fp32", "bf16": "fp32", "int8": "fp32", "fp16": "fp16"}
_DOWNLOAD_TIMEOUT_S = 10.0  # connect / read timeout of a detector download
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class KnownDetector:
    """One released detector file.

    size_bytes: the release asset's size, checked before anything else (a file of another size is
        never loaded). sha256: None where no hash could be established when the table was written
        (the file is then checked by size only, and the hash of what was downloaded is logged).
    """

    name: str
    title: str
    filename: str
    url: str
    size_bytes: int
    sha256: str | None
    input_size: int
    note: str = ""


_YOLOX = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"

# The official YOLOX 0.1.1rc0 release assets (Apache-2.0, Megvii). Sizes and hashes: recorded by
# independent public projects that pin these assets (two or more agree for nano, tiny, s and l);
# they could not be downloaded from the machines this was written on.
KNOWN_DETECTORS: dict[str, KnownDetector] = {
    d.name: d
    for d in (
        KnownDetector("yolox-nano", "YOLOX-Nano (0.91 M params, COCO mAP 25.8)", "yolox_nano.onnx",
                      _YOLOX + "yolox_nano.onnx", 3_659_407,
                      "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d", 416),
        KnownDetector("yolox-tiny", "YOLOX-Tiny (5.06 M, mAP 32.8)", "yolox_tiny.onnx",
                      _YOLOX + "yolox_tiny.onnx", 20_219_662,
                      "427cc366d34e27ff7a03e2899b5e3671425c262ea2291f88bb942bc1cc70b0f7", 416),
        KnownDetector("yolox-s", "YOLOX-S (9.0 M, mAP 40.5)", "yolox_s.onnx",
                      _YOLOX + "yolox_s.onnx", 35_858_002,
                      "c5c2d13e59ae883e6af3b45daea64af4833a4951c92d116ec270d9ddbe998063", 640),
        KnownDetector("yolox-m", "YOLOX-M (25.3 M, mAP 47.2)", "yolox_m.onnx",
                      _YOLOX + "yolox_m.onnx", 101_259_744, None, 640,
                      note="sha256 not known here: checked by size only"),
        KnownDetector("yolox-l", "YOLOX-L (54.2 M, mAP 50.1)", "yolox_l.onnx",
                      _YOLOX + "yolox_l.onnx", 216_746_733,
                      "7860ae79de6c89a3c1eb72ae9a2756c0ccfbe04b7791bb5880afabd97855a411", 640),
    )
}  # fmt: skip


# --------------------------------------------------------------------------- names
# The known-weights table is pure data (no torch): resolving and exporting import torch lazily, so a
# run with a detector and ONNX files never loads torch through this module.
def pose_entry(name: str) -> KnownWeights | None:
    """The checkpoint entry a pose-model name refers to (PyTorch weights: what gets exported)."""
    entry = known_weights(name)
    return entry if entry is not None and entry.kind == "torch" else None


def is_model_name(value: str | None) -> bool:
    """Whether a --pose-model / --detector value is meant as a name: no path separator, no suffix, no
    ``scheme:`` (``torch:vitpose-b``), and no file of that name here. Anything else is a file."""
    if not value:
        return False
    return not any(c in value for c in "/\\:") and not Path(value).suffix and not Path(value).exists()


def is_known_pose_model(name: str | None) -> bool:
    return bool(name) and pose_entry(str(name)) is not None


def known_detector(name: str) -> KnownDetector | None:
    return KNOWN_DETECTORS.get(name.strip().lower().replace("_", "-"))


def is_known_detector(name: str | None) -> bool:
    return bool(name) and known_detector(str(name)) is not None


def _pose_names() -> list[str]:
    """The exportable pose-model names (the .pth entries, without the suffix), in table order."""
    return [k.name.removesuffix(".pth") for k in KNOWN_WEIGHTS.values() if k.kind == "torch"]


def export_key(entry: KnownWeights) -> str:
    """What names an export of ``entry``'s weights: their pinned sha256, else the pinned revision."""
    return (entry.sha256 or entry.revision)[:12]


def cache_folder(folder: Path | None) -> Path:
    """``folder``, else the cache folder (``$POSESTREAM_CACHE``, else ``~/.cache/posestream``)."""
    return Path(folder).expanduser() if folder is not None else cache_dir()


# --------------------------------------------------------------------------- pose models
def exported_path(name: str, precision: str = "fp32", cache_dir: Path | None = None) -> Path:
    """Where the exported ONNX of pose model ``name`` at ``precision`` lives in the cache."""
    entry = pose_entry(name)
    if entry is None:
        raise ModelFileError(
            f"pose model '{name}': no such file, and not a known name (known: {', '.join(_pose_names())}; "
            "or 'none' for boxes and ids only)"
        )
    if precision not in EXPORT_PRECISIONS:
        raise ModelFileError(f"precision '{precision}': expected one of {', '.join(EXPORT_PRECISIONS)}")
    stem = entry.name.removesuffix(".pth")
    return cache_folder(cache_dir) / "exported" / f"{stem}-{export_key(entry)}-{EXPORT_PRECISIONS[precision]}.onnx"


# --------------------------------------------------------------------------- detectors
def detector_file(name: str, cache_dir: Path | None = None) -> Path:
    """The ONNX file of known detector ``name``: from the cache (checked), else downloaded now."""
    known = known_detector(name)
    if known is None:
        raise ModelFileError(
            f"detector '{name}': no such file, and not a known name "
            f"(known: {', '.join(KNOWN_DETECTORS)}; or 'none' for one box = the whole frame)"
        )
    target = cache_folder(cache_dir) / "detectors" / known.filename
    if target.is_file():
        _verify(target, known)
        return target
    _download(known, target)
    return target


def _hint(known: KnownDetector, target: Path) -> str:
    return (
        f"download {known.url} ({known.size_bytes / 1e6:.1f} MB) and put it at {target}, "
        "or pass --detector PATH"
    )


def _verify(path: Path, known: KnownDetector, digest: str | None = None) -> None:
    size = path.stat().st_size
    if size != known.size_bytes:
        raise ModelFileError(
            f"detector file {path}: {size:,} bytes, expected {known.size_bytes:,} for {known.name} "
            f"(incomplete download or another file; delete it and {_hint(known, path)})"
        )
    if known.sha256 is None:
        log.warning("detector %s: no sha256 is recorded for it, checked by size only (sha256 %s)",
                    known.name, digest or _sha256(path))  # fmt: skip
        return
    digest = digest or _sha256(path)
    if digest != known.sha256:
        raise ModelFileError(
            f"detector file {path}: sha256 {digest} is not {known.name}'s {known.sha256} "
            f"(corrupt or another file; delete it and {_hint(known, path)})"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("POSESTREAM_OFFLINE", "HF_HUB_OFFLINE")
    )


def _download(known: KnownDetector, target: Path, progress: Callable[[int], None] | None = None) -> None:
    """Stream ``known.url`` into ``target`` (via ``<target>.part``), checking size and hash on the way."""
    if _offline():
        raise ModelFileError(f"detector {known.name}: not in the cache and offline mode is set: {_hint(known, target)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log.warning("downloading %s (%.1f MB) from %s", known.name, known.size_bytes / 1e6, known.url)
    digest, received = hashlib.sha256(), 0
    import urllib.error  # here, not at the top: a run on cached files has no use for http.client
    import urllib.request

    try:
        with urllib.request.urlopen(known.url, timeout=_DOWNLOAD_TIMEOUT_S) as response, open(part, "wb") as out:
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if received > known.size_bytes:
                    raise ModelFileError(
                        f"detector {known.name}: {known.url} sends more than the expected "
                        f"{known.size_bytes:,} bytes (not the released file?); nothing was kept"
                    )
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(received)
        if received != known.size_bytes or (known.sha256 and digest.hexdigest() != known.sha256):
            raise ModelFileError(
                f"detector {known.name}: {known.url} sent {received:,} bytes with sha256 {digest.hexdigest()}, "
                f"expected {known.size_bytes:,} bytes" + (f" with sha256 {known.sha256}" if known.sha256 else "")
                + "; nothing was kept"
            )
        if known.sha256 is None:
            log.warning("detector %s: no sha256 is recorded for it, checked by size only (sha256 %s)",
                        known.name, digest.hexdigest())  # fmt: skip
        os.replace(part, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelFileError(
            f"detector {known.name}: not in the cache and the download failed ({reason}): {_hint(known, target)}"
        ) from None
    finally:
        part.unlink(missing_ok=True)
    log.warning("detector %s: saved %s (sha256 %s)", known.name, target, digest.hexdigest()[:12])


# --------------------------------------------------------------------------- listing, pulling
@dataclass(frozen=True, slots=True)
class ModelRow:
    """One line of ``posestream models``.

    kind: 'pose' (a checkpoint, exported on first use), 'pose-onnx' (an ONNX file used as it is),
    'hub' (a transformers repo, for ``--weights``) or 'detector'. download_bytes: None where the
    table has no size (the Hub reports it at download).
    """

    name: str
    kind: str
    title: str
    download_bytes: int | None
    cached: list[tuple[Path, int]]  # files of this model in the cache, with sizes
    default: bool


_KIND = {"torch": "pose", "onnx": "pose-onnx", "transformers": "hub"}


def _pose_title(entry: KnownWeights) -> str:
    plus = "+" if entry.num_experts > 1 else ""
    check = "size + sha256 pinned" if entry.verify == "sha256" else "checked against the Hub's LFS hash"
    what = (f"{entry.num_keypoints} keypoints ({entry.keypoint_set})" if entry.num_experts == 1
            else "6 experts (--expert)")  # fmt: skip
    return f"ViTPose{plus}-{entry.variant.upper()} {entry.decoder}, {what}; {entry.repo_id}, {check}"


def model_rows(cache_dir: Path | None = None) -> list[ModelRow]:
    """Every known model with what the cache holds for it (sizes from the file system)."""
    from posestream.models.weights import cache_path

    cache = cache_folder(cache_dir)
    rows = []
    for entry in KNOWN_WEIGHTS.values():
        name = entry.name.removesuffix(".pth")
        files = [cache_path(entry, cache)]
        if entry.kind == "torch":
            files += sorted((cache / "exported").glob(f"{name}-{export_key(entry)}-*.onnx"))
        cached = [(p, _size(p)) for p in files if p.exists()]
        rows.append(ModelRow(name, _KIND[entry.kind], _pose_title(entry), entry.size_bytes, cached,
                             name == DEFAULT_POSE_MODEL))  # fmt: skip
    for known in KNOWN_DETECTORS.values():
        path = cache / "detectors" / known.filename
        cached = [(path, path.stat().st_size)] if path.is_file() else []
        title = known.title + (f"; {known.note}" if known.note else "")
        rows.append(ModelRow(known.name, "detector", title, known.size_bytes, cached, known.name == DEFAULT_DETECTOR))
    return rows


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (a transformers repo)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
