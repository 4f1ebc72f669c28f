"""PyTorch ViTPose -> one ONNX file, checked against PyTorch in ONNX Runtime before it is kept.

The file's contract, read by ``posestream.runtime``:

* input ``input``: (N, 3, 256, 192) float32, RGB, ``(pixel - mean) / std`` with the mean/std of
  the metadata; output ``heatmaps``: (N, K, 64, 48) float32. N is a dynamic axis.
* ``metadata_props`` (all strings): ``posestream.variant``, ``posestream.decoder``,
  ``posestream.input_size_hw`` ("256,192"), ``posestream.heatmap_size_hw`` ("64,48"),
  ``posestream.keypoint_names`` (JSON list), ``posestream.keypoint_set`` (the whole
  ``KeypointSet`` as JSON: names, skeleton, colours, flip pairs, sigmas, angles),
  ``posestream.mean`` / ``posestream.std`` (JSON lists, RGB, 0-255 units), ``posestream.color_order``
  ("RGB"), ``posestream.random_weights`` ("true"/"false"), ``posestream.precision``
  ("fp32"/"fp16"/"int8").

Precisions. fp32: the traced graph. fp16: every weight and activation in float16 with float32
I/O (onnxruntime's bundled ``float16`` converter, ``keep_io_types=True``; it runs on the CPU
provider too). int8: ``quantize_dynamic`` with signed int8 weights, activations quantised per batch
at run time: the linear layers become MatMulInteger and the patch / final convs ConvInteger, while
attention products and the deconvolutions stay float32. CPU only in practice (GPU providers lack
most *Integer ops).

Verification: the same seeded input (N(0, 1), what a normalised image looks like) at batch 1 and 7
through ORT's CPUExecutionProvider and the fp32 PyTorch model; the largest absolute heatmap
difference must stay within the tolerance, else ExportError and no file is left behind.
Default tolerances, in heatmap units (a trained model's peaks are ~0.3-1.0). Measured on
random weights of two scales: default init (heatmap peak ~0.2) and every tensor randomised so the
heatmap peak is ~1 like a trained model's ("O(1)"):
fp32 1e-3 (measured 2e-7 for S and B; 8e-7 O(1)),
fp16 1e-2 (measured 1.0e-4 S, 1.4e-4 B; 1.1e-3 O(1) S),
int8 1e-1 (measured 2.6e-3 S, 4.7e-3 B; 2.6e-2 O(1) S; dynamic int8 is coarse and trained ViTs
have activation outliers, so int8 is checked loosely here: judge it by keypoint AP, not by this).
Pass ``atol`` to override.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from posestream.errors import ExportError, OutputError
from posestream.keypoints import KeypointSet, keypoint_set_for

__all__ = [
    "ExportReport",
    "export_onnx",
    "verify_onnx",
    "DEFAULT_TOLERANCE",
    "IMAGENET_MEAN_RGB",
    "IMAGENET_STD_RGB",
    "INPUT_NAME",
    "OUTPUT_NAME",
]

log = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)  # 0-255 units
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)
DEFAULT_TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "int8": 1e-1}
VERIFY_BATCH_SIZES = (1, 7)
_SINGLE_FILE_LIMIT_BYTES = 1_900_000_000  # protobuf's 2 GiB cap; larger models (H) use external data


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What ``export_onnx`` wrote and how closely it matches PyTorch.

    max_abs_diff: largest |ORT - PyTorch fp32| over all heatmap values of every checked batch.
    max_abs_reference: largest |PyTorch| heatmap value (scale for reading max_abs_diff).
    seconds: wall time of export + conversion + verification.
    """

    path: Path
    opset: int
    precision: str
    max_abs_diff: float
    max_abs_reference: float
    tolerance: float
    batch_sizes_checked: tuple[int, ...]
    seconds: float
    size_bytes: int
    judged: bool = True  # False: int8 of random weights, whose flat heatmaps cannot judge it
    quantisation: str = ""  # int8: "static (calibrated)" or "dynamic"

    def summary(self) -> str:
        verdict = f"tolerance {self.tolerance:g}" if self.judged else "not judged: random weights, flat heatmaps"
        return (
            f"{self.path}: {self.precision}, opset {self.opset}, {self.size_bytes / 1e6:.1f} MB; "
            f"ORT vs PyTorch max abs diff {self.max_abs_diff:.3g} ({verdict}, "
            f"heatmap max {self.max_abs_reference:.3g}) at batch "
            f"{', '.join(map(str, self.batch_sizes_checked))}; {self.seconds:.1f} s"
        )


def export_onnx(
    model: nn.Module,
    out_path: str | os.PathLike[str],
    *,
    opset: int = 17,
    fp16: bool = False,
    int8: bool = False,
    random_weights: bool,
    atol: float | None = None,
    keypoint_names: Sequence[str] | None = None,
    calibration=None,
    keypoint_set: KeypointSet | None = None,
) -> ExportReport:
    """Export ``model`` ((N, 3, H, W) -> (N, K, h, w)) to ``out_path`` and verify it in ONNX Runtime.

    random_weights: recorded in the metadata so every consumer can warn; required on purpose.
    calibration: int8 only, a ``posestream.runtime.quantize.Calibration`` of real model inputs:
        static int8 (QDQ, ranges from these inputs), verified on them; without it, dynamic int8.
    keypoint_set: the model's keypoint set, written into the metadata; default: ``keypoint_names``
        as a set (a registered one when the names match), else the first registered set with the
        model's K (coco for 17), else generic names. It must have the model's K (ValueError).
    Raises ExportError when the export fails or ORT disagrees with PyTorch beyond ``atol``
    (default ``DEFAULT_TOLERANCE[precision]``); ValueError for contradictory arguments.

    int8 with random weights is not judged: random heatmaps are flat (no peak), so the difference
    is noise of the same size as the signal and says nothing about the quantisation. The report
    then says ``judged=False``; judge int8 on a model with peaked heatmaps (trained weights, or
    ``posestream.bench.peaked``).
    """
    if fp16 and int8:
        raise ValueError("fp16 and int8 are exclusive: pick one precision")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    tolerance = DEFAULT_TOLERANCE[precision] if atol is None else float(atol)
    out_path = Path(out_path)
    img_h, img_w = getattr(model, "img_size_hw", (256, 192))
    num_keypoints = int(getattr(model, "num_keypoints", 17))
    kset = _keypoint_set(keypoint_set, keypoint_names, num_keypoints)
    t_start = time.monotonic()
    was_training = model.training
    model.eval()
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with _writing(out_path), tempfile.TemporaryDirectory(prefix="posestream-export-", dir=out_path.parent) as tmp:
            fp32_path = Path(tmp) / "fp32.onnx"
            _torch_export(model, fp32_path, opset, (img_h, img_w))
            proto = _convert(fp32_path, Path(tmp), precision, calibration)
            with torch.no_grad():
                heatmap_hw = tuple(model(torch.zeros(1, 3, img_h, img_w)).shape[-2:])
            metadata = {
                "posestream.variant": str(getattr(model, "variant", "custom")),
                "posestream.decoder": str(getattr(model, "decoder_kind", "classic")),
                "posestream.input_size_hw": f"{img_h},{img_w}",
                "posestream.heatmap_size_hw": f"{heatmap_hw[0]},{heatmap_hw[1]}",
                "posestream.keypoint_names": json.dumps(list(kset.keypoints)),
                "posestream.keypoint_set": json.dumps(kset.to_json(), separators=(",", ":")),
                "posestream.mean": json.dumps(list(IMAGENET_MEAN_RGB)),
                "posestream.std": json.dumps(list(IMAGENET_STD_RGB)),
                "posestream.color_order": "RGB",
                "posestream.random_weights": "true" if random_weights else "false",
                "posestream.precision": precision,
            }
            staged = Path(tmp) / out_path.name
            _save(proto, staged, metadata)
            inputs = None
            if calibration is not None:  # real inputs: what the quantised ranges were made for
                inputs = np.concatenate([b for _, b in zip(range(16), calibration.batches())])
            max_diff, max_ref = verify_onnx(model, staged, VERIFY_BATCH_SIZES, inputs=inputs)
            log.info("ORT vs PyTorch (%s): max abs diff %.3g, heatmap max %.3g", precision, max_diff, max_ref)
            judged = not (precision == "int8" and random_weights)
            if judged and not max_diff <= tolerance:  # also catches NaN
                raise ExportError(
                    f"export {out_path}: ONNX Runtime output differs from PyTorch by {max_diff:.3g} "
                    f"(tolerance {tolerance:g} for {precision}); file not written"
                )
            _move_into_place(staged, out_path)
    finally:
        model.train(was_training)
    return ExportReport(
        path=out_path,
        opset=opset,
        precision=precision,
        max_abs_diff=max_diff,
        max_abs_reference=max_ref,
        tolerance=tolerance,
        batch_sizes_checked=VERIFY_BATCH_SIZES,
        seconds=time.monotonic() - t_start,
        size_bytes=_size_with_data(out_path),
        judged=judged,
        quantisation=("static (calibrated)" if calibration is not None else "dynamic") if precision == "int8" else "",
    )


def verify_onnx(
    model: nn.Module, onnx_path: Path, batch_sizes: Sequence[int] = VERIFY_BATCH_SIZES, seed: int = 0,
    inputs: np.ndarray | None = None,
) -> tuple[float, float]:
    """(max |ORT - PyTorch|, max |PyTorch|) over seeded N(0, 1) inputs of each batch size (or over
    ``inputs`` (N, 3, H, W), real model inputs, in batches of the largest size).

    ``model`` must be on the CPU in float32 (the reference); max |ORT - PyTorch| is NaN when ORT
    produced a non-finite value. ORT runs on CPUExecutionProvider with as many threads as torch uses.
    """
    from posestream.errors import ModelFileError
    from posestream.runtime.sessions import open_session

    try:
        session = open_session(onnx_path, threads=max(1, torch.get_num_threads()), what="exported model")
    except ModelFileError as exc:
        raise ExportError(
            f"export {onnx_path.name}: ONNX Runtime cannot load the exported model: {exc}"
        ) from exc
    img_h, img_w = getattr(model, "img_size_hw", (256, 192))
    rng = np.random.default_rng(seed)
    max_diff = max_ref = 0.0
    if inputs is not None:
        step = max(batch_sizes)
        feeds = [np.ascontiguousarray(inputs[i : i + step], np.float32) for i in range(0, len(inputs), step)]
    else:
        feeds = [rng.standard_normal((batch, 3, img_h, img_w), dtype=np.float32) for batch in batch_sizes]
    for x in feeds:
        batch = len(x)
        (got,) = session.run({INPUT_NAME: x}, [OUTPUT_NAME])
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ExportError(
                f"export {onnx_path.name}: ORT output {got.shape} at batch {batch}, PyTorch {want.shape}"
            )
        diff = float(np.max(np.abs(got.astype(np.float32) - want)))
        max_ref = max(max_ref, float(np.max(np.abs(want))))
        log.debug("batch %d: max abs diff %.3g", batch, diff)
        if not np.isfinite(diff):
            return float("nan"), max_ref
        max_diff = max(max_diff, diff)
    return max_diff, max_ref


# ---------------------------------------------------------------------------------------- helpers


def _keypoint_set(kset: KeypointSet | None, names: Sequence[str] | None, num_keypoints: int) -> KeypointSet:
    if kset is not None and names is not None and tuple(names) != kset.keypoints:
        raise ValueError(f"keypoint_names and keypoint_set {kset.name!r} disagree")
    if kset is None:
        kset = keypoint_set_for(num_keypoints) if names is None else keypoint_set_for(names=names)
    if kset.num_keypoints != num_keypoints:
        raise ValueError(f"keypoint set {kset.describe()} for a model with {num_keypoints} keypoints")
    return kset


def _torch_export(model: nn.Module, path: Path, opset: int, img_hw: tuple[int, int]) -> None:
    """fp32 ONNX with a dynamic batch axis.

    torch 2.13 still ships the TorchScript ("legacy", ``dynamo=False``) exporter: it takes ~2 s for
    ViTPose-S where the torch.export-based one takes ~18 s and rewrites the opset from 18, so the
    legacy one is tried first and the dynamo one is the fallback for torch versions without it.
    """
    x = torch.zeros(2, 3, *img_hw)  # batch 2: torch.export specialises a dimension of size 1
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > _SINGLE_FILE_LIMIT_BYTES
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)  # "dynamo=False is deprecated"
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                model, (x,), str(path), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )  # fmt: skip
        return
    except (TypeError, RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        log.warning("legacy ONNX exporter failed (%s); trying the torch.export-based one", exc)
    try:
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(
            model, (x,), str(path), dynamo=True, opset_version=opset, external_data=big,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; the message says which
        raise ExportError(f"torch.onnx.export failed for opset {opset}: {type(exc).__name__}: {exc}") from exc


def _convert(fp32_path: Path, tmp: Path, precision: str, calibration=None) -> onnx.ModelProto:
    """The model to save: the fp32 export, or its fp16 / int8 version (static with ``calibration``)."""
    if precision == "fp32":
        return onnx.load(str(fp32_path))
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    int8_path = tmp / "int8.onnx"
    if calibration is not None:
        from posestream.runtime.quantize import quantize_onnx_static

        quantize_onnx_static(fp32_path, calibration, int8_path)
        return onnx.load(str(int8_path))
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Signed int8 weights (activations uint8, dynamic): the U8S8 combination ORT's x86 kernels favour.
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    return onnx.load(str(int8_path))


def _save(proto: onnx.ModelProto, path: Path, metadata: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "posestream"
    if proto.ByteSize() > _SINGLE_FILE_LIMIT_BYTES:
        onnx.save_model(proto, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(proto, str(path))


@contextlib.contextmanager
def _writing(out_path: Path) -> Iterator[None]:
    """A failed write while staging or moving the file (disk full, read-only) is an OutputError."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write the exported model '{out_path}': {reason}; nothing was written there") from None


def _move_into_place(staged: Path, out_path: Path) -> None:
    data = staged.with_name(staged.name + ".data")
    if data.exists():
        os.replace(data, out_path.with_name(out_path.name + ".data"))
    os.replace(staged, out_path)


def _size_with_data(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)
