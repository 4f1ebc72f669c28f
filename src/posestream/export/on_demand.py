"""Models on demand, the export half: known pose-model names -> ONNX files in the cache.

``posestream.models.catalog`` names the known models and where they live in the cache; this module
exports a known checkpoint once per precision (``pose_model_file``) and fetches any known model ahead
of a run (``pull``, ``posestream models pull``). It sits in ``export`` because exporting needs
``posestream.export.onnx`` (which verifies with ``runtime``), and ``models`` must not import that.
"""

from __future__ import annotations

import logging
from pathlib import Path

from posestream.errors import ModelFileError
from posestream.models.catalog import (
    EXPORT_PRECISIONS,
    KNOWN_DETECTORS,
    cache_folder,
    detector_file,
    exported_path,
    is_known_detector,
    is_known_pose_model,
    pose_entry,
)
from posestream.models.known_weights import KnownWeights, known_weights

__all__ = ["pose_model_file", "pull"]

log = logging.getLogger(__name__)


def pose_model_file(name: str, precision: str = "fp32", cache_dir: Path | None = None) -> Path:
    """The ONNX file of known pose model ``name`` for ``precision``: from the cache, else exported now.

    The export loads the checkpoint through ``posestream.models.loading.load_vitpose`` (downloaded
    once and verified by ``resolve_weights``; the table gives its keypoint set), writes a verified
    ONNX file atomically, and is never repeated for the same weights and precision. Raises
    ModelFileError (download hint) or ExportError.
    """
    target = exported_path(name, precision, cache_dir)
    if target.is_file():
        log.info("pose model %s (%s): reusing %s", name, precision, target)
        return target
    _export(pose_entry(name), cache_folder(cache_dir), target, EXPORT_PRECISIONS[precision])
    return target


def _export(entry: KnownWeights, cache: Path, target: Path, precision: str) -> None:
    # torch is needed for the export only; a run that finds the exported file never imports it here.
    from posestream.export.onnx import export_onnx
    from posestream.models.loading import load_vitpose

    loaded = load_vitpose(entry.name, variant=entry.variant, cache_dir=cache)
    log.warning("pose model %s: exporting %s to ONNX (%s, keypoint set %s), once; later runs reuse %s",
                entry.name.removesuffix(".pth"), Path(loaded.weights).name, precision, loaded.keypoint_set.name,
                target)  # fmt: skip
    export_onnx(loaded.model, target, fp16=precision == "fp16", int8=precision == "int8", random_weights=False,
                keypoint_set=loaded.keypoint_set)  # fmt: skip


def pull(name: str, precision: str = "fp32", cache_dir: Path | None = None) -> Path:
    """Fetch (and for pose checkpoints export) ``name`` now, for offline use later. Returns the file
    (a folder for a Hub repo)."""
    if is_known_detector(name):
        return detector_file(name, cache_dir)
    if is_known_pose_model(name):
        return pose_model_file(name, precision, cache_dir)
    entry = known_weights(name)
    if entry is not None:  # an .onnx release or a transformers repo: fetched as it is
        from posestream.models.weights import resolve_known

        return resolve_known(entry, cache_folder(cache_dir))
    raise ModelFileError(f"'{name}' is no known model (`posestream models` lists them: "
                         f"vitpose-<s|b|l|h>-<set>[.onnx], Hub repos, {', '.join(KNOWN_DETECTORS)})")  # fmt: skip
