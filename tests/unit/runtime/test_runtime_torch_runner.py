"""The torch model runner on the CPU: buckets, eager calls, the device-tensor entry of the backend.

CUDA graphs and torch.compile are exercised on a GPU (``tests/gpu``); compiling on these 2 shared
cores takes minutes, so here only the choices around them are checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestream.runtime.torch import TorchPoseBackend
from posestream.runtime.torch_runner import BucketedRunner

from pose_synthetic import BrightSpotModel  # tests/ is on sys.path


def test_buckets_and_the_cpu_path():
    model = BrightSpotModel()
    runner = BucketedRunner(model, device=torch.device("cpu"), dtype=torch.float32, input_size_hw=(256, 192),
                            cuda_graphs=True, buckets=(8, 1, 4, 4))  # fmt: skip
    assert runner.buckets == (1, 4, 8)
    assert [runner.bucket_for(n) for n in (1, 2, 4, 5, 8)] == [1, 4, 4, 8, 8]
    assert not runner.cuda_graphs and not runner.compiled  # graphs need CUDA; compile was not asked for
    assert runner.warm_up() == 0.0  # eager on the CPU: nothing to prepare
    x = torch.randn(3, 3, 256, 192)
    with torch.inference_mode():
        torch.testing.assert_close(runner(x), model(x))  # no padding without graphs
    with pytest.raises(ValueError, match="positive"):
        BucketedRunner(model, device=torch.device("cpu"), dtype=torch.float32, input_size_hw=(256, 192),
                       buckets=(0, 2))  # fmt: skip


def test_backend_forward_keeps_tensors_on_the_device_and_call_returns_numpy():
    backend = TorchPoseBackend(BrightSpotModel(), device="cpu", dtype="bf16")
    assert not backend.on_gpu and backend.runner.compiled is False and backend.runner.cuda_graphs is False
    batch = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    with torch.inference_mode():
        on_device = backend.forward(torch.from_numpy(batch))
    assert isinstance(on_device, torch.Tensor) and on_device.dtype == torch.bfloat16
    heatmaps = backend(batch)
    assert heatmaps.dtype == np.float32 and heatmaps.shape == (2, 17, 64, 48)
    np.testing.assert_allclose(heatmaps, on_device.float().numpy())
