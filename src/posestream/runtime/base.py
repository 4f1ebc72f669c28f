"""The one protocol every pose inference backend meets, and the model facts it carries.

A backend turns a normalised batch ``(N, 3, H, W)`` float32 into heatmaps ``(N, K, h, w)``
float32. Everything the caller needs to prepare that batch and read the heatmaps (input size,
mean/std, colour order, keypoint names) travels with the backend as a ``ModelInfo``, read from
the ONNX file's ``metadata_props`` (``posestream.*`` keys, written by the exporter) or given by
the caller for a PyTorch module. Missing keys fall back to COCO-17 ViTPose.

The keypoint vocabulary is a ``KeypointSet`` (``info.keypoint_set``): from the
``posestream.keypoint_set`` metadata (the whole definition, JSON), else from
``posestream.keypoint_names`` (a registered set with those names, else a custom one), else from the
output channel count alone (see ``posestream.keypoints.keypoint_set_for``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from posestream.errors import ModelFileError
from posestream.keypoints import DEFAULT_KEYPOINT_SET, KeypointSet, keypoint_set_for

__all__ = [
    "PoseBackend",
    "ModelInfo",
    "ModelInfoAttributes",
    "METADATA_PREFIX",
    "IMAGENET_MEAN_RGB",
    "IMAGENET_STD_RGB",
]

METADATA_PREFIX = "posestream."
IMAGENET_MEAN_RGB: tuple[float, float, float] = (123.675, 116.28, 103.53)  # 0-255 scale
IMAGENET_STD_RGB: tuple[float, float, float] = (58.395, 57.12, 57.375)


@runtime_checkable
class PoseBackend(Protocol):
    """A pose model behind one call.

    name: what runs it, e.g. "onnxruntime[CPUExecutionProvider]" or "torch[cpu,fp32]".
    input_size_hw: ``(H, W)`` of the model input, e.g. (256, 192).
    heatmap_size_hw: ``(h, w)`` of the heatmaps, e.g. (64, 48).
    num_keypoints: K. keypoint_names: K names. keypoint_set: the model's ``KeypointSet``.
    mean, std: per channel, 0-255 scale, in ``color_order`` ("RGB" or "BGR").
    random_weights: True when the weights are a random initialisation (results mean nothing).
    max_batch: the largest N the model runs in one pass; None = any. ``__call__`` accepts any N
        regardless (a fixed-batch model is run chunk by chunk inside), but callers that pad
        batches should not pad beyond it.
    on_gpu: True when the model runs on a GPU (callers pad batches to fixed sizes there).
    """

    name: str
    input_size_hw: tuple[int, int]
    heatmap_size_hw: tuple[int, int]
    num_keypoints: int
    keypoint_names: tuple[str, ...]
    keypoint_set: KeypointSet
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color_order: str
    random_weights: bool
    max_batch: int | None
    on_gpu: bool

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, K, h, w) float32 heatmaps."""
        ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Facts about a pose model (defaults: COCO-17 ViTPose with ImageNet normalisation).

    ``variant``, ``decoder`` and ``precision`` are informational ("" when unknown).
    """

    variant: str = ""
    decoder: str = ""
    precision: str = ""
    input_size_hw: tuple[int, int] = (256, 192)
    heatmap_size_hw: tuple[int, int] = (64, 48)
    keypoint_set: KeypointSet = DEFAULT_KEYPOINT_SET
    mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    std: tuple[float, float, float] = IMAGENET_STD_RGB
    color_order: str = "RGB"
    random_weights: bool = False

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.keypoint_set.keypoints

    def with_(self, **changes: object) -> ModelInfo:
        return replace(self, **changes)

    @classmethod
    def from_metadata(cls, props: dict[str, str], source: str) -> tuple[ModelInfo, set[str]]:
        """Parse ``posestream.*`` metadata props (other keys are ignored).

        Returns the info and the set of field names the props actually set (the rest are
        defaults, which the caller may replace with what the graph's shapes say). A malformed
        value raises ModelFileError naming ``source`` and the key.
        """
        values: dict[str, object] = {}

        def parse(key: str, convert: Callable[[str], object]) -> None:
            raw = props.get(METADATA_PREFIX + key)
            if raw is None:
                return
            try:
                values[key] = convert(raw)
            except (ValueError, TypeError) as exc:
                name = METADATA_PREFIX + key
                raise ModelFileError(f"{source}: metadata '{name}' = {raw!r} is malformed ({exc})") from exc

        parse("variant", str)
        parse("decoder", str)
        parse("precision", str)
        parse("input_size_hw", _int_pair)
        parse("heatmap_size_hw", _int_pair)
        parse("keypoint_names", lambda raw: tuple(str(name) for name in _json_list(raw)))
        parse("keypoint_set", lambda raw: KeypointSet.from_json(json.loads(raw), "keypoint_set"))
        parse("mean", lambda raw: _float_triple(_json_list(raw)))
        parse("std", lambda raw: _float_triple(_json_list(raw)))
        parse("color_order", _color_order)
        parse("random_weights", _bool)
        names = values.pop("keypoint_names", None)
        kset = values.get("keypoint_set")
        if kset is not None and names is not None and kset.keypoints != names:
            raise ModelFileError(
                f"{source}: metadata '{METADATA_PREFIX}keypoint_set' ({kset.describe()}) and "
                f"'{METADATA_PREFIX}keypoint_names' ({len(names)} names) disagree"
            )
        if kset is None and names is not None:
            values["keypoint_set"] = keypoint_set_for(names=names)
        return cls(**values), set(values)  # type: ignore[arg-type]


class ModelInfoAttributes:
    """Mixin: the ``PoseBackend`` model attributes, read from ``self.info`` (a ``ModelInfo``)."""

    info: ModelInfo

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return self.info.input_size_hw

    @property
    def heatmap_size_hw(self) -> tuple[int, int]:
        return self.info.heatmap_size_hw

    @property
    def num_keypoints(self) -> int:
        return self.info.num_keypoints

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.info.keypoint_names

    @property
    def keypoint_set(self) -> KeypointSet:
        return self.info.keypoint_set

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.info.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.info.std

    @property
    def color_order(self) -> str:
        return self.info.color_order

    @property
    def random_weights(self) -> bool:
        return self.info.random_weights

    @random_weights.setter
    def random_weights(self, value: bool) -> None:  # e.g. after the caller loaded (or skipped) weights
        self.info = self.info.with_(random_weights=bool(value))


def _int_pair(raw: str) -> tuple[int, int]:
    parts = [int(part) for part in raw.split(",")]
    if len(parts) != 2 or min(parts) <= 0:
        raise ValueError("expected two positive integers 'H,W'")
    return parts[0], parts[1]


def _json_list(raw: str) -> list:
    value = json.loads(raw)  # json.JSONDecodeError is a ValueError
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty JSON list")
    return value


def _float_triple(values: list) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError("expected 3 numbers")
    return float(values[0]), float(values[1]), float(values[2])


def _color_order(raw: str) -> str:
    if raw.upper() not in ("RGB", "BGR"):
        raise ValueError("expected 'RGB' or 'BGR'")
    return raw.upper()


def _bool(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("expected 'true' or 'false'")
    return raw.lower() == "true"
