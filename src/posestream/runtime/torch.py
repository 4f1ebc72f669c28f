"""PyTorch pose backend: an ``nn.Module`` mapping (N, 3, H, W) to (N, K, h, w) heatmaps.

Two ways in: ``__call__`` (numpy in, float32 numpy out: the ``PoseBackend`` protocol) and
``forward`` (a tensor on the backend's device in, heatmaps on the device out), which the
device-side estimator (``posestream.estimation.device``) uses so crops never leave the GPU.
On CUDA the fast path is on by default: ``torch.compile``, one CUDA graph per batch bucket and
channels-last convolutions (see ``posestream.runtime.torch_runner``).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from posestream.errors import InputError
from posestream.keypoints import keypoint_set_for
from posestream.runtime.base import ModelInfo, ModelInfoAttributes
from posestream.runtime.torch_runner import DEFAULT_GPU_BUCKETS, BucketedRunner

__all__ = ["TorchPoseBackend", "TORCH_DTYPES"]

logger = logging.getLogger(__name__)

TORCH_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchPoseBackend(ModelInfoAttributes):
    """Run a pose ``nn.Module`` under ``torch.inference_mode()``. See ``PoseBackend`` for the attributes.

    model: maps (N, 3, H, W) to (N, K, h, w); it is put in eval mode and moved to device/dtype.
    device: "cpu", "cuda", "cuda:1", ... dtype: "fp32", "fp16" or "bf16" (weights and input;
    heatmaps come back as float32 numpy). info: input size, normalisation and keypoint set
    (default COCO-17 ViTPose); K and the heatmap size are measured with one zero crop. When K is
    not the info's set's K, a default (COCO) set is replaced by ``keypoint_set_for(K)``; any other set
    is an error.
    compile, cuda_graphs, channels_last: the fast path (``BucketedRunner``); None = on for a CUDA
    device, off on the CPU. buckets: the batch sizes CUDA graphs are captured for.
    """

    max_batch: int | None = None

    def __init__(
        self,
        model: nn.Module,
        device: str = "cpu",
        dtype: str = "fp32",
        info: ModelInfo | None = None,
        *,
        compile: bool | None = None,
        cuda_graphs: bool | None = None,
        channels_last: bool | None = None,
        buckets: tuple[int, ...] = DEFAULT_GPU_BUCKETS,
    ) -> None:
        if dtype not in TORCH_DTYPES:
            raise InputError(f"dtype: expected one of {sorted(TORCH_DTYPES)}, got {dtype!r}")
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise InputError(f"device: {device!r} is not a torch device ({exc})") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device: {device!r} requested, but torch {torch.__version__} sees no GPU")
        self.dtype = TORCH_DTYPES[dtype]
        cuda = self.device.type == "cuda"
        channels_last = cuda if channels_last is None else channels_last
        self.model = model.eval().to(device=self.device, dtype=self.dtype)
        if channels_last:  # the backbone's feature map is NHWC in memory already: the deconvs read it as is
            self.model = self.model.to(memory_format=torch.channels_last)
        self.name = f"torch[{self.device},{dtype}]"

        info = info or ModelInfo()
        with torch.inference_mode():  # eager, so measuring the output shape compiles nothing
            zero = torch.zeros((1, 3, *info.input_size_hw), device=self.device, dtype=self.dtype)
            probe = self.model(zero)
        if not isinstance(probe, torch.Tensor) or probe.ndim != 4:
            got = type(probe).__name__
            raise TypeError(f"{self.name}: the model must return an (N, K, h, w) tensor, got {got}")
        num_keypoints, height, width = probe.shape[1:]
        if num_keypoints != info.num_keypoints:
            if info.keypoint_set != ModelInfo().keypoint_set:
                raise InputError(
                    f"model outputs {num_keypoints} keypoints, its keypoint set {info.keypoint_set.describe()} "
                    f"has {info.num_keypoints}"
                )
            info = info.with_(keypoint_set=keypoint_set_for(int(num_keypoints)))
        self.info = info.with_(heatmap_size_hw=(int(height), int(width)))
        self.runner = BucketedRunner(
            self.model, device=self.device, dtype=self.dtype, input_size_hw=info.input_size_hw,
            compile=cuda if compile is None else compile, buckets=buckets, channels_last=channels_last,
            cuda_graphs=cuda if cuda_graphs is None else cuda_graphs, label=self.name,
        )  # fmt: skip

    def warm_up(self, sizes: tuple[int, ...] | None = None) -> float:
        """Compile and capture ahead of the first frame (see ``BucketedRunner.warm_up``); seconds."""
        return self.runner.warm_up(sizes)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) tensor (normalised, any float dtype, any device) -> (N, K, h, w) heatmaps on
        ``self.device`` in the model's dtype. Call under ``torch.inference_mode()``; with CUDA graphs
        the result is overwritten by the next call."""
        return self.runner(batch)

    @property
    def on_gpu(self) -> bool:
        return self.device.type != "cpu"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            return self.forward(x).float().cpu().numpy()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, K, h, w) float32 heatmaps."""
        height, width = self.input_size_hw
        if batch.ndim != 4 or tuple(batch.shape[1:]) != (3, height, width):
            raise ValueError(f"{self.name}: expected a batch (N, 3, {height}, {width}), got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, self.num_keypoints, *self.heatmap_size_hw), dtype=np.float32)
        return self._run(batch)

    def __repr__(self) -> str:
        return f"TorchPoseBackend({type(self.model).__name__}, name={self.name!r}, info={self.info})"
