"""Which precision a backend runs at when the user does not say: the fastest this CPU runs natively
without measurable loss.

* bf16 where the CPU has AVX512_BF16 or AMX-BF16 (Intel Sapphire Rapids+, AMD Zen 4+): OpenVINO
  and torch then run matmuls at roughly twice the fp32 rate, with heatmaps within the tolerance
  stated in ``benchmarks/precision_check.py``.
* fp32 elsewhere: without those instructions bf16 is emulated (slower than fp32), and int8 moves
  keypoints measurably (see the precision report), so it is offered, never chosen silently.

The CPU flags are read from ``/proc/cpuinfo`` (Linux); elsewhere OpenVINO's
``OPTIMIZATION_CAPABILITIES`` answers the same question.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

from posestream.errors import InputError

__all__ = ["PRECISIONS", "cpu_flags", "cpu_has_native_bf16", "default_precision", "resolve_precision"]

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8", "fp16")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
ENGINE_PRECISIONS = {
    "onnxruntime": ("fp32", "int8"),  # fp16: a file exported as fp16 runs as is under fp32
    "openvino": ("fp32", "bf16", "int8"),
    "torch": ("fp32", "bf16", "fp16"),
}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (lower case), empty when they cannot be read."""
    cpuinfo = Path("/proc/cpuinfo")
    if sys.platform.startswith("linux") and cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    flags = cpu_flags()
    if flags:
        return bool(flags & BF16_FLAGS)
    try:  # not Linux: ask OpenVINO, which reads the same CPUID bits
        from posestream.runtime.openvino import cpu_native_precisions
    except ImportError:
        return False
    return "bf16" in cpu_native_precisions()


def default_precision(engine: str, on_gpu: bool = False) -> str:
    """The precision an engine runs at by default on this machine (see the module docstring)."""
    if on_gpu:
        return "fp32"
    if engine in ("openvino", "torch") and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def resolve_precision(precision: str, engine: str, on_gpu: bool = False) -> tuple[str, str]:
    """('auto' or a precision, engine) -> (precision, why) for the run summary; InputError when the
    engine cannot run it."""
    if precision == "auto":
        chosen = default_precision(engine, on_gpu)
        native = "native bf16 (AVX512_BF16/AMX)" if chosen == "bf16" else "no native bf16 on this CPU"
        return chosen, f"default: {native}"
    if precision not in PRECISIONS:
        raise InputError(f"precision: {precision!r}, expected auto or one of {', '.join(PRECISIONS)}")
    allowed = ENGINE_PRECISIONS.get(engine, PRECISIONS)
    if precision not in allowed:
        raise InputError(f"precision {precision} is not offered by {engine} (it offers {', '.join(allowed)})")
    return precision, "asked for"
