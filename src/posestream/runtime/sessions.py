"""The one place that opens an inference session on an ONNX file.

A ``Session`` is what the pose backend and the person detector run: named inputs and outputs with
their graph shapes, the file's metadata, and ``run(feeds) -> outputs``. ``open_session`` builds one
for an engine:

* ``onnxruntime``: an ``ort.InferenceSession`` with ``threads`` intra-op threads and the requested
  execution providers (short names 'cpu', 'cuda', 'tensorrt'; CPU is always the last fallback).
  ONNX Runtime silently falls back to CPU when a provider cannot be loaded, so the granted
  providers are checked and every missing one is logged as a WARNING.
* ``openvino``: see ``posestream.runtime.openvino`` (imported only when asked for).

Whatever goes wrong while loading a file is a ``ModelFileError`` naming the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from posestream.errors import InputError, ModelFileError

if TYPE_CHECKING:  # pragma: no cover
    from posestream.runtime.quantize import CalibrationFactory

__all__ = [
    "Session",
    "TensorSpec",
    "OrtSession",
    "open_session",
    "resolve_providers",
    "ENGINES",
    "PROVIDERS",
    "GPU_PROVIDERS",
]

logger = logging.getLogger(__name__)

ENGINES = ("onnxruntime", "openvino")
# Short names accepted on the command line / in configs -> ONNX Runtime execution providers.
PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
GPU_PROVIDERS = frozenset({PROVIDERS["cuda"], PROVIDERS["tensorrt"]})
NUMPY_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One graph input or output: name, shape (ints, or None for a symbolic / unknown dimension),
    numpy dtype (None when it is not a floating type)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: type | None


class Session(Protocol):
    """An opened model. ``name`` says engine and device, e.g. "onnxruntime[CPUExecutionProvider]"."""

    path: Path
    name: str
    engine: str
    precision: str  # what it computes in: fp32 | bf16 | int8 (an fp16 file: fp32 here)
    on_gpu: bool
    threads: int  # intra-op threads, as the engine reports them
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: dict[str, str]
    errors: tuple[type[Exception], ...]  # what the engine raises for a model it cannot load or run

    def run(self, feeds: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Inputs by name -> the outputs named (all, in graph order, when None)."""
        ...


def resolve_providers(providers: Sequence[str] | str) -> list[str]:
    """Short names ('cpu', 'cuda', 'tensorrt') or full EP names -> EP names, CPU appended as fallback."""
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p]
    resolved: list[str] = []
    for provider in providers:
        name = PROVIDERS.get(provider.lower(), provider)
        if name not in PROVIDERS.values():
            choices = ", ".join(PROVIDERS)
            raise InputError(f"providers: unknown execution provider {provider!r}, expected one of {choices}")
        if name not in resolved:
            resolved.append(name)
    if PROVIDERS["cpu"] not in resolved:
        resolved.append(PROVIDERS["cpu"])
    return resolved


def static_dim(dim: object) -> int | None:
    """A graph dimension as an int, or None when it is symbolic ('batch') or unknown."""
    return dim if isinstance(dim, int) and dim > 0 else None


def open_session(
    path: str | Path,
    *,
    engine: str = "onnxruntime",
    threads: int = 1,
    providers: Sequence[str] = ("cpu",),
    precision: str = "fp32",
    what: str = "model",
    calibration: CalibrationFactory | None = None,
    cache_dir: Path | None = None,
) -> Session:
    """Open ``path`` (an ONNX file) on ``engine`` with ``threads`` intra-op threads.

    precision: "fp32" runs the file as it is (an fp16 or int8 file keeps its own precision);
    "int8" quantises an fp32 file first (``posestream.runtime.quantize``, with ``calibration``,
    cached in ``cache_dir``); openvino also takes "bf16" (see ``posestream.runtime.openvino``).
    what: how errors name the file ("pose model", "detector model").
    Raises ModelFileError for a missing or unloadable file, InputError for a bad setting.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} file not found")
    if int(threads) < 1:
        raise InputError(f"{what} threads: expected >= 1, got {threads}")
    if cache_dir is None:
        from posestream.paths import cache_dir as default_cache

        cache_dir = default_cache() / engine
    if engine == "onnxruntime":
        if precision not in ("fp32", "int8"):
            raise InputError(f"{what}: onnxruntime runs fp32 or int8 (fp16 files as they are), not {precision!r}")
        if precision == "int8":
            facts = onnx_facts(path, Path(cache_dir))
            if not facts["quantized"]:
                from posestream.runtime.quantize import quantized_model

                path = quantized_model(path, engine, calibration, facts["metadata"], Path(cache_dir))
        session = OrtSession(path, threads=int(threads), providers=providers, engine_cache_root=cache_dir)
        session.precision = precision
        return session
    if engine == "openvino":
        from posestream.runtime.openvino import OpenVinoSession

        return OpenVinoSession(
            path, threads=int(threads), precision=precision, cache_dir=cache_dir, calibration=calibration
        )
    raise InputError(f"{what}: unknown engine {engine!r}, expected one of {', '.join(ENGINES)}")


class OrtSession:
    """An ONNX Runtime ``InferenceSession`` behind the ``Session`` protocol (see ``open_session``)."""

    engine = "onnxruntime"
    precision = "fp32"

    def __init__(
        self,
        path: Path,
        *,
        threads: int,
        providers: Sequence[str] = ("cpu",),
        tensorrt_fp16: bool = False,
        engine_cache_root: str | Path | None = None,
    ) -> None:
        """tensorrt_fp16: let TensorRT use FP16 kernels. engine_cache_root: where TensorRT engines are
        cached, one folder per GPU / compute capability / TensorRT version (``runtime.engine_cache``;
        default ``$POSESTREAM_CACHE/onnxruntime``)."""
        import onnxruntime as ort

        self.path = Path(path)
        requested = resolve_providers(providers)
        # Ask only for providers this onnxruntime build has (else it may refuse); anything requested
        # but not granted, for either reason, is reported once below.
        available = set(ort.get_available_providers())
        usable = [p for p in requested if p in available] or [PROVIDERS["cpu"]]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.errors = ort_load_errors()
        self.engine_key, self.engine_cache = None, None
        provider_args: list = list(usable)
        if PROVIDERS["tensorrt"] in usable:
            provider_args = self._tensorrt_providers(usable, tensorrt_fp16, engine_cache_root)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=provider_args)
        except self.errors as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path}: not a loadable ONNX model ({reason})") from exc
        granted = self.session.get_providers()
        for provider in requested:
            if provider not in granted:
                logger.warning(
                    "%s: execution provider %s was requested but not granted by onnxruntime %s "
                    "(available: %s); running on %s",
                    self.path.name, provider, ort.__version__, ", ".join(sorted(available)), granted[0],
                )  # fmt: skip
        self.providers: tuple[str, ...] = tuple(granted)
        self.on_gpu = granted[0] in GPU_PROVIDERS
        self.name = f"onnxruntime[{granted[0]}]"
        self.inputs = tuple(_ort_spec(i) for i in self.session.get_inputs())
        self.outputs = tuple(_ort_spec(o) for o in self.session.get_outputs())
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        if self.engine_cache is not None and granted[0] == PROVIDERS["tensorrt"]:
            self._check_engine(options, tolerance=0.05 if tensorrt_fp16 else 0.01)

    def _tensorrt_providers(self, usable: list[str], fp16: bool, cache_root: str | Path | None) -> list:
        """The providers with TensorRT's engine cache in the folder of this machine's engine key."""
        from posestream.runtime import engine_cache

        key = engine_cache.detect_engine_key()
        if key is None:
            logger.warning("%s: TensorRT requested, but no NVIDIA GPU with TensorRT found", self.path.name)
            return list(usable)
        if cache_root is None:
            from posestream.paths import cache_dir

            cache_root = cache_dir() / self.engine
        self.engine_key, self.engine_cache = key, engine_cache.engine_cache_dir(cache_root, key)
        self.engine_cache.mkdir(parents=True, exist_ok=True)
        logger.info("%s: TensorRT engines for %s cached in %s", self.path.name, key.describe(),
                    self.engine_cache)  # fmt: skip
        options = engine_cache.tensorrt_provider_options(self.engine_cache, fp16)
        return [(name, options) if name == PROVIDERS["tensorrt"] else name for name in usable]

    def _check_engine(self, options, tolerance: float) -> None:
        """First engine of this file under this key: compare it with a CPU session before trusting it.

        tolerance: of the largest reference output value (fp16 kernels get more). Raises
        ModelFileError when the engine disagrees (the check is not recorded, so it runs again).
        """
        import onnxruntime as ort

        from posestream.runtime.engine_cache import file_sha256, needs_check, record_check

        sha = file_sha256(self.path)
        if not needs_check(self.engine_cache, sha):
            return
        shape = self.inputs[0].shape
        if len(self.inputs) != 1 or None in shape[1:]:
            logger.warning("%s: inputs %s are not checkable with one probe; engine not checked",
                           self.path.name, [i.shape for i in self.inputs])  # fmt: skip
            return
        probe = np.random.default_rng(0).standard_normal((shape[0] or 2, *shape[1:]))
        feeds = {self.inputs[0].name: probe.astype(self.inputs[0].dtype or np.float32)}
        cpu = ort.InferenceSession(str(self.path), sess_options=options, providers=[PROVIDERS["cpu"]])
        expected, got = cpu.run(None, feeds), self.session.run(None, feeds)
        diff = max(float(np.max(np.abs(g.astype(np.float64) - e))) for g, e in zip(got, expected))
        limit = tolerance * max(float(np.max(np.abs(e))) for e in expected) + 1e-4
        result = {"max_abs_diff": diff, "tolerance": limit, "passed": diff <= limit, "reference": "ort-cpu"}
        if not result["passed"]:
            raise ModelFileError(
                f"{self.path}: the TensorRT engine built on {self.engine_key.describe()} disagrees with "
                f"ONNX Runtime on the CPU (max abs diff {diff:.3g} > {limit:.3g}); use providers cuda or cpu"
            )
        record_check(self.engine_cache, sha, self.engine_key, result)
        logger.info("%s: new TensorRT engine checked against the CPU: max abs diff %.3g (tolerance %.3g)",
                    self.path.name, diff, limit)  # fmt: skip

    @property
    def threads(self) -> int:
        """Intra-op threads, as the session reports them."""
        return int(self.session.get_session_options().intra_op_num_threads)

    def run(self, feeds: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        return self.session.run(None if output_names is None else list(output_names), feeds)

    def __repr__(self) -> str:
        return f"OrtSession({str(self.path)!r}, {self.name}, threads={self.threads})"


def _ort_spec(node) -> TensorSpec:
    shape = tuple(static_dim(d) for d in node.shape) if node.shape is not None else ()
    return TensorSpec(node.name, shape, NUMPY_DTYPES.get(node.type))


def ort_load_errors() -> tuple[type[Exception], ...]:
    """What onnxruntime raises for a file it cannot load or run (all derive from Exception directly)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    return (
        ort_state.Fail,
        ort_state.InvalidArgument,
        ort_state.InvalidGraph,
        ort_state.InvalidProtobuf,
        ort_state.NoSuchFile,
        ort_state.NotImplemented,
        ort_state.RuntimeException,
    )


def read_onnx_facts(path: Path) -> dict:
    """Inputs and outputs ``[name, shape, "f32"|"f16"|"f64"|None]``, metadata, the op types of the
    graph and its subgraphs, and whether it is already quantised, parsed from the file without
    running anything (JSON-ready). Costs the ``onnx`` import (~1.4 s here): start-up paths use
    ``onnx_facts``, which caches the result."""
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
        raise ModelFileError(f"{path}: not a loadable ONNX model ({type(exc).__name__})") from exc
    types = {TensorProto.FLOAT: "f32", TensorProto.FLOAT16: "f16", TensorProto.DOUBLE: "f64"}
    initializers = {init.name for init in model.graph.initializer}

    def spec(value) -> list:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
        return [value.name, dims, types.get(tensor.elem_type)]

    def op_types(graph) -> set[str]:
        found = set()
        for node in graph.node:
            found.add(node.op_type)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    found |= op_types(attr.g)
                for sub in attr.graphs:
                    found |= op_types(sub)
        return found

    ops = op_types(model.graph)
    return {
        "inputs": [spec(v) for v in model.graph.input if v.name not in initializers],
        "outputs": [spec(v) for v in model.graph.output],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "op_types": sorted(ops),
        "quantized": bool(ops & {"QuantizeLinear", "DequantizeLinear", "MatMulInteger", "ConvInteger"}),
    }


def onnx_facts(path: Path, cache_dir: Path | None = None) -> dict:
    """``read_onnx_facts``, parsed once per file version and then read from a small JSON file in
    ``cache_dir`` (default ``<posestream cache>/onnx-facts``), keyed by the file's path, size and
    modification time: a run with cached models never imports ``onnx``."""
    import json

    from posestream.runtime.quantize import file_key

    if cache_dir is None:
        from posestream.paths import cache_dir as default_cache

        cache_dir = default_cache() / "onnx-facts"
    cached = Path(cache_dir) / f"{file_key(Path(path), 'facts', 'op_types')}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.info("%s: unreadable cache entry %s, reading the model again", Path(path).name, cached)
    facts = read_onnx_facts(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(facts), encoding="utf-8")
        tmp.replace(cached)
    except OSError as exc:  # a read-only cache only costs the next run the parse
        logger.info("%s: facts not cached (%s)", Path(path).name, exc)
    return facts
