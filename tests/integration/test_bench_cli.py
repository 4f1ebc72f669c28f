"""`posestream bench` end to end on a tiny ViTPose, plus the parts a CPU machine cannot run for real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posestream import cli
from posestream.bench.backends import (
    BACKENDS,
    Capabilities,
    default_e2e_backends,
    open_backend,
    select_backends,
)
from posestream.bench.end_to_end import E2ESettings, pose_config
from posestream.bench.model_only import make_batch, time_calls
from posestream.bench.models import PoseModelSource
from posestream.models.vitpose import ViTPose


def tiny_vitpose() -> ViTPose:
    torch.manual_seed(0)
    return ViTPose(embed_dim=64, depth=2, num_heads=2)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    from posestream.export.onnx import export_onnx

    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    export_onnx(tiny_vitpose(), path, random_weights=True)
    return path


def test_bench_writes_json_md_png_with_every_figure(shared, tiny_onnx, tmp_path, capsys):
    from posestream.runtime.precision import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16()
    out = tmp_path / "bench"
    code = cli.main(["bench", "--pose-model", str(tiny_onnx), "--batch-sizes", "1", "2", "--seconds", "0.2",
                     "--frames", "4", "--out-dir", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads((out / "bench.json").read_text())
    assert report["weights"]["random"] is True
    assert report["environment"]["cpu"] and report["environment"]["versions"]["onnxruntime"]

    ok = [c for c in report["model_only"]["cells"] if c["status"] == "ok"]
    ov = [("ov-cpu-fp32", 1), ("ov-cpu-fp32", 2)] + ([("ov-cpu-bf16", 1), ("ov-cpu-bf16", 2)] if bf16 else [])
    assert [(c["backend"], c["batch"]) for c in ok] == [("ort-cpu", 1), ("ort-cpu", 2)] + ov
    for cell in ok:
        assert cell["granted"][0] in ("CPUExecutionProvider", "CPU:fp32", "CPU:bf16") and cell["calls"] >= 3
        assert cell["crops_per_s"] > 0 and cell["p50_ms"] <= cell["p95_ms"]
    # The PyTorch backends cannot rebuild a custom-sized ONNX file; they are listed as not measured.
    assert any("torch-cpu-fp32" in s["what"] for s in report["skipped"])

    runs = report["end_to_end"]["runs"]
    assert [r["backend"] for r in runs] == ["ort-cpu", "ov-cpu-fp32"] + (["ov-cpu-bf16"] if bf16 else [])
    run = runs[0]
    assert run["frames"] == 4 and " threads on " in run["thread_budget"] and "pose" in run["thread_budget"]
    assert run["graph"]["fps"] > 0 and run["sequential"]["fps"] > 0 and run["stage_alone"]["fps"] > 0
    assert run["speedup_vs_sequential"] > 0 and 0 < run["efficiency"]
    stages = [s["name"] for s in run["graph"]["stages"]]
    assert stages == ["decode", "detect", "track", "pose", "render", "video"]
    people = round(run["people_per_frame"] * 4)
    assert people > 0
    assert run["graph"]["model_calls"] == 4  # one batched call per frame
    assert run["sequential"]["model_calls"] == people and run["sequential"]["batch_buckets"] == [1]
    assert Path(run["graph"]["video"]).stat().st_size > 0
    assert not list((out / "videos").glob("*stagealone*"))

    md = (out / "bench.md").read_text()
    for heading in ("RANDOM WEIGHTS", "## Model-only", "## End-to-end", "## Sequential baseline vs graph",
                    "## Graph efficiency"):  # fmt: skip
        assert heading in md
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "## Graph efficiency" in captured.out and "[model-only]" in captured.err


@pytest.mark.parametrize(
    "flags",
    [
        ["--variants", "xl"],
        ["--backends", "ort-gpu"],
        ["--batch-sizes", "0"],
        ["--seconds", "0"],
        ["--frames", "0"],
        ["--skip-e2e", "--skip-model"],
        ["--variants", "s", "--pose-model", "x.onnx"],
        ["--skip-model", "--clip", "no-such-clip.mp4"],
        ["--skip-e2e", "--pose-model", "no-such-model.onnx"],
    ],
)
def test_bad_flags_exit_2_with_one_line(flags, tmp_path, capsys):
    assert cli.main(["bench", *flags, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("posestream: error:")
    assert not (tmp_path / "bench.json").exists()


def test_torch_backend_cell_times_a_copy_of_the_module(tmp_path):
    model = tiny_vitpose()
    source = PoseModelSource(label="tiny", variant="s", cache_dir=tmp_path, _model=model)
    backend = open_backend(BACKENDS["torch-cpu-fp32"], source, threads=1)
    times = time_calls(backend, make_batch(2, backend.input_size_hw), seconds=0.0, warmup=1)
    assert times.calls == 3 and times.crops_per_s > 0 and backend.random_weights
    assert backend.model is not model  # the module shared by the other backends stays fp32


def test_time_calls_warms_up_then_times_at_least_min_calls():
    calls = []
    ticks = iter(np.arange(0.0, 100.0, 0.5))

    def call(batch):
        calls.append(len(batch))
        return batch

    batch = np.zeros((4, 3, 8, 8), np.float32)
    times = time_calls(call, batch, seconds=0.1, warmup=2, clock=lambda: next(ticks))
    assert len(calls) == 2 + times.calls and times.calls == 3
    assert times.mean_ms == pytest.approx(500.0) and times.crops_per_s == pytest.approx(8.0)


def test_gpu_backends_are_selected_only_where_the_libraries_report_them():
    cpu_only = Capabilities(("CPUExecutionProvider",), torch_cuda=False)
    selected, skipped = select_backends(None, cpu_only)
    from posestream.runtime.precision import cpu_has_native_bf16

    ov = ["ov-cpu-fp32"] + (["ov-cpu-bf16"] if cpu_has_native_bf16() else [])
    assert [s.name for s in selected] == ["ort-cpu", *ov, "torch-cpu-fp32", "torch-cpu-bf16"] and not skipped
    selected, skipped = select_backends(["ort-cpu", "torch-cuda-fp16", "ort-trt"], cpu_only)
    assert [s.name for s in selected] == ["ort-cpu"]
    assert skipped["torch-cuda-fp16"] == "torch sees no CUDA device"
    assert "TensorrtExecutionProvider" in skipped["ort-trt"]

    # The H100 machine: torch with CUDA, onnxruntime CPU-only.
    h100 = Capabilities(("CPUExecutionProvider",), torch_cuda=True)
    selected, _ = select_backends(None, h100)
    assert {"torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16"} <= {s.name for s in selected}
    assert "ort-cuda" not in {s.name for s in selected}
    e2e = [s.name for s in default_e2e_backends(selected)]
    assert e2e == ["ort-cpu", *ov, "torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16"]

    ort_gpu = Capabilities(
        ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"), torch_cuda=False
    )
    selected, _ = select_backends(["ort-trt", "ort-cuda"], ort_gpu)
    assert [s.provider for s in selected] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert BACKENDS["ort-trt"].providers == ("tensorrt", "cuda")  # TensorRT falls back to CUDA, then CPU


def test_torch_cuda_end_to_end_config_names_the_device_and_dtype(tmp_path):
    source = PoseModelSource(label="b", variant="b", cache_dir=tmp_path)
    settings = E2ESettings(Path("clip.mp4"), Path("det.onnx"), frames=5, threads=3, video_dir=None)
    config = pose_config(BACKENDS["torch-cuda-fp16"], source, settings, video=None)
    assert (config.pose.model, config.pose.device, config.pose.precision) == ("torch:b", "cuda", "fp16")
    assert config.source.max_frames == 5 and config.pose.threads == 3 and config.output.video is None
    assert config.smooth.filter == "none"  # the bench preset
