"""How a torch pose model is called: eager or ``torch.compile``d, and on CUDA replayed from one
captured CUDA graph per batch bucket.

A ViTPose forward is a few hundred small kernels; at small batches a GPU spends more time being
told what to run than running it. A CUDA graph records the whole forward once per input shape
and replays it with one launch, so the batch is padded up to a *bucket* (1, 2, 4, ..., 256) and
each bucket's graph is captured once, on first use or in ``warm_up``, and kept (in memory: a
graph belongs to its process and device). ``torch.compile`` (Inductor) fuses the pointwise work
(GELU, LayerNorm, softmax, bias adds) into fewer kernels; the batch axis is marked dynamic so all
buckets above 1 share one compilation (batch 1 gets its own: torch specialises sizes 0 and 1).
Compiled code is cached on disk by Inductor (``TORCHINDUCTOR_CACHE_DIR``), which makes a second
run's warm-up much shorter.

Every optimisation falls back, with a WARNING, to the plainer path when it fails on this machine
(a compiler missing, a capture refused), so turning them on never stops a run.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence

import torch

__all__ = ["BucketedRunner", "DEFAULT_GPU_BUCKETS"]

logger = logging.getLogger(__name__)

DEFAULT_GPU_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_CAPTURE_WARMUP_CALLS = 3  # cuBLAS / Triton pick their kernels before capture (capture must not)


class BucketedRunner:
    """Calls ``module`` on (N, 3, H, W) batches of ``dtype`` on ``device``.

    compile: wrap ``module`` in ``torch.compile`` (dynamic batch). cuda_graphs: on a CUDA device,
    pad each batch to the smallest bucket >= N and replay that bucket's graph; a batch larger
    than the largest bucket runs in chunks of it. Without graphs the batch runs as is (eager and
    compiled code take any N). label: how log lines name the model.

    ``__call__`` returns the heatmaps (N, K, h, w) on the device in the model's dtype. With CUDA
    graphs they are a view of the graph's output buffer: read (or copy) them before the next call.
    ``warmups`` lists ``(bucket, seconds)`` for every graph captured so far.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        device: torch.device,
        dtype: torch.dtype,
        input_size_hw: tuple[int, int],
        compile: bool = False,
        cuda_graphs: bool = False,
        buckets: Sequence[int] = DEFAULT_GPU_BUCKETS,
        channels_last: bool = False,
        label: str = "pose model",
    ) -> None:
        self.module = module
        self.device = device
        self.dtype = dtype
        self.input_size_hw = tuple(input_size_hw)
        self.label = label
        self.channels_last = channels_last
        self.buckets = tuple(sorted({int(b) for b in buckets}))
        if not self.buckets or self.buckets[0] < 1:
            raise ValueError(f"buckets: expected positive batch sizes, got {tuple(buckets)}")
        self.cuda_graphs = bool(cuda_graphs) and device.type == "cuda"
        self.compiled = False
        self._fn: Callable[[torch.Tensor], torch.Tensor] = module
        if compile:
            self._fn = self._compile(module)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._pool = None
        self.warmups: list[tuple[int, float]] = []

    # ----------------------------------------------------------------------------------- setup
    def _compile(self, module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        try:
            compiled = torch.compile(module)
        except Exception as exc:  # noqa: BLE001 - e.g. no compiler on this platform: run eager
            logger.warning("%s: torch.compile unavailable (%s: %s); running eager", self.label,
                           type(exc).__name__, exc)  # fmt: skip
            return module
        self.compiled = True
        return compiled

    def _call_fn(self, x: torch.Tensor) -> torch.Tensor:
        """The module (compiled if asked), falling back to eager once if compiled code fails."""
        if not self.compiled:
            return self.module(x)
        try:
            if len(x) >= 2:  # one compilation for every batch >= 2 (torch specialises 1 on its own)
                torch._dynamo.mark_dynamic(x, 0)
            return self._fn(x)
        except Exception as exc:  # noqa: BLE001 - Inductor/Triton errors are many kinds; eager still works
            logger.warning("%s: compiled forward failed (%s: %s); falling back to eager", self.label,
                           type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip
            self.compiled = False
            self._fn = self.module
            return self.module(x)

    def bucket_for(self, n: int) -> int:
        """The bucket a chunk of ``n`` <= ``max(buckets)`` crops is padded to."""
        return self.buckets[bisect.bisect_left(self.buckets, n)]

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self.dtype, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _capture(self, bucket: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        t0 = time.perf_counter()
        static_in = torch.zeros((bucket, 3, *self.input_size_hw), device=self.device, dtype=self.dtype)
        static_in = self._prepare(static_in)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(_CAPTURE_WARMUP_CALLS):
                self._call_fn(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()  # one memory pool shared by every bucket's graph
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = self._call_fn(static_in)
        torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        self.warmups.append((bucket, seconds))
        logger.info("%s: CUDA graph for batch %d captured in %.2f s%s", self.label, bucket, seconds,
                    " (includes torch.compile of this shape)" if self.compiled else "")  # fmt: skip
        return graph, static_in, static_out

    def warm_up(self, sizes: Sequence[int] | None = None) -> float:
        """Compile / capture ahead of time for these batch sizes (default: every bucket), largest
        first so the shared graph memory pool is sized once. Returns the seconds it took."""
        if not (self.compiled or self.cuda_graphs):
            return 0.0  # eager: nothing to prepare
        t0 = time.perf_counter()
        largest = self.buckets[-1]
        sizes = self.buckets if sizes is None else sorted({self.bucket_for(min(s, largest)) for s in sizes})
        with torch.inference_mode():
            for size in sorted(sizes, reverse=True):
                self(torch.zeros((size, 3, *self.input_size_hw), device=self.device, dtype=self.dtype))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        what = "CUDA graphs" if self.cuda_graphs else ("compiled" if self.compiled else "eager")
        logger.info("%s: warm-up (%s) for batch %s took %.1f s", self.label, what,
                    ", ".join(map(str, sorted(sizes))), seconds)  # fmt: skip
        return seconds

    # ----------------------------------------------------------------------------------- call
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) on any device / float dtype -> (N, K, h, w) heatmaps on ``device`` (model dtype)."""
        x = self._prepare(x)
        if not self.cuda_graphs:
            return self._call_fn(x)
        n, largest = len(x), self.buckets[-1]
        if n > largest:
            return torch.cat([self._replay(x[start : start + largest]) for start in range(0, n, largest)])
        return self._replay(x)

    def _replay(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        bucket = self.bucket_for(n)
        if bucket not in self._graphs:
            try:
                self._graphs[bucket] = self._capture(bucket)
            except Exception as exc:  # noqa: BLE001 - capture refused (an op that syncs, old driver...)
                logger.warning("%s: CUDA graph capture failed for batch %d (%s: %s); running without graphs",
                               self.label, bucket, type(exc).__name__, exc)  # fmt: skip
                self.cuda_graphs = False
                self._graphs.clear()
                return self._call_fn(x)
        graph, static_in, static_out = self._graphs[bucket]
        static_in[:n].copy_(x)
        if n < bucket:
            static_in[n:].zero_()  # padding rows: zeros, as the CPU path pads
        graph.replay()
        return static_out[:n]
