"""Fixtures for whole-graph tests: one exported ViTPose-S ONNX (random weights) per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def vitpose_s_onnx(tmp_path_factory) -> Path:
    """ViTPose-S (classic decoder) with seeded random weights, exported through our exporter."""
    import torch

    from posestream.export.onnx import export_onnx
    from posestream.models.vitpose import build_vitpose

    torch.manual_seed(0)
    model = build_vitpose("s").eval()
    path = tmp_path_factory.mktemp("models") / "vitpose-s-random.onnx"
    export_onnx(model, path, random_weights=True)
    return path
