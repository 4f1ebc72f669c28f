"""ONNX export of ViTPose: verified against PyTorch, metadata written, dynamic batch, fp16 / int8, CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from posestream.errors import ExportError, InputError
from posestream.export import cli
from posestream.export.onnx import export_onnx
from posestream.export.tensorrt import build_engine, tensorrt_available
from posestream.keypoints import get_keypoint_set
from posestream.models.vitpose import ViTPose, build_vitpose

COCO_KEYPOINTS = get_keypoint_set("coco").keypoints


def _tiny(**kw) -> ViTPose:
    torch.manual_seed(0)
    return ViTPose(embed_dim=32, depth=2, num_heads=2, **kw).eval()


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def s_export(tmp_path_factory):
    torch.manual_seed(0)
    model = build_vitpose("s").eval()
    out = tmp_path_factory.mktemp("onnx") / "vitpose-s.onnx"
    return model, export_onnx(model, out, random_weights=True)


def test_s_export_is_verified_at_batch_1_and_7(s_export):
    _, report = s_export
    assert report.batch_sizes_checked == (1, 7)
    assert report.precision == "fp32" and report.tolerance == 1e-3 and report.opset == 17
    assert report.max_abs_diff < 1e-4  # measured ~2e-7
    assert report.max_abs_reference > 0.01  # the comparison saw real signal
    assert report.path.is_file() and report.size_bytes == report.path.stat().st_size
    leftovers = list(report.path.parent.glob("*.data")) + list(report.path.parent.glob("posestream-export-*"))
    assert leftovers == []  # single file, temp dir removed


def test_s_export_metadata_and_dynamic_batch(s_export):
    model, report = s_export
    proto = onnx.load(str(report.path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["posestream.variant"] == "s"
    assert meta["posestream.decoder"] == "classic"
    assert meta["posestream.input_size_hw"] == "256,192"
    assert meta["posestream.heatmap_size_hw"] == "64,48"
    assert json.loads(meta["posestream.keypoint_names"]) == list(COCO_KEYPOINTS)
    assert json.loads(meta["posestream.mean"]) == [123.675, 116.28, 103.53]
    assert json.loads(meta["posestream.std"]) == [58.395, 57.12, 57.375]
    assert meta["posestream.color_order"] == "RGB"
    assert meta["posestream.random_weights"] == "true"
    assert meta["posestream.precision"] == "fp32"

    session = _session(report.path)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "heatmaps")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [3, 256, 192]
    assert isinstance(out.shape[0], str) and out.shape[1:] == [17, 64, 48]
    x = np.random.default_rng(5).standard_normal((3, 3, 256, 192), dtype=np.float32)  # a batch not checked
    (got,) = session.run(["heatmaps"], {"input": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-4


def test_tolerance_breach_raises_and_leaves_no_file(tmp_path: Path):
    out = tmp_path / "tiny.onnx"
    with pytest.raises(ExportError, match=r"differs from PyTorch by .* \(tolerance 1e-12 for fp32\)"):
        export_onnx(_tiny(), out, random_weights=False, atol=1e-12)
    assert list(tmp_path.iterdir()) == []


def test_fp16_export_runs_on_cpu_with_fp32_io(tmp_path: Path):
    model = _tiny(decoder="simple", num_keypoints=4)
    report = export_onnx(model, tmp_path / "tiny16.onnx", fp16=True, random_weights=False)
    assert report.precision == "fp16" and report.tolerance == 1e-2
    assert 0 < report.max_abs_diff < report.tolerance  # not bit-exact: it really is fp16 inside
    proto = onnx.load(str(report.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert (meta["posestream.precision"], meta["posestream.random_weights"]) == ("fp16", "false")
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    session = _session(report.path)
    assert [session.get_inputs()[0].type, session.get_outputs()[0].type] == ["tensor(float)"] * 2


def test_cli_int8_from_a_weights_file(tmp_path: Path, capsys):
    model = _tiny()
    weights = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), weights)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    # the tiny ViT is no known variant: the CLI says so
    args = parser.parse_args(["--weights", str(weights), "--out", str(tmp_path / "t8.onnx"), "--int8"])
    with pytest.raises(InputError, match=r"is no known variant \(s, b, l, h\)"):
        cli.run(args)
    # a real variant, random weights, int8: written, loudly, and not judged (flat heatmaps say nothing)
    out = tmp_path / "s8.onnx"
    args = parser.parse_args(["--variant", "s", "--decoder", "simple", "--out", str(out), "--precision", "int8"])
    assert cli.run(args) == 0
    captured = capsys.readouterr()
    assert "max abs diff" in captured.out and "not judged: random weights" in captured.out
    assert "int8            dynamic" in captured.out
    assert "RANDOM WEIGHTS" in captured.err
    proto = onnx.load(str(out))
    assert any(t.data_type == onnx.TensorProto.INT8 for t in proto.graph.initializer)
    assert out.stat().st_size < 0.5 * 21.7e6 * 4  # well under the fp32 size of ViTPose-S simple


def test_static_int8_of_a_fitted_model_is_judged_on_real_crops(tmp_path: Path, shared: Path):
    """int8 judged on real inputs: a head fitted (ridge) to Gaussian targets on real person crops,
    quantised statically with ranges from those crops, compared with PyTorch on held-out crops."""
    from posestream.bench.peaked import compare_heatmaps, fit_peaked_head
    from posestream.evaluation.calibration import open_calibration_folder, person_crop_calibration, person_crops
    from posestream.runtime.base import ModelInfo
    from posestream.runtime.factory import open_pose_backend

    model = _tiny(decoder="classic")
    info = ModelInfo()

    def crops(folder: str, limit: int):
        pairs = list(person_crops(open_calibration_folder(shared / "coco" / folder), info.input_size_hw, info.mean,
                                  info.std, info.color_order, limit))  # fmt: skip
        return np.concatenate([c for c, _ in pairs]), np.stack([k for _, k in pairs])

    fit = fit_peaked_head(model, *crops("train_mini", 48))
    assert fit["mean_peak"] > 3 * abs(fit["mean_background"])  # peaks above the background
    calibration = person_crop_calibration(shared / "coco" / "train_mini", info, limit=32)
    report = export_onnx(model, tmp_path / "p8.onnx", int8=True, random_weights=False, calibration=calibration)
    assert report.judged and report.quantisation == "static (calibrated)"
    assert report.max_abs_diff <= report.tolerance
    test_crops, test_kp = crops("val_subset", 24)
    with torch.no_grad():
        reference = model(torch.from_numpy(test_crops)).numpy()
    got = open_pose_backend(report.path, engine="onnxruntime", threads=2)(test_crops)
    figures = compare_heatmaps(reference, got, test_kp[..., 2] > 0)
    # A linear head on random features peaks weakly (peak ~4x the background), so keypoint shifts
    # here are dominated by near-ties (1% Gaussian noise alone moves them ~13 px): judged by the
    # heatmap deviation instead, relative to the peak. Keypoint figures: benchmarks/precision_check.py.
    assert figures.heatmap_mean_dev <= 0.05, figures


def test_cli_rejects_bad_flags(tmp_path: Path):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(InputError, match="--opset 9"):
        cli.run(parser.parse_args(["--variant", "s", "--out", str(tmp_path / "x.onnx"), "--opset", "9"]))
    with pytest.raises(InputError, match="--variant is required with random weights"):
        cli.run(parser.parse_args(["--out", str(tmp_path / "x.onnx")]))
    with pytest.raises(InputError, match="--int8 applies to --format onnx only"):
        engine = str(tmp_path / "x.engine")
        cli.run(parser.parse_args(["--variant", "s", "--out", engine, "--int8", "--format", "engine"]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(tensorrt_available(), reason="tensorrt is installed here")
def test_tensorrt_missing_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ExportError, match="tensorrt is not installed"):
        build_engine(tmp_path / "x.onnx", tmp_path / "x.engine", fp16=True)
