"""Reduced precision judged on a ViTPose whose heatmaps are peaked (see posestream.bench.peaked).

    python benchmarks/precision_check.py --variants s b --out benchmarks/results/cpu-2core/precision

1. ViTPose-<variant> with seeded random weights; its final 1x1 conv fitted (ridge regression) on
   person crops of ../shared/coco/train_mini so the heatmaps peak at the keypoints;
2. exported to ONNX (fp32) with posestream's exporter;
3. every precision/engine runs the held-out person crops of ../shared/coco/val_subset: onnxruntime
   fp32 (the reference), OpenVINO fp32 / bf16 (when native) / int8 (NNCF, calibrated on
   train_mini), onnxruntime static int8 (QDQ, same calibration), torch bf16;
4. keypoint displacement against the reference in crop pixels (mean, p95, max, labelled keypoints
   only) and heatmap deviation (relative to the reference peak) -> precision.json / precision.md.

TOLERANCE below is what a default precision must stay within (tests/unit/runtime check it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# A default precision may deviate from fp32 by at most this much, relative to the heatmap peak
# (tests/unit/runtime/test_runtime_openvino.py holds the default to it). Keypoint displacement is
# reported too, beside a 1%-noise control row (the fitted peaks are weaker than a trained model's).
TOLERANCE = {"heatmap_max_dev": 0.05, "heatmap_mean_dev": 0.01}


def crops_of(folder: Path, limit: int):
    from posestream.evaluation.calibration import open_calibration_folder, person_crops
    from posestream.runtime.base import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

    dataset = open_calibration_folder(folder)
    pairs = list(person_crops(dataset, (256, 192), IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, "RGB", limit))
    return np.concatenate([c for c, _ in pairs]), np.stack([k for _, k in pairs])


def run_variant(
    variant: str, shared: Path, work: Path, fit_limit: int, test_limit: int, threads: int, calib_limit: int
) -> dict:
    import torch

    from posestream.bench.peaked import compare_heatmaps, fit_peaked_head
    from posestream.evaluation.calibration import pose_calibration
    from posestream.export.onnx import export_onnx
    from posestream.models.vitpose import build_vitpose
    from posestream.runtime.factory import open_pose_backend
    from posestream.runtime.precision import cpu_has_native_bf16

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = build_vitpose(variant).eval()
    fit_crops, fit_kp = crops_of(shared / "coco" / "train_mini", fit_limit)
    test_crops, test_kp = crops_of(shared / "coco" / "val_subset", test_limit)
    t0 = time.monotonic()
    fit = fit_peaked_head(model, fit_crops, fit_kp)
    fit["seconds"] = round(time.monotonic() - t0, 1)
    onnx_path = work / f"vitpose-{variant}-peaked.onnx"
    export_onnx(model, onnx_path, random_weights=True)
    labelled = test_kp[..., 2] > 0

    calibration = pose_calibration(shared / "coco" / "train_mini", limit=calib_limit)
    cases = [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8"), ("onnxruntime", "int8")]
    if cpu_has_native_bf16():
        cases.insert(2, ("openvino", "bf16"))
    outputs: dict[tuple[str, str], np.ndarray] = {}
    rows = []
    for engine, precision in cases:
        backend = open_pose_backend(onnx_path, engine=engine, precision=precision, threads=threads,
                                    calibration=calibration)  # fmt: skip
        outputs[(engine, precision)] = np.concatenate([backend(test_crops[i : i + 8]) for i in range(0, len(test_crops), 8)])
    with torch.inference_mode():
        bf16 = model.to(torch.bfloat16)
        outputs[("torch", "bf16")] = np.concatenate([
            bf16(torch.from_numpy(test_crops[i : i + 8]).to(torch.bfloat16)).float().numpy()
            for i in range(0, len(test_crops), 8)
        ])
    reference = outputs[("onnxruntime", "fp32")]
    # Control: how far 1% Gaussian noise (of the peak) moves these keypoints. The fitted head is
    # linear on random features, so its peaks are weaker than a trained model's; displacements at
    # or below this row are within what noise of that size does.
    noise = np.random.default_rng(0).normal(0, 0.01 * np.abs(reference).max(), reference.shape)
    outputs[("control", "fp32 + 1% noise")] = (reference + noise).astype(np.float32)
    for (engine, precision), heatmaps in outputs.items():
        if (engine, precision) == ("onnxruntime", "fp32"):
            continue
        figures = compare_heatmaps(reference, heatmaps, labelled)
        rows.append({"engine": engine, "precision": precision, **figures.as_dict()})
    peaks = reference.reshape(*reference.shape[:2], -1).max(-1)[labelled]
    return {
        "variant": variant,
        "fit": fit,
        "fit_crops": int(len(fit_crops)),
        "test_crops": int(len(test_crops)),
        "test_keypoints": int(labelled.sum()),
        "reference_peak_mean": round(float(peaks.mean()), 4),
        "reference_background_median": round(float(np.median(reference)), 4),
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["s"])
    parser.add_argument("--fit-crops", type=int, default=86)
    parser.add_argument("--test-crops", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calib-crops", type=int, default=64, help="int8 calibration crops (train_mini)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu-2core/precision"))
    args = parser.parse_args()
    shared = Path(os.environ.get("POSESTREAM_SHARED", "../shared"))
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            results.append(run_variant(variant, shared, Path(tmp), args.fit_crops, args.test_crops, args.threads,
                                       args.calib_crops))  # fmt: skip
    from posestream.runtime.precision import cpu_flags, cpu_has_native_bf16, default_precision

    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_average_start": [round(x, 2) for x in load],
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cpu_flags_bf16_amx": sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f or "vnni" in f),
        "default_precision_openvino": default_precision("openvino"),
        "tolerance": TOLERANCE,
        "results": results,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Reduced precision on a peaked ViTPose (random backbone, fitted 1x1 head)",
        "",
        f"Command: `{report['command']}`; load average at start {report['load_average_start']}; "
        f"native bf16: {report['cpu_native_bf16']}; default precision (OpenVINO): "
        f"{report['default_precision_openvino']}. Reference: onnxruntime fp32 on the same file.",
        f"Tolerance for a default precision (relative to the fp32 peak): max deviation <= "
        f"{TOLERANCE['heatmap_max_dev']}, mean <= {TOLERANCE['heatmap_mean_dev']}. Keypoint displacement: crop px "
        "(192x256), labelled keypoints; compare with the 1%-noise control row.",
        "",
    ]
    for r in results:
        lines += [
            f"## ViTPose-{r['variant'].upper()}: fitted on {r['fit_crops']} train_mini crops, tested on "
            f"{r['test_crops']} val_subset crops ({r['test_keypoints']} labelled keypoints); reference peak "
            f"mean {r['reference_peak_mean']}, background median {r['reference_background_median']}",
            "",
            "| engine | precision | mean px | p95 px | max px | heatmap max dev | heatmap mean dev |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {x['engine']} | {x['precision']} | {x['mean_px']:.3f} | {x['p95_px']:.3f} | {x['max_px']:.3f} | "
                  f"{x['heatmap_max_dev']:.4f} | {x['heatmap_mean_dev']:.5f} |" for x in r["rows"]]
        lines.append("")
    (args.out / "precision.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
