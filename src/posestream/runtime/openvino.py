"""OpenVINO sessions on ONNX files: the runtime made for CPU inference.

The same ONNX file the onnxruntime backend reads is compiled for the CPU at a precision:

* ``fp32``: as exported.
* ``bf16``: ``INFERENCE_PRECISION_HINT=bf16``; OpenVINO keeps accuracy-critical ops in f32. Native
  only where the CPU has AVX512_BF16 or AMX; elsewhere OpenVINO would emulate it (slow), so the
  session then runs f32 and says so.
* ``int8``: a file that is already quantised (QuantizeLinear/DequantizeLinear nodes, e.g. from
  ``posestream export --precision int8``) runs as is; an fp32 file is quantised once with NNCF
  post-training quantisation on calibration inputs the caller provides (real person crops for the
  pose model, real frames for the detector), and the quantised model is cached.

Start-up: the compiled model is cached (OpenVINO's ``CACHE_DIR``) together with a small JSON of
the file's inputs, outputs and metadata, so a second run imports the compiled blob without
parsing the ONNX file at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posestream.errors import InputError, ModelFileError
from posestream.runtime.quantize import CalibrationFactory, quantized_model
from posestream.runtime.sessions import TensorSpec, onnx_facts

__all__ = ["OpenVinoSession", "cpu_native_precisions", "core"]

logger = logging.getLogger(__name__)

_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 comes from the quantised graph itself
_NUMPY = {"f32": np.float32, "f16": np.float16, "f64": np.float64}
_CORE = None
_CORE_LOCK = threading.Lock()
# OpenVINO sets the process's locale to "C" and back around a model load; two loads at once can
# leave it at "C" (text I/O then decodes as ASCII), so loads take turns.
_LOAD_LOCK = threading.Lock()


def core():
    """The process's one ``openvino.Core`` (it owns the CPU plugin and its thread pool)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


def cpu_native_precisions() -> tuple[str, ...]:
    """Precisions this CPU runs natively, from OpenVINO's ``OPTIMIZATION_CAPABILITIES`` (which reads
    the CPU flags: BF16 means AVX512_BF16 or AMX, INT8 means VNNI or at least AVX2 int8 dot products)."""
    caps = set(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    out = ["fp32"]
    if "BF16" in caps:
        out.append("bf16")
    if "INT8" in caps:
        out.append("int8")
    return tuple(out)


class OpenVinoSession:
    """An ONNX file compiled by OpenVINO for the CPU, behind the ``Session`` protocol.

    threads: ``INFERENCE_NUM_THREADS`` (one stream, latency hint, no core pinning: the graph's
    other stages share the cores). precision: see the module docstring. cache_dir: compiled blobs,
    quantised models and their facts (default ``<posestream cache>/openvino``). calibration: needed
    for ``int8`` on a file that is not quantised yet: called with the file's metadata (so the
    caller can prepare inputs as the model wants them), it returns the ``Calibration``.
    """

    engine = "openvino"
    on_gpu = False
    errors: tuple[type[Exception], ...] = (RuntimeError,)

    def __init__(
        self,
        path: Path,
        *,
        threads: int,
        precision: str = "fp32",
        cache_dir: Path | None = None,
        calibration: CalibrationFactory | None = None,
    ) -> None:
        if precision not in _HINTS:
            raise InputError(f"openvino: precision {precision!r}, expected one of {', '.join(_HINTS)}")
        self.path = Path(path)
        if cache_dir is None:
            from posestream.paths import cache_dir as default_cache

            cache_dir = default_cache() / "openvino"
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        native = cpu_native_precisions()
        hint = _HINTS[precision]
        if precision == "bf16" and "bf16" not in native:
            logger.warning(
                "%s: bf16 asked for, but this CPU has no native bf16 (no AVX512_BF16 / AMX); running fp32",
                self.path.name,
            )
            precision, hint = "fp32", "f32"

        facts = onnx_facts(self.path, self.cache_dir)  # inputs, outputs, metadata (cached beside the blobs)
        compile_path = self.path
        if precision == "int8" and not facts["quantized"]:
            compile_path = quantized_model(self.path, "openvino", calibration, facts["metadata"], self.cache_dir)
        config = {
            "INFERENCE_NUM_THREADS": int(threads),
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,
            "INFERENCE_PRECISION_HINT": hint,
            "CACHE_DIR": str(self.cache_dir / "blobs"),
        }
        try:
            with _LOAD_LOCK:
                self.compiled = core().compile_model(str(compile_path), "CPU", config)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path}: OpenVINO cannot compile this model ({reason})") from exc
        self._request = self.compiled.create_infer_request()
        self.precision = precision
        self.providers: tuple[str, ...] = (f"CPU:{precision}",)
        self.name = f"openvino[CPU,{precision}]"
        self.inputs = tuple(TensorSpec(n, tuple(s), _NUMPY.get(t)) for n, s, t in facts["inputs"])
        self.outputs = tuple(TensorSpec(n, tuple(s), _NUMPY.get(t)) for n, s, t in facts["outputs"])
        self.metadata: dict[str, str] = dict(facts["metadata"])
        self._output_index = {spec.name: i for i, spec in enumerate(self.outputs)}

    @property
    def threads(self) -> int:
        """``INFERENCE_NUM_THREADS`` as the compiled model reports it."""
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    # ------------------------------------------------------------------ running
    def run(self, feeds: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> list[np.ndarray]:
        result = self._request.infer(feeds)
        names = [spec.name for spec in self.outputs] if output_names is None else list(output_names)
        return [np.array(result[self._output_index[name]]) for name in names]

    def __repr__(self) -> str:
        return f"OpenVinoSession({str(self.path)!r}, {self.name}, threads={self.threads})"
