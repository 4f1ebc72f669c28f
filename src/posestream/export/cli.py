"""``posestream export``: build a ViTPose, load its weights, write a verified ONNX file (or engine).

    posestream export --variant s --weights vitpose-s-coco --out vitpose-s.onnx
    posestream export --weights ./vitpose-b-coco.pth --out b16.onnx --fp16     # variant read off the file
    posestream export --variant b --weights none --out random-b.onnx           # random weights, loudly
    posestream export --weights vitpose+_base.pth --expert wholebody --out wb.onnx  # ViTPose+ expert, folded
    posestream export --weights usyd-community/vitpose-base-simple --out b.onnx     # transformers Hub id

The lead's ``posestream.cli`` calls ``add_arguments`` and ``run``; InputError subclasses raised by
``run`` (bad flags, missing or mismatched weights) become exit code 2 there, ExportError exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from posestream.errors import ExportError, InputError
from posestream.io.outputs import check_outputs
from posestream.export.onnx import export_onnx
from posestream.keypoints import KeypointSet, keypoint_set_names, parse_keypoint_set
from posestream.models.known_weights import known_weight_names
from posestream.models.loading import load_vitpose
from posestream.models.vitpose import VARIANTS
from posestream.models.vitpose_plus import EXPERTS, fold_expert
from posestream.models.weights import RANDOM_WEIGHTS_WARNING

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)

_OPSET_RANGE = (14, 20)  # the legacy exporter's range; 17+ keeps LayerNormalization a single node


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``export`` flags to ``parser``."""
    parser.add_argument(
        "--variant", choices=sorted(VARIANTS) + ["small", "base", "large", "huge"], default=None,
        help="model size; default: read off --weights (required with random weights)",
    )  # fmt: skip
    parser.add_argument(
        "--decoder", choices=["classic", "simple"], default=None,
        help="heatmap decoder for random weights (default classic); files say their own",
    )  # fmt: skip
    parser.add_argument(
        "--weights", default="none", metavar="PATH|NAME|HUB_ID|none",
        help="checkpoint file (.pth/.safetensors: mmpose, easy_ViTPose, official ViTPose+, transformers or "
        "posestream train layout), a transformers folder or Hub id (usyd-community/vitpose-base-simple), a "
        "known name (downloaded once into $POSESTREAM_CACHE or ~/.cache/posestream): "
        + ", ".join(n for n in known_weight_names() if not n.endswith(".onnx"))
        + "; or 'none' for random weights (default: none, with a warning)",
    )  # fmt: skip
    parser.add_argument(
        "--expert", choices=[e.name for e in EXPERTS], default=None,
        help="ViTPose+ checkpoints: the dataset expert (and its head) to export, folded into a plain ViTPose "
        "(default coco)",
    )  # fmt: skip
    parser.add_argument(
        "--out", required=True, type=Path, help="output file (.onnx, or .engine with --format engine)"
    )
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                           help="fp32 (default); fp16 weights and compute (float32 I/O); int8: static QDQ "
                                "calibrated on --calibration (dynamic without it). bf16 is a run-time setting "
                                "(`run --precision bf16`), not a file format")  # fmt: skip
    precision.add_argument("--fp16", action="store_true", help="same as --precision fp16")
    precision.add_argument("--int8", action="store_true", help="same as --precision int8")
    parser.add_argument("--calibration", metavar="DIR",
                        help="int8: real person crops from this folder (images/ + person_keypoints.json)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--format", choices=["onnx", "engine"], default="onnx", help="onnx, or a TensorRT engine"
    )
    parser.add_argument(
        "--keypoints", default=None, metavar="SET|K",
        help=f"keypoint set ({', '.join(keypoint_set_names())}) or a keypoint count; default: what "
        "--weights holds, else coco",
    )  # fmt: skip
    parser.add_argument("--atol", type=float, default=None, help="override the ORT-vs-PyTorch tolerance")


def _keypoint_option(value: str | None) -> KeypointSet | None:
    if value is None:
        return None
    try:
        kset = parse_keypoint_set(value)
    except ValueError as exc:
        raise InputError(f"--keypoints: {exc}") from None
    if kset.num_keypoints < 1:
        raise InputError(f"--keypoints {value}: expected a positive count")
    return kset


def _check_free_space(model, out: Path, *, fp16: bool, int8: bool) -> None:
    """Refuse at once when the disk cannot hold the export (fp32 staging copy + the final file)."""
    import shutil

    params = sum(p.numel() for p in model.parameters())
    needed = params * (4 + (2 if fp16 else 1 if int8 else 4))
    folder = out.resolve().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise InputError(f"--out {out}: the export needs about {needed / 1e6:.0f} MB on that disk and "
                         f"{free / 1e6:.1f} MB are free")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Export as ``args`` say; print the report. Returns the exit code (0)."""
    chosen = getattr(args, "precision", None)
    args.fp16 = args.fp16 or chosen == "fp16"
    args.int8 = args.int8 or chosen == "int8"
    calibration_dir = getattr(args, "calibration", None)
    if calibration_dir and not args.int8:
        raise InputError("--calibration is for --precision int8")
    if not _OPSET_RANGE[0] <= args.opset <= _OPSET_RANGE[1]:
        raise InputError(f"--opset {args.opset}: expected {_OPSET_RANGE[0]}..{_OPSET_RANGE[1]}")
    expected = _keypoint_option(getattr(args, "keypoints", None))
    # Preflight: a path that cannot be written fails now, not after minutes of export work.
    outputs = {"ONNX": args.out if args.format == "onnx" else args.out.with_suffix(".onnx")}
    if args.format == "engine":
        outputs["engine"] = args.out
    check_outputs(outputs, renamed=True)
    if args.format == "engine" and args.int8:
        raise InputError("--int8 applies to --format onnx only (TensorRT int8 needs a calibration set)")
    if args.format == "engine":
        from posestream.export.tensorrt import tensorrt_available

        if not tensorrt_available():  # fail before the slow ONNX export
            raise ExportError(
                "tensorrt is not installed: use --format onnx, or install TensorRT on a GPU machine"
            )

    random = str(args.weights).strip().lower() in ("", "none", "random")
    loaded = load_vitpose(args.weights, variant=args.variant, decoder=args.decoder if random else None,
                          keypoint_set=expected, expert=getattr(args, "expert", None))  # fmt: skip
    if args.decoder is not None and loaded.decoder != args.decoder:
        raise InputError(f"--decoder {args.decoder}: --weights {args.weights} has a {loaded.decoder} decoder")
    model, kset, variant = loaded.model, loaded.keypoint_set, loaded.variant
    if model.num_experts > 1:  # ViTPose+: one expert folded into fc2, a plain ViTPose every backend runs
        model = fold_expert(model)
        print(f"folded ViTPose+ expert '{loaded.expert}' into a plain ViTPose")
    weights = None if loaded.random_weights else loaded.weights
    _check_free_space(model, outputs["ONNX"], fp16=args.fp16, int8=args.int8)

    onnx_out = args.out if args.format == "onnx" else args.out.with_suffix(".onnx")
    calibration = None
    if calibration_dir:
        from posestream.evaluation.calibration import person_crop_calibration
        from posestream.runtime.base import ModelInfo

        calibration = person_crop_calibration(calibration_dir, ModelInfo(input_size_hw=model.img_size_hw))
    report = export_onnx(
        model, onnx_out, opset=args.opset, fp16=args.fp16, int8=args.int8,
        random_weights=weights is None, atol=args.atol, calibration=calibration, keypoint_set=kset,
    )  # fmt: skip
    print(
        f"exported ViTPose-{variant.upper()} ({model.decoder_kind} decoder, keypoint set {kset.describe()}, "
        f"{'RANDOM weights' if weights is None else f'weights {weights}'})"
    )
    batches = ", ".join(map(str, report.batch_sizes_checked))
    size_mb = report.size_bytes / 1e6
    print(f"  file            {report.path} ({size_mb:.1f} MB, {report.precision}, opset {report.opset})")
    verdict = f"tolerance {report.tolerance:g}" if report.judged else "not judged: random weights give flat heatmaps"
    print(
        f"  ORT vs PyTorch  max abs diff {report.max_abs_diff:.3g} ({verdict}; "
        f"heatmap max {report.max_abs_reference:.3g}; batch {batches})"
    )
    if report.quantisation:
        print(f"  int8            {report.quantisation}")
    print(f"  time            {report.seconds:.1f} s")
    if args.format == "engine":
        from posestream.export.tensorrt import build_engine

        from posestream.runtime.engine_cache import detect_engine_key, file_sha256, write_engine_record

        engine = build_engine(onnx_out, args.out, fp16=args.fp16)
        print(f"  engine          {engine} ({engine.stat().st_size / 1e6:.1f} MB)")
        key = detect_engine_key()
        if key is not None:  # the GPU and TensorRT version the engine is bound to, beside it
            check = {"max_abs_diff": report.max_abs_diff, "tolerance": report.tolerance, "reference": "pytorch"}
            record = write_engine_record(engine, key, file_sha256(onnx_out), check)
            print(f"  built for       {key.describe()} (recorded in {record})")
    if weights is None:
        print(RANDOM_WEIGHTS_WARNING, file=sys.stderr)
    return 0

