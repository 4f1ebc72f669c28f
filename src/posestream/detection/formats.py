"""Which detector family an ONNX file is, told from the file (shapes, graph ops, metadata), never its name.

* **YOLOX** (Megvii, nano..x). Input ``[1, 3, H, W]``, output ``[1, A, 5 + C]`` with
  ``A = sum(H/s * W/s for s in (8, 16, 32))``. Two exports exist: *raw*
  (``decode_in_inference=False``, the official ONNX demo files) and *decoded*
  (``decode_in_inference=True``). Rule used to tell them apart (a structural fact, no inference
  run): the in-graph decode is the only place a YOLOX graph computes ``exp`` (the backbone's SiLU
  exports as Sigmoid * Mul), so a graph that contains an ONNX ``Exp`` node is *decoded*.
* **Ultralytics YOLOv8 / YOLO11** (``format="onnx"``, no NMS in graph). Output ``[1, 4 + C, A]``.
  The exporter writes ``metadata_props`` (``names``, ``stride``, ``imgsz``, ``task`` ...); when
  present they must agree (``task == "detect"``, ``len(names) == C``, ``names[0] == "person"``).

Anything else (e.g. end-to-end exports with NMS inside, ``[1, 300, 6]``) raises ``ModelFileError``
naming the file and the shapes found.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from posestream.detection.base import PERSON
from posestream.errors import ModelFileError
from posestream.runtime.sessions import Session, onnx_facts

__all__ = ["ModelFormat", "ModelSpec", "recognise_format", "num_anchors", "STRIDES"]

STRIDES: tuple[int, ...] = (8, 16, 32)  # the three detection heads of YOLOX and YOLOv8/11


class ModelFormat(enum.Enum):
    YOLOX_RAW = "yolox_raw"  # [1, A, 5 + C] grid offsets / log sizes, decoded here
    YOLOX_DECODED = "yolox_decoded"  # [1, A, 5 + C] cx, cy, w, h already in input pixels
    ULTRALYTICS = "ultralytics"  # [1, 4 + C, A] cx, cy, w, h in input pixels, class scores


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the recogniser learnt from a file: layout, network input size and class count."""

    format: ModelFormat
    input_size_hw: tuple[int, int]
    num_classes: int


def num_anchors(size_hw: tuple[int, int], strides: Sequence[int] = STRIDES) -> int:
    """Grid cells over all heads for an input of ``size_hw`` (e.g. 3549 for 416x416, 8400 for 640x640)."""
    h, w = size_hw
    return sum((h // s) * (w // s) for s in strides)


def recognise_format(session: Session, path: Path) -> ModelSpec:
    """Tell YOLOX (raw or decoded) from Ultralytics by input/output shapes, graph ops and metadata.

    Rules: one input ``[1|?, 3, H, W]`` (H, W from the graph, else from metadata ``imgsz``) and one
    rank-3 output. Ultralytics metadata (``names`` with ``stride`` or ``imgsz``) decides for
    Ultralytics and must agree with the shapes (a dynamic A is then accepted). Without it,
    ``[1, A, 5 + C]`` with ``A = num_anchors(H, W)`` is YOLOX and ``[1, 4 + C, A]`` is Ultralytics;
    a shape that fits both (``[1, A, A]``) is refused.
    Raises ModelFileError for anything else, naming the file and the shapes found.
    """
    inputs, outputs = session.inputs, session.outputs
    in_shapes = [list(i.shape) for i in inputs]
    out_shapes = [list(o.shape) for o in outputs]
    found = f"inputs {in_shapes}, outputs {out_shapes}"
    expected = (
        "expected a YOLOX export (input [1,3,H,W], output [1,A,5+C]) or an Ultralytics YOLOv8/YOLO11 "
        "detect export (output [1,4+C,A]), A = anchors over strides 8/16/32"
    )
    meta = session.metadata
    names, imgsz, task = _parse_metadata(meta, path)
    is_ultralytics_meta = names is not None and ("stride" in meta or imgsz is not None)

    if len(inputs) != 1 or len(outputs) != 1 or len(in_shapes[0]) != 4 or len(out_shapes[0]) != 3:
        raise ModelFileError(f"{path}: unrecognised detector layout, {found}; {expected}")
    if in_shapes[0][1] != 3 or in_shapes[0][0] not in (None, 1):
        raise ModelFileError(f"{path}: unrecognised detector input {in_shapes[0]}; {expected}")
    h, w = in_shapes[0][2], in_shapes[0][3]
    if h is None or w is None:
        if imgsz is None:
            raise ModelFileError(
                f"{path}: input size is dynamic {in_shapes[0]} and no 'imgsz' metadata; {expected}"
            )
        h, w = imgsz
    anchors = num_anchors((h, w))
    _, d1, d2 = out_shapes[0]

    if is_ultralytics_meta:
        if task not in (None, "detect"):
            raise ModelFileError(f"{path}: Ultralytics model with task '{task}', expected task 'detect'")
        if d1 != 4 + len(names) or d2 not in (None, anchors):
            raise ModelFileError(
                f"{path}: Ultralytics metadata lists {len(names)} classes but {found}; "
                f"expected output [1, {4 + len(names)}, {anchors}] for input {h}x{w}"
            )
        if names.get(PERSON) != "person":
            raise ModelFileError(f"{path}: class 0 is '{names.get(PERSON)}', expected 'person' (COCO order)")
        return ModelSpec(ModelFormat.ULTRALYTICS, (h, w), len(names))
    if d1 == anchors and d2 == anchors:  # only for tiny inputs, e.g. 64x64 (A = 84 = 4 + 80)
        raise ModelFileError(
            f"{path}: output {out_shapes[0]} fits both YOLOX and Ultralytics layouts; {expected}"
        )
    if d1 == anchors and d2 is not None and d2 >= 6:
        # OpenVINO sessions have read (and cached) the same facts in their cache folder: no second parse
        decoded = _has_exp_node(path, getattr(session, "cache_dir", None))
        fmt = ModelFormat.YOLOX_DECODED if decoded else ModelFormat.YOLOX_RAW
        return ModelSpec(fmt, (h, w), d2 - 5)
    if d2 == anchors and d1 is not None and d1 >= 5:
        return ModelSpec(ModelFormat.ULTRALYTICS, (h, w), d1 - 4)
    raise ModelFileError(
        f"{path}: unrecognised detector layout, {found} (A = {anchors} for input {h}x{w}); {expected}"
    )


def _parse_metadata(
    meta: dict[str, str], path: Path
) -> tuple[dict[int, str] | None, tuple[int, int] | None, str | None]:
    """Ultralytics metadata -> (names, imgsz (h, w), task); None for each key absent."""
    names = imgsz = None
    try:
        if "names" in meta:
            names = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
        if "imgsz" in meta:
            size = ast.literal_eval(meta["imgsz"])
            imgsz = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    except (ValueError, SyntaxError, TypeError, AttributeError, IndexError) as e:
        raise ModelFileError(
            f"{path}: unreadable metadata 'names'/'imgsz' ({e}); expected Ultralytics export metadata"
        ) from e
    return names, imgsz, meta.get("task")


def _has_exp_node(path: Path, cache_dir: Path | None = None) -> bool:
    """True when the ONNX graph (or a subgraph) contains an ``Exp`` node: YOLOX's in-graph decode.
    Read through the facts cache (``onnx_facts``), so a run with a known detector file does not
    import ``onnx``."""
    return "Exp" in onnx_facts(path, cache_dir)["op_types"]
