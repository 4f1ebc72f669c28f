"""Where TensorRT engines are cached, and when a cached engine must be rebuilt.

A TensorRT engine runs only on the GPU model and TensorRT version that built it; loading one
built elsewhere fails or, worse, runs wrongly, and stale engine caches are the bug peers'
users report most. So every engine lives under a key of **GPU name, compute capability and
TensorRT version**: ONNX Runtime's TensorRT execution provider gets a cache folder per key
(``<cache>/tensorrt/<key slug>/``), and ``posestream export --format engine`` writes the key
beside the engine (``<engine>.json``). A new key means a new folder: the engine is rebuilt, and
the first build under a key is checked against a plain ONNX Runtime CPU session on the same
input before it is trusted (``needs_check`` / ``record_check``); the export path's engines are
built from an ONNX file that has just passed the ORT-vs-PyTorch check.

Everything here but ``detect_engine_key`` is pure and is tested without a GPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import logging
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "EngineKey",
    "detect_engine_key",
    "engine_cache_dir",
    "tensorrt_provider_options",
    "needs_check",
    "record_check",
    "write_engine_record",
    "engine_stale_reason",
    "file_sha256",
]

logger = logging.getLogger(__name__)

CHECK_FILE = "checked.json"  # in a cache folder: which ONNX files were checked under this key


@dataclass(frozen=True, slots=True)
class EngineKey:
    """What a TensorRT engine is bound to. compute_capability: e.g. "9.0"; tensorrt_version: "10.9.0"."""

    gpu_name: str
    compute_capability: str
    tensorrt_version: str

    def slug(self) -> str:
        """A folder name: ``nvidia-h200-cc9.0-trt10.9.0`` (lower case, safe characters only)."""
        text = f"{self.gpu_name}-cc{self.compute_capability}-trt{self.tensorrt_version}".lower()
        return re.sub(r"[^a-z0-9.]+", "-", text).strip("-")

    def describe(self) -> str:
        return f"{self.gpu_name} (compute {self.compute_capability}, TensorRT {self.tensorrt_version})"

    @classmethod
    def from_dict(cls, data: dict) -> EngineKey:
        return cls(str(data["gpu_name"]), str(data["compute_capability"]), str(data["tensorrt_version"]))


def engine_cache_dir(cache_root: str | Path, key: EngineKey) -> Path:
    """The folder for engines built under ``key``: ``<cache_root>/tensorrt/<key.slug()>``."""
    return Path(cache_root) / "tensorrt" / key.slug()


def tensorrt_provider_options(cache_dir: str | Path, fp16: bool) -> dict[str, str]:
    """ONNX Runtime TensorRT execution-provider options that cache engines (and kernel timings) in
    ``cache_dir``. fp16: allow FP16 kernels (the model's I/O stays as in the file)."""
    folder = str(Path(cache_dir))
    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": folder,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": folder,
        "trt_fp16_enable": "True" if fp16 else "False",
    }


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def needs_check(cache_dir: str | Path, onnx_sha256: str) -> bool:
    """True until an engine of this ONNX file has passed the check under this cache folder's key."""
    record = _read_json(Path(cache_dir) / CHECK_FILE).get(onnx_sha256)
    return not (isinstance(record, dict) and record.get("passed") is True)


def record_check(cache_dir: str | Path, onnx_sha256: str, key: EngineKey, result: dict) -> Path:
    """Note the check's ``result`` (``max_abs_diff``, ``tolerance``, ``passed``) for this ONNX file."""
    path = Path(cache_dir) / CHECK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    records = _read_json(path)
    records[onnx_sha256] = {"key": asdict(key), **result}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash leaves the old record, never half a file
    return path


def write_engine_record(engine_path: str | Path, key: EngineKey, onnx_sha256: str, check: dict) -> Path:
    """``<engine>.json`` beside an exported engine: the key it is bound to and its source's check."""
    path = Path(str(engine_path) + ".json")
    payload = {"key": asdict(key), "onnx_sha256": onnx_sha256, "onnx_check": check}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
    return path


def engine_stale_reason(engine_path: str | Path, key: EngineKey | None) -> str | None:
    """Why the engine at ``engine_path`` must be rebuilt on this machine (``key``), or None if it fits."""
    record = _read_json(Path(str(engine_path) + ".json"))
    if not record.get("key"):
        return f"{engine_path}: no record of the GPU and TensorRT version it was built for"
    try:
        built = EngineKey.from_dict(record["key"])
    except (KeyError, TypeError):
        return f"{engine_path}: its record ({engine_path}.json) is malformed"
    if key is None:
        return f"{engine_path}: built for {built.describe()}; this machine has no usable GPU / TensorRT"
    if built != key:
        return f"{engine_path}: built for {built.describe()}; this machine has {key.describe()}"
    return None


# ----------------------------------------------------------------------------------- detection
def _tensorrt_version() -> str | None:
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except ImportError:
        pass
    # ONNX Runtime's TensorRT provider loads libnvinfer without the Python package: ask the library.
    for name in ("libnvinfer.so.10", "libnvinfer.so.8", ctypes.util.find_library("nvinfer")):
        if not name:
            continue
        try:
            version = int(ctypes.CDLL(name).getInferLibVersion())
        except (OSError, AttributeError):
            continue
        major, minor, patch = version // 10000, version // 100 % 100, version % 100
        if major < 10:  # TensorRT 8.x encodes major * 1000 + minor * 100 + patch
            major, minor, patch = version // 1000, version // 100 % 10, version % 100
        return f"{major}.{minor}.{patch}"
    return None


def _gpu_identity() -> tuple[str, str] | None:
    """(name, compute capability) of GPU 0 from nvidia-smi, else torch; None without a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout  # fmt: skip
            name, capability = (part.strip() for part in out.splitlines()[0].split(","))
            return name, capability
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            pass
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    return None


def detect_engine_key() -> EngineKey | None:
    """This machine's key, or None when it has no NVIDIA GPU or no TensorRT."""
    gpu, version = _gpu_identity(), _tensorrt_version()
    if gpu is None or version is None:
        return None
    return EngineKey(gpu[0], gpu[1], version)
