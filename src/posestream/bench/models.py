"""The pose models a bench run times: a ViTPose variant (built here, exported once) or a given ONNX file."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from posestream.errors import InputError

__all__ = ["PoseModelSource", "variant_sources", "file_sources"]

log = logging.getLogger(__name__)

SEED = 0  # random weights are seeded so repeated runs time the same numbers


@dataclass
class PoseModelSource:
    """One model under test.

    label: how tables name it ("s", "b", or a given file's stem). variant: s/b/l/h when known (the
    PyTorch backends need it). weights: checkpoint for the PyTorch module and the export; None =
    random. given_onnx: an ONNX file from ``--pose-model`` (used as is, never re-exported).
    The ONNX file is exported on first use into ``cache_dir`` and reused by later runs.
    """

    label: str
    variant: str | None
    cache_dir: Path
    weights: Path | None = None
    given_onnx: Path | None = None
    export_seconds: float | None = None
    onnx_reused: bool = False
    _onnx: Path | None = field(default=None, repr=False)
    _model: object = field(default=None, repr=False)

    @property
    def torch_random(self) -> bool:
        return self.weights is None

    def torch_unavailable(self) -> str | None:
        """Why the PyTorch backends cannot time this model, or None."""
        if self.variant is None:
            return f"{self.label}: a given ONNX file of no known ViTPose variant has no PyTorch builder"
        return None

    def torch_model(self):
        """The fp32 CPU ``ViTPose`` module (built once; callers copy it before converting)."""
        if self._model is None:
            import torch

            from posestream.models.checkpoint import load_weights
            from posestream.models.vitpose import build_vitpose

            torch.manual_seed(SEED)
            model = build_vitpose(self.variant)
            if self.weights is not None:
                load_weights(model, self.weights)
            self._model = model.eval()
        return self._model

    def onnx_file(self) -> Path:
        """The ONNX file: the given one, the cached export, or a fresh verified export."""
        if self.given_onnx is not None:
            return self.given_onnx
        if self._onnx is not None:
            return self._onnx
        tag = "random" if self.weights is None else f"{self.weights.stem}-{self.weights.stat().st_size}"
        path = self.cache_dir / f"vitpose-{self.variant}-{tag}.onnx"
        if path.is_file():
            log.info("reusing the cached export %s", path)
            self.onnx_reused = True
        else:
            from posestream.export.onnx import export_onnx

            t0 = time.monotonic()
            report = export_onnx(self.torch_model(), path, random_weights=self.weights is None)
            self.export_seconds = time.monotonic() - t0
            log.info("%s", report.summary())
        self._onnx = path
        return path


def variant_sources(variants: list[str], weights: str, cache_dir: Path) -> list[PoseModelSource]:
    """One source per variant. weights: 'none' (random) or a checkpoint path / known name."""
    from posestream.models.weights import resolve_weights

    sources = []
    for variant in variants:
        path = resolve_weights(weights, variant)
        sources.append(PoseModelSource(label=variant, variant=variant, cache_dir=cache_dir, weights=path))
    return sources


def file_sources(paths: list[str], weights: str, cache_dir: Path) -> list[PoseModelSource]:
    """One source per given ONNX file, its variant read from the exporter's metadata when present."""
    import onnx

    from posestream.models.vitpose import VARIANTS
    from posestream.models.weights import resolve_weights

    sources, labels = [], set()
    for text in paths:
        path = Path(text)
        if not path.is_file() or path.suffix.lower() != ".onnx":
            raise InputError(f"--pose-model {text}: expected an existing .onnx file")
        try:
            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
            raise InputError(f"--pose-model {text}: not a readable ONNX file ({type(exc).__name__})") from exc
        variant = meta.get("posestream.variant")
        variant = variant if variant in VARIANTS else None
        label = path.stem
        if label in labels:
            raise InputError(f"--pose-model {text}: two files are named {label!r}; rename one")
        labels.add(label)
        weight_path = resolve_weights(weights, variant) if variant is not None else None
        sources.append(PoseModelSource(label=label, variant=variant, cache_dir=cache_dir, weights=weight_path,
                                       given_onnx=path))  # fmt: skip
    return sources
