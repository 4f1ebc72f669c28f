"""int8 post-training quantisation of an fp32 ONNX file, calibrated on real inputs, cached.

Two quantisers, one per engine, each the engine's own tool:

* OpenVINO: NNCF ``nncf.quantize`` on the OpenVINO model (transformer scheme for attention graphs:
  the MatMuls of attention and the MLPs become int8, LayerNorm/Softmax stay float), saved as IR.
* onnxruntime: ``onnxruntime.quantization.quantize_static`` in QDQ format (per-channel int8
  weights, uint8 activations, MinMax ranges), saved as ONNX; ORT fuses the QDQ pairs into int8
  kernels. This file also opens in OpenVINO, and ``posestream export --precision int8`` writes it.

Calibration inputs come from the caller (``Calibration``), because only the caller knows how a
model's input is prepared; the cache key covers the source file (path, size, mtime), the
calibration set's name and the engine, so a changed file or data set is quantised again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from posestream.errors import InputError

__all__ = ["Calibration", "CalibrationFactory", "file_key", "quantized_model", "quantize_onnx_static"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when the quantisation recipe changes (old cache entries are then ignored)
# onnxruntime: only the matmul-shaped ops become int8. Quantising LayerNorm/Softmax/Add too (ORT's
# default) moved the keypoints of a peaked tiny ViTPose by 46 px on average (measured): their
# activations have outliers that one uint8 range per tensor cannot hold.
ORT_INT8_OPS = ("MatMul", "Gemm", "Conv")


class Calibration:
    """Inputs for int8 post-training quantisation.

    name: identifies the data (part of the cache key). batches: called when needed; yields arrays
    (1, C, H, W) float32, prepared exactly as the model's input at run time.
    """

    def __init__(self, name: str, batches: Callable[[], Iterable[np.ndarray]]) -> None:
        self.name = name
        self.batches = batches


# Called with the model file's metadata (so the caller can prepare inputs as the model wants them).
CalibrationFactory = Callable[[dict[str, str]], Calibration]


def file_key(path: Path, *extra: str) -> str:
    """A short hex key for a file's identity (resolved path, size, mtime) and ``extra`` strings."""
    stat = path.stat()
    text = "|".join([str(CACHE_VERSION), str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns), *extra])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def quantized_model(
    path: Path, engine: str, calibration: CalibrationFactory | None, metadata: dict[str, str], cache_dir: Path
) -> Path:
    """The int8 version of the fp32 ONNX ``path`` for ``engine``, quantised once and cached."""
    if calibration is None:
        raise InputError(
            f"{path}: int8 on an fp32 model needs calibration data (real inputs) to quantise it; set "
            "pose.calibration (a folder with images/ and person_keypoints.json), or export an int8 model "
            "with `posestream export --precision int8 --calibration FOLDER`"
        )
    data = calibration(dict(metadata))
    suffix = ".xml" if engine == "openvino" else ".onnx"
    out = Path(cache_dir) / f"{file_key(path, data.name, engine)}-int8{suffix}"
    if out.is_file():
        return out
    logger.warning("%s: quantising to int8 for %s on %s (once; cached as %s)", path.name, engine, data.name, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if engine == "openvino":
        _quantize_nncf(path, data, out)
    else:
        quantize_onnx_static(path, data, out)
    return out


def _samples(path: Path, data: Calibration) -> list[np.ndarray]:
    samples = [np.ascontiguousarray(batch, np.float32) for batch in data.batches()]
    if not samples:
        raise InputError(f"{path}: the calibration set {data.name} gave no inputs")
    return samples


def _quantize_nncf(path: Path, data: Calibration, out: Path) -> None:
    import nncf
    import openvino as ov

    from posestream.runtime.openvino import core

    model = core().read_model(str(path))
    name = model.inputs[0].get_any_name()
    samples = [{name: sample} for sample in _samples(path, data)]
    transformer = any(op.get_type_name() == "Softmax" for op in model.get_ops())
    quantized = nncf.quantize(
        model, nncf.Dataset(samples), subset_size=len(samples),
        model_type=nncf.ModelType.TRANSFORMER if transformer else None,
    )  # fmt: skip
    tmp = out.with_name(out.stem + ".partial.xml")
    ov.save_model(quantized, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), out.with_suffix(".bin"))
    os.replace(tmp, out)


def quantize_onnx_static(path: Path, data: Calibration, out: Path) -> None:
    """ONNX Runtime static int8 (QDQ) of the fp32 ONNX ``path`` into ``out`` (written whole or not at all)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    input_name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    samples = _samples(path, data)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter({input_name: sample} for sample in samples)

        def get_next(self) -> dict | None:
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory(prefix="posestream-int8-", dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        quantize_static(
            str(path), str(staged), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(ORT_INT8_OPS),
            extra_options={"CalibTensorRangeSymmetric": False, "ActivationSymmetric": False},
        )  # fmt: skip
        os.replace(staged, out)
