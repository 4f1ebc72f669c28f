"""TensorRT engine cache keys: a new GPU, compute capability or TensorRT version means a new engine."""

from __future__ import annotations

import json

from posestream.runtime.engine_cache import (
    EngineKey,
    engine_cache_dir,
    engine_stale_reason,
    needs_check,
    record_check,
    tensorrt_provider_options,
    write_engine_record,
)

H200 = EngineKey("NVIDIA H200", "9.0", "10.9.0")


def test_every_part_of_the_key_picks_its_own_cache_folder(tmp_path):
    variants = [
        H200,
        EngineKey("NVIDIA A100-SXM4-80GB", "8.0", "10.9.0"),  # another GPU
        EngineKey("NVIDIA H200", "9.0", "10.13.2"),  # another TensorRT
        EngineKey("NVIDIA H200", "10.0", "10.9.0"),  # another compute capability, same name
    ]
    folders = {engine_cache_dir(tmp_path, key) for key in variants}
    assert len(folders) == 4
    assert engine_cache_dir(tmp_path, EngineKey("NVIDIA H200", "9.0", "10.9.0")) == engine_cache_dir(tmp_path, H200)
    assert engine_cache_dir(tmp_path, H200) == tmp_path / "tensorrt" / "nvidia-h200-cc9.0-trt10.9.0"
    odd = EngineKey("NVIDIA GeForce RTX 4090 / Laptop", "8.9", "8.6.1")
    assert engine_cache_dir(tmp_path, odd).name == "nvidia-geforce-rtx-4090-laptop-cc8.9-trt8.6.1"


def test_onnx_runtime_caches_engines_in_the_key_folder(tmp_path):
    folder = engine_cache_dir(tmp_path, H200)
    options = tensorrt_provider_options(folder, fp16=True)
    assert options["trt_engine_cache_enable"] == "True" and options["trt_engine_cache_path"] == str(folder)
    assert options["trt_fp16_enable"] == "True"
    assert tensorrt_provider_options(folder, fp16=False)["trt_fp16_enable"] == "False"


def test_a_new_key_is_checked_again_and_a_failed_check_is_not_trusted(tmp_path):
    here = engine_cache_dir(tmp_path, H200)
    assert needs_check(here, "sha-a")  # nothing built under this key yet
    record_check(here, "sha-a", H200, {"max_abs_diff": 0.002, "tolerance": 0.01, "passed": True})
    assert not needs_check(here, "sha-a")
    assert needs_check(here, "sha-b")  # another ONNX file
    elsewhere = engine_cache_dir(tmp_path, EngineKey("NVIDIA H200", "9.0", "10.13.2"))
    assert needs_check(elsewhere, "sha-a")  # TensorRT upgraded: rebuilt and checked again
    record_check(here, "sha-c", H200, {"max_abs_diff": 0.5, "tolerance": 0.01, "passed": False})
    assert needs_check(here, "sha-c") and not needs_check(here, "sha-a")  # records of other files kept
    (here / "checked.json").write_text("{not json", encoding="utf-8")  # a damaged record: check again
    assert needs_check(here, "sha-a")


def test_an_exported_engine_says_when_it_must_be_rebuilt(tmp_path):
    engine = tmp_path / "vitpose-b.engine"
    engine.write_bytes(b"\0" * 16)
    assert "no record" in engine_stale_reason(engine, H200)
    record = write_engine_record(engine, H200, "sha-a", {"max_abs_diff": 1e-4, "reference": "pytorch"})
    assert json.loads(record.read_text())["key"]["gpu_name"] == "NVIDIA H200"
    assert engine_stale_reason(engine, H200) is None
    reason = engine_stale_reason(engine, EngineKey("NVIDIA L4", "8.9", "10.9.0"))
    assert "built for NVIDIA H200 (compute 9.0, TensorRT 10.9.0)" in reason and "NVIDIA L4" in reason
    assert "no usable GPU" in engine_stale_reason(engine, None)
