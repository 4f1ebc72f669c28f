"""Pose backends on real ONNX Runtime sessions and real torch modules (tiny models built here)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from posestream.errors import InputError, ModelFileError
from posestream.keypoints import get_keypoint_set
from posestream.runtime.base import ModelInfo, PoseBackend
from posestream.runtime.factory import open_pose_backend
from posestream.runtime.onnx import OnnxPoseBackend
from posestream.runtime.torch import TorchPoseBackend

COCO_KEYPOINTS = get_keypoint_set("coco").keypoints


def tiny_weights(k: int = 17, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Conv 4x4 / stride 4 weights (K, 3, 4, 4) and bias (K,): 256x192 input -> 64x48 heatmaps."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.05, (k, 3, 4, 4)).astype(np.float32), rng.normal(0, 0.1, k).astype(np.float32)


def write_tiny_onnx(
    path: Path,
    k: int = 17,
    batch: int | str = "N",
    fp16: bool = False,
    metadata: dict[str, str] | None = None,
    input_name: str = "input",
    static_output: bool = True,
) -> Path:
    """ONNX model (batch, 3, 256, 192) -> sigmoid(conv) (batch, K, 64, 48); fp16 = fp16 input/output."""
    weight, bias = tiny_weights(k)
    io_type = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes, source = [], input_name
    if fp16:
        nodes.append(helper.make_node("Cast", [input_name], ["x32"], to=TensorProto.FLOAT))
        source = "x32"
    conv = helper.make_node("Conv", [source, "W", "B"], ["logits"], kernel_shape=[4, 4], strides=[4, 4])
    nodes.append(conv)
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["h32" if fp16 else "heatmaps"]))
    if fp16:
        nodes.append(helper.make_node("Cast", ["h32"], ["heatmaps"], to=TensorProto.FLOAT16))
    out_shape = [batch, k, 64, 48] if static_output else [batch, "K", "h", "w"]
    graph = helper.make_graph(
        nodes,
        "tiny_pose",
        [helper.make_tensor_value_info(input_name, io_type, [batch, 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", io_type, out_shape)],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, metadata or {})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def ort_backend(path, **kwargs):
    """An ONNX file on onnxruntime (the factory's default engine on a CPU is OpenVINO)."""
    return open_pose_backend(path, engine="onnxruntime", **kwargs)


def tiny_torch_module(k: int = 17) -> nn.Module:
    weight, bias = tiny_weights(k)
    conv = nn.Conv2d(3, k, kernel_size=4, stride=4)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        conv.bias.copy_(torch.from_numpy(bias))
    return nn.Sequential(conv, nn.Sigmoid())


def random_batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 3, 256, 192)).astype(np.float32)


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def test_ort_session_runs_and_reads_graph_defaults(dynamic_onnx):
    backend = ort_backend(dynamic_onnx, threads=1)
    assert isinstance(backend, PoseBackend)
    assert backend.name == "onnxruntime[CPUExecutionProvider]"
    assert backend.input_size_hw == (256, 192) and backend.heatmap_size_hw == (64, 48)
    assert backend.num_keypoints == 17 and backend.keypoint_names == COCO_KEYPOINTS
    assert backend.max_batch is None and backend.random_weights is False and backend.color_order == "RGB"
    heatmaps = backend(random_batch(3))
    assert heatmaps.shape == (3, 17, 64, 48) and heatmaps.dtype == np.float32
    assert backend(random_batch(0)).shape == (0, 17, 64, 48)
    with pytest.raises(ValueError, match=r"expected a batch \(N, 3, 256, 192\)"):
        backend(np.zeros((1, 3, 128, 96), np.float32))


def test_ort_reads_posestream_metadata(tmp_path):
    names = [f"joint_{i}" for i in range(5)]
    metadata = {
        "posestream.variant": "s",
        "posestream.decoder": "classic",
        "posestream.input_size_hw": "256,192",
        "posestream.heatmap_size_hw": "64,48",
        "posestream.keypoint_names": json.dumps(names),
        "posestream.mean": "[1.0, 2.0, 3.0]",
        "posestream.std": "[4.0, 5.0, 6.0]",
        "posestream.color_order": "BGR",
        "posestream.random_weights": "true",
        "posestream.precision": "fp32",
    }
    path = write_tiny_onnx(tmp_path / "meta.onnx", k=5, metadata=metadata)
    backend = ort_backend(path, threads=1)
    assert backend.keypoint_names == tuple(names) and backend.num_keypoints == 5
    assert backend.mean == (1.0, 2.0, 3.0) and backend.std == (4.0, 5.0, 6.0)
    assert backend.color_order == "BGR" and backend.random_weights is True
    assert (backend.info.variant, backend.info.decoder, backend.info.precision) == ("s", "classic", "fp32")


def test_ort_metadata_that_contradicts_the_graph_is_a_model_file_error(tmp_path):
    two_names = {"posestream.keypoint_names": '["a", "b"]'}
    bad_names = write_tiny_onnx(tmp_path / "names.onnx", k=5, metadata=two_names)
    with pytest.raises(ModelFileError, match="names.onnx: metadata names 2 keypoints, the graph outputs 5"):
        ort_backend(bad_names)
    bad_json = write_tiny_onnx(tmp_path / "json.onnx", metadata={"posestream.mean": "[1, 2"})
    with pytest.raises(ModelFileError, match=r"json.onnx: metadata 'posestream.mean'"):
        ort_backend(bad_json)


def test_ort_without_metadata_takes_k_from_graph_or_a_probe(tmp_path):
    static = ort_backend(write_tiny_onnx(tmp_path / "k5.onnx", k=5, input_name="img"), threads=1)
    assert static.num_keypoints == 5 and static.keypoint_names[0] == "keypoint_0"
    assert static.input_name == "img"
    dynamic_output = write_tiny_onnx(tmp_path / "dyn.onnx", k=7, static_output=False)
    probed = ort_backend(dynamic_output, threads=1)
    assert probed.num_keypoints == 7 and probed.heatmap_size_hw == (64, 48)


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")  # onnxruntime's own notice
def test_requested_provider_not_granted_is_logged(dynamic_onnx, caplog):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback warning cannot be provoked")
    with caplog.at_level(logging.WARNING, logger="posestream.runtime.sessions"):
        backend = ort_backend(dynamic_onnx, providers=("cuda", "cpu"), threads=1)
    assert backend.name == "onnxruntime[CPUExecutionProvider]"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("CUDAExecutionProvider was requested but not granted" in m for m in messages)
    assert not any("CPUExecutionProvider was requested" in m for m in messages)


def test_unknown_provider_name_is_an_input_error(dynamic_onnx):
    with pytest.raises(InputError, match="unknown execution provider 'gpu'"):
        ort_backend(dynamic_onnx, providers=("gpu",))


def test_missing_and_non_onnx_files_are_model_file_errors(tmp_path, dynamic_onnx):
    with pytest.raises(ModelFileError, match="absent.onnx: pose model file not found"):
        ort_backend(tmp_path / "absent.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not an ONNX model\n")
    with pytest.raises(ModelFileError, match="notes.onnx: not a loadable ONNX model"):
        ort_backend(text)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(dynamic_onnx.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="truncated.onnx"):
        ort_backend(truncated)


def test_fixed_batch_of_one_runs_crops_one_by_one_with_same_result(tmp_path, dynamic_onnx, caplog):
    with caplog.at_level(logging.INFO, logger="posestream.runtime.onnx"):
        fixed = ort_backend(write_tiny_onnx(tmp_path / "b1.onnx", batch=1), threads=1)
    assert fixed.max_batch == 1
    assert sum("fixed batch of 1" in r.getMessage() for r in caplog.records) == 1
    dynamic = ort_backend(dynamic_onnx, threads=1)
    batch = random_batch(5)
    np.testing.assert_allclose(fixed(batch), dynamic(batch), atol=1e-6)


def test_fp16_model_takes_float32_and_returns_float32(tmp_path, dynamic_onnx):
    half = ort_backend(write_tiny_onnx(tmp_path / "fp16.onnx", fp16=True), threads=1)
    batch = random_batch(2)
    heatmaps = half(batch)
    assert heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps, ort_backend(dynamic_onnx)(batch), atol=2e-3)


def test_torch_backend_matches_ort_on_same_weights(dynamic_onnx):
    backend = TorchPoseBackend(tiny_torch_module(), device="cpu", dtype="fp32")
    assert isinstance(backend, PoseBackend)
    assert backend.name == "torch[cpu,fp32]"
    assert backend.heatmap_size_hw == (64, 48) and backend.num_keypoints == 17
    batch = random_batch(3)
    heatmaps = backend(batch)
    assert heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps, ort_backend(dynamic_onnx)(batch), atol=1e-5)
    bf16 = TorchPoseBackend(tiny_torch_module(), dtype="bf16")
    assert bf16.name == "torch[cpu,bf16]"
    np.testing.assert_allclose(bf16(batch), heatmaps, atol=2e-2)


def test_torch_backend_rejects_bad_dtype_and_device():
    with pytest.raises(InputError, match="dtype"):
        TorchPoseBackend(tiny_torch_module(), dtype="int8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no GPU"):
            TorchPoseBackend(tiny_torch_module(), device="cuda")


def test_torch_backend_names_generic_keypoints_for_other_k():
    backend = TorchPoseBackend(tiny_torch_module(k=3), info=ModelInfo(color_order="BGR"))
    assert backend.keypoint_names == ("keypoint_0", "keypoint_1", "keypoint_2")
    assert backend.color_order == "BGR" and backend.random_weights is False
    backend.random_weights = True  # callers that load weights themselves set it afterwards
    assert backend.info.random_weights is True


def test_factory_dispatches_on_kind(tmp_path, dynamic_onnx):
    assert isinstance(ort_backend(dynamic_onnx, providers=("cpu",), threads=1), OnnxPoseBackend)
    assert open_pose_backend(dynamic_onnx, threads=1).session.engine == "openvino"  # auto on a CPU
    assert open_pose_backend(dynamic_onnx, threads=1, providers=("cuda",)).session.engine == "onnxruntime"
    assert isinstance(open_pose_backend(tiny_torch_module()), TorchPoseBackend)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0" * 16)
    with pytest.raises(ModelFileError, match="model.engine: .*TensorRT"):
        ort_backend(engine)
    with pytest.raises(ModelFileError, match="weights.pth: unsupported model file"):
        ort_backend(tmp_path / "weights.pth")
    with pytest.raises(InputError, match="names no known ViTPose variant"):
        open_pose_backend("torch:vitpose-xxl")


def test_factory_builds_random_vitpose_in_torch():
    backend = open_pose_backend("torch:vitpose-s")
    assert isinstance(backend, TorchPoseBackend) and backend.random_weights is True
    assert backend.heatmap_size_hw == (64, 48) and backend.num_keypoints == 17 and backend.info.variant == "s"


# ---------------------------------------------------------------------------- one factory


def test_backends_say_whether_they_run_on_a_gpu(dynamic_onnx):
    from posestream.app import GPU_BUCKETS, _batch_buckets
    from posestream.config import Config

    cpu_backends = [ort_backend(dynamic_onnx, threads=1), open_pose_backend(tiny_torch_module())]
    assert [b.on_gpu for b in cpu_backends] == [False, False]
    assert _batch_buckets(Config(), cpu_backends[0]) is None  # no padding on CPU
    gpu_like = type("GpuBackend", (), {"on_gpu": True})()  # what a CUDA session reports
    assert _batch_buckets(Config(), gpu_like) == GPU_BUCKETS


def test_run_eval_and_bench_all_build_through_the_factory(dynamic_onnx, monkeypatch):
    import argparse

    from posestream.app import build_pose_backend
    from posestream.bench.backends import BACKENDS
    from posestream.bench.backends import open_backend as bench_open
    from posestream.config import apply_overrides, Config
    from posestream.evaluation.cli import open_backend as eval_open
    from posestream.runtime import factory

    calls: list[str] = []
    real = factory.open_pose_backend

    def recording(model=None, **kwargs):
        calls.append(type(model).__name__ if factory.is_torch_module(model) else str(model))
        return real(model, **kwargs)

    monkeypatch.setattr(factory, "open_pose_backend", recording)
    build_pose_backend(apply_overrides(Config(), {"pose.model": str(dynamic_onnx), "pose.threads": 1}))
    eval_args = argparse.Namespace(pose_model=str(dynamic_onnx), variant=None, weights=None, providers="cpu")
    eval_open(eval_args, dataset=None)
    source = type("Source", (), {"onnx_file": lambda self: dynamic_onnx, "torch_model": lambda self: tiny_torch_module(),
                                 "variant": "s", "torch_random": True})()  # fmt: skip
    bench_open(BACKENDS["ort-cpu"], source, threads=1)
    bench_open(BACKENDS["torch-cpu-fp32"], source, threads=1)
    assert calls == [str(dynamic_onnx)] * 3 + ["Sequential"]


def test_nothing_outside_the_runtime_constructs_a_backend_or_session():
    """Static: constructors of backends and sessions are called only in runtime/factory.py and
    runtime/sessions.py (a caller that builds its own would miss engines, precisions, threads)."""
    import ast

    import posestream

    allowed = {
        "OnnxPoseBackend": {"runtime/factory.py"},
        "TorchPoseBackend": {"runtime/factory.py"},
        "InferenceSession": {"runtime/sessions.py"},
        "OrtSession": {"runtime/sessions.py"},
        "OpenVinoSession": {"runtime/sessions.py"},
    }
    root = Path(posestream.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in allowed:
                    found.append((name, rel))
                    assert rel in allowed[name], f"{rel} constructs {name}: use open_pose_backend / open_session"
    assert {name for name, _ in found} >= {"OnnxPoseBackend", "TorchPoseBackend", "InferenceSession"}


def test_an_onnx_run_never_imports_torch(tmp_path, make_video):
    """`posestream run` with ONNX models, in a fresh interpreter: torch stays out of sys.modules."""
    import os
    import subprocess
    import sys

    model = write_tiny_onnx(tmp_path / "pose.onnx")
    video = make_video(n=4)
    out = tmp_path / "out.jsonl"
    code = (
        "import sys\n"
        "from posestream.cli import main\n"
        f"rc = main(['run', {str(video)!r}, '--pose-model', {str(model)!r}, '--out-json', {str(out)!r},"
        " '--no-progress'])\n"
        "print('TORCH-IMPORTED' if 'torch' in sys.modules else 'NO-TORCH', rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["NO-TORCH", "0"], done.stdout + done.stderr
    assert len(out.read_text().splitlines()) == 4


def test_a_run_on_cached_models_imports_none_of_the_slow_modules(tmp_path, shared):
    """Start-up: the second run on the same files (facts and compiled models cached) with the real
    YOLOX, tracking and the default one-euro smoothing never imports ``onnx`` (1.4 s here, for the
    facts), ``filterpy`` (scipy.stats, 1.5 s; Kalman only), ``scipy.optimize`` (0.7 s) or ``torch``."""
    import os
    import subprocess
    import sys

    model = write_tiny_onnx(tmp_path / "pose.onnx")
    video = shared / "media" / "pose2sim_multiperson_cam01.mp4"  # people: the tracker solves assignments
    detector = shared / "models" / "yolox_nano_coco.onnx"
    code = (
        "import sys\n"
        "from posestream.cli import main\n"
        f"rc = main(['run', {str(video)!r}, '--detector', {str(detector)!r}, '--pose-model', {str(model)!r},"
        f" '--out-json', sys.argv[1], '--max-frames', '4', '--no-progress'])\n"
        "slow = [m for m in ('onnx', 'filterpy', 'scipy.stats', 'scipy.optimize', 'torch') if m in sys.modules]\n"
        "print('IMPORTED', *slow, 'RC', rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "POSESTREAM_CACHE": str(tmp_path / "cache")}
    lines = []
    for run in ("first", "second"):
        out = tmp_path / f"{run}.jsonl"
        done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                              timeout=120, env=env, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(out.read_text().splitlines()) == 4
        lines.append(done.stdout.split("IMPORTED", 1)[1].split())
    assert "onnx" in lines[0]  # the first run parses the files: the check below can fail
    assert lines[1] == ["RC", "0"], lines
