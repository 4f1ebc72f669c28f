"""OpenVINO sessions on the same ONNX files, precision defaults from the CPU flags, compile cache."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from posestream.runtime import precision as precision_mod
from posestream.runtime import sessions
from posestream.runtime.factory import open_pose_backend
from posestream.runtime.precision import resolve_precision

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    from test_runtime_backends import write_tiny_onnx  # same folder (pytest prepends it to sys.path)

    return write_tiny_onnx(tmp_path_factory.mktemp("ov") / "tiny.onnx")


def _batch(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (n, 3, 256, 192)).astype(np.float32)


def test_openvino_runs_the_onnx_file_like_onnxruntime(tiny_onnx, tmp_path):
    ov = open_pose_backend(tiny_onnx, engine="openvino", precision="fp32", threads=1)
    ort = open_pose_backend(tiny_onnx, engine="onnxruntime", precision="fp32", threads=1)
    assert ov.name == "openvino[CPU,fp32]" and ov.precision == "fp32" and ov.on_gpu is False
    assert ov.session.threads == 1 and ov.num_keypoints == 17 and ov.max_batch is None
    np.testing.assert_allclose(ov(_batch(3)), ort(_batch(3)), atol=1e-5)
    assert ov(_batch(0)).shape == (0, 17, 64, 48)


def test_second_open_reads_the_cached_facts_not_the_onnx_file(tiny_onnx, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = sessions.open_session(tiny_onnx, engine="openvino", threads=1, cache_dir=cache)
    assert list(cache.glob("*.json")) and any((cache / "blobs").iterdir())  # facts + compiled blob

    def no_parse(path):
        raise AssertionError("the ONNX file was parsed again")

    monkeypatch.setattr(sessions, "read_onnx_facts", no_parse)
    second = sessions.open_session(tiny_onnx, engine="openvino", threads=1, cache_dir=cache)
    assert second.inputs == first.inputs and second.metadata == first.metadata


def test_default_precision_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert resolve_precision("auto", "openvino")[0] == "bf16"
    assert resolve_precision("auto", "onnxruntime")[0] == "fp32"  # ORT on CPU has no bf16 path
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert resolve_precision("auto", "openvino") == ("fp32", "default: no native bf16 on this CPU")
    with pytest.raises(Exception, match="not offered by onnxruntime"):
        resolve_precision("bf16", "onnxruntime")


def test_bf16_without_native_support_runs_fp32_and_says_so(tiny_onnx, monkeypatch, caplog):
    monkeypatch.setattr("posestream.runtime.openvino.cpu_native_precisions", lambda: ("fp32", "int8"))
    with caplog.at_level(logging.WARNING, logger="posestream.runtime.openvino"):
        backend = open_pose_backend(tiny_onnx, engine="openvino", precision="bf16", threads=1)
    assert backend.precision == "fp32" and "no native bf16" in caplog.text


def test_int8_of_an_fp32_file_without_calibration_is_an_input_error(tiny_onnx):
    from posestream.errors import InputError

    with pytest.raises(InputError, match="needs calibration data"):
        open_pose_backend(tiny_onnx, engine="openvino", precision="int8", threads=1)


def test_default_precision_stays_within_the_stated_tolerance(shared, tmp_path):
    """The precision `auto` picks on this machine (bf16 where native, else fp32) against fp32, on a
    ViTPose head fitted to real person crops; tolerance: benchmarks/precision_check.py."""
    import torch

    from posestream.bench.peaked import compare_heatmaps, fit_peaked_head
    from posestream.evaluation.calibration import open_calibration_folder, person_crops
    from posestream.export.onnx import export_onnx
    from posestream.models.vitpose import ViTPose
    from posestream.runtime.base import ModelInfo

    info = ModelInfo()
    pairs = list(person_crops(open_calibration_folder(shared / "coco" / "train_mini"), info.input_size_hw,
                              info.mean, info.std, info.color_order, 24))  # fmt: skip
    crops, keypoints = np.concatenate([c for c, _ in pairs]), np.stack([k for _, k in pairs])
    torch.manual_seed(0)
    model = ViTPose(embed_dim=64, depth=2, num_heads=2).eval()
    fit_peaked_head(model, crops, keypoints)
    path = export_onnx(model, tmp_path / "fitted.onnx", random_weights=False).path
    default = open_pose_backend(path, engine="openvino", threads=2)  # precision auto
    reference = open_pose_backend(path, engine="onnxruntime", precision="fp32", threads=2)
    figures = compare_heatmaps(reference(crops), default(crops), keypoints[..., 2] > 0)
    assert figures.heatmap_max_dev <= 0.05 and figures.heatmap_mean_dev <= 0.01, (default.precision, figures)
