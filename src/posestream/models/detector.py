"""Person detectors: YOLOX and Ultralytics YOLOv8/YOLO11 ONNX models on onnxruntime, or the whole frame.

The pose model is top-down, so every frame first needs person boxes. ``load_person_detector`` opens
an ONNX file, recognises its layout *from the file* (input/output shapes, graph ops, metadata;
never from the file name) and returns a ``PersonDetector``:

* **YOLOX** (Megvii, nano..x). Input ``[1, 3, H, W]`` BGR 0-255, letterboxed to the top-left with
  pad 114, no mean/std. Output ``[1, A, 5 + C]`` with ``A = sum(H/s * W/s for s in (8, 16, 32))``.
  Two exports exist:

  - *raw* (``decode_in_inference=False``, the official ONNX demo files): per grid cell ``dx, dy``
    offsets in cell units, ``log w, log h``, objectness, C class scores (sigmoids already applied).
    Box centre ``(d + grid) * stride``, size ``exp(log_wh) * stride``.
  - *decoded* (``decode_in_inference=True``): the same maths is in the graph and the first four
    columns are ``cx, cy, w, h`` in input pixels.

  Rule used to tell them apart (a structural fact, no inference run): the in-graph decode is the
  only place a YOLOX graph computes ``exp`` (the backbone's SiLU exports as Sigmoid * Mul), so a
  graph that contains an ONNX ``Exp`` node is *decoded*, one without is *raw*.

* **Ultralytics YOLOv8 / YOLO11** (``format="onnx"`` export, no NMS in graph). Input ``[1, 3, H, W]``
  RGB 0-1, letterboxed *centred* with pad 114. Output ``[1, 4 + C, A]``: ``cx, cy, w, h`` in input
  pixels, then C class scores (no objectness). The exporter writes ``metadata_props`` (``names``,
  ``stride``, ``imgsz``, ``task`` ...); when present they must agree (``task == "detect"``,
  ``len(names) == C``, ``names[0] == "person"``).

Anything else (e.g. end-to-end exports with NMS inside, ``[1, 300, 6]``) raises ``ModelFileError``
naming the file and the shapes found. Person is class 0 in both (COCO order).

Post-processing: person score (YOLOX ``objectness * p(person)``, Ultralytics ``p(person)``) above
``score_threshold``, boxes mapped back through the letterbox and clipped to the frame, small boxes
dropped, then NMS with ``cv2.dnn.NMSBoxes``: OpenCV's maintained C++ greedy NMS on float boxes
(continuous IoU, no ``+1`` pixel convention), returned in descending score order, so a numpy
re-implementation would only add code to test.

``FullFrameDetector`` is the fallback when no detector is configured: one box, the whole frame.
"""

from __future__ import annotations

import ast
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from posestream.errors import InputError, ModelFileError
from posestream.runtime.onnx import ORT_LOAD_ERRORS, resolve_providers
from posestream.types import Detections

__all__ = [
    "PersonDetector",
    "FullFrameDetector",
    "OnnxPersonDetector",
    "ModelFormat",
    "ModelSpec",
    "load_person_detector",
    "recognise_format",
    "letterbox",
    "yolox_grid",
]

logger = logging.getLogger(__name__)

STRIDES: tuple[int, ...] = (8, 16, 32)  # the three detection heads of YOLOX and YOLOv8/11
PAD_VALUE = 114  # letterbox fill, both families
PERSON = 0  # class index of "person" in COCO order


@runtime_checkable
class PersonDetector(Protocol):
    """Finds people in one picture."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """image_bgr: (H, W, 3) uint8 -> boxes xyxy (N, 4) float32 in frame pixels, score (N,) float32."""
        ...


def _check_image(image_bgr: np.ndarray) -> None:
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(
            f"detect: expected an (H, W, 3) uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}"
        )


class FullFrameDetector:
    """The fallback when no detector is configured: one box covering the whole frame, score 1.0.

    Right for a single person filling a webcam picture; wrong for anything else (the pose model
    then sees the whole frame squeezed into 256x192, and finds at most one person).
    """

    name = "full_frame"

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """image_bgr: (H, W, 3) uint8 -> one box ``[0, 0, W, H]`` with score 1.0."""
        _check_image(image_bgr)
        h, w = image_bgr.shape[:2]
        return Detections(np.array([[0.0, 0.0, w, h]], np.float32), np.ones((1,), np.float32))


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


def yolox_grid(size_hw: tuple[int, int], strides: Sequence[int] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell coordinates and strides in the network's anchor order.

    Returns grid_xy (A, 2) float32 (column, row of each cell) and stride (A, 1) float32; heads in
    ``strides`` order, cells row-major inside each head (the order of YOLOX's flatten + concat).
    """
    h, w = size_hw
    grids, stride_cols = [], []
    for s in strides:
        rows, cols = h // s, w // s
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([xx, yy], axis=-1).reshape(-1, 2))
        stride_cols.append(np.full((rows * cols, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(stride_cols).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed in the network input: ``input = frame * ratio + pad_xy``."""

    ratio: float
    pad_xy: tuple[float, float]

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy in network-input pixels -> (N, 4) xyxy in frame pixels (not clipped)."""
        px, py = self.pad_xy
        return (xyxy - np.array([px, py, px, py], np.float32)) / np.float32(self.ratio)


def letterbox(image: np.ndarray, size_hw: tuple[int, int], *, centred: bool) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) keeping its aspect ratio into a ``size_hw`` canvas filled with 114.

    ``centred=False`` puts it in the top-left corner (YOLOX), ``True`` centres it (Ultralytics, which
    rounds the split padding with a 0.1 bias). Returns the (h, w, 3) canvas and the ``Letterbox``.
    """
    h, w = image.shape[:2]
    out_h, out_w = size_hw
    ratio = min(out_h / h, out_w / w)
    if centred:
        new_w, new_h = round(w * ratio), round(h * ratio)
        dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
        left, top = round(dw - 0.1), round(dh - 0.1)
    else:
        new_w, new_h = int(w * ratio), int(h * ratio)
        left = top = 0
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = image
    return canvas, Letterbox(ratio, (float(left), float(top)))


def _static_dim(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


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


def _has_exp_node(path: Path) -> bool:
    """True when the ONNX graph (or a subgraph) contains an ``Exp`` node: YOLOX's in-graph decode."""
    model = onnx.load(str(path), load_external_data=False)

    def walk(graph: onnx.GraphProto) -> bool:
        for node in graph.node:
            if node.op_type == "Exp":
                return True
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH and walk(attr.g):
                    return True
        return False

    return walk(model.graph)


def recognise_format(session: ort.InferenceSession, path: Path) -> ModelSpec:
    """Tell YOLOX (raw or decoded) from Ultralytics by input/output shapes, graph ops and metadata.

    Rules: one input ``[1|?, 3, H, W]`` (H, W from the session, else from metadata ``imgsz``) and one
    rank-3 output. Ultralytics metadata (``names`` with ``stride`` or ``imgsz``) decides for
    Ultralytics and must agree with the shapes (a dynamic A is then accepted). Without it,
    ``[1, A, 5 + C]`` with ``A = num_anchors(H, W)`` is YOLOX and ``[1, 4 + C, A]`` is Ultralytics;
    a shape that fits both (``[1, A, A]``) is refused.
    Raises ModelFileError for anything else, naming the file and the shapes found.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    in_shapes = [i.shape for i in inputs]
    out_shapes = [o.shape for o in outputs]
    found = f"inputs {in_shapes}, outputs {out_shapes}"
    expected = (
        "expected a YOLOX export (input [1,3,H,W], output [1,A,5+C]) or an Ultralytics YOLOv8/YOLO11 "
        "detect export (output [1,4+C,A]), A = anchors over strides 8/16/32"
    )
    meta = session.get_modelmeta().custom_metadata_map
    names, imgsz, task = _parse_metadata(meta, path)
    is_ultralytics_meta = names is not None and ("stride" in meta or imgsz is not None)

    if len(inputs) != 1 or len(outputs) != 1 or len(in_shapes[0]) != 4 or len(out_shapes[0]) != 3:
        raise ModelFileError(f"{path}: unrecognised detector layout, {found}; {expected}")
    if _static_dim(in_shapes[0][1]) != 3 or _static_dim(in_shapes[0][0]) not in (None, 1):
        raise ModelFileError(f"{path}: unrecognised detector input {in_shapes[0]}; {expected}")
    h, w = _static_dim(in_shapes[0][2]), _static_dim(in_shapes[0][3])
    if h is None or w is None:
        if imgsz is None:
            raise ModelFileError(
                f"{path}: input size is dynamic {in_shapes[0]} and no 'imgsz' metadata; {expected}"
            )
        h, w = imgsz
    anchors = num_anchors((h, w))
    _, d1, d2 = (_static_dim(d) for d in out_shapes[0])

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
        fmt = ModelFormat.YOLOX_DECODED if _has_exp_node(path) else ModelFormat.YOLOX_RAW
        return ModelSpec(fmt, (h, w), d2 - 5)
    if d2 == anchors and d1 is not None and d1 >= 5:
        return ModelSpec(ModelFormat.ULTRALYTICS, (h, w), d1 - 4)
    raise ModelFileError(
        f"{path}: unrecognised detector layout, {found} (A = {anchors} for input {h}x{w}); {expected}"
    )


class OnnxPersonDetector:
    """A YOLOX or Ultralytics ONNX model on onnxruntime, post-processed to person boxes.

    Build it with ``load_person_detector``. ``detect`` keeps no state between calls.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        spec: ModelSpec,
        *,
        name: str,
        score_threshold: float,
        nms_iou_threshold: float,
        min_box_area: float,
        max_people: int,
    ) -> None:
        self.session = session
        self.spec = spec
        self.name = name
        self.score_threshold = float(score_threshold)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.min_box_area = float(min_box_area)
        self.max_people = int(max_people)
        self._input_name = session.get_inputs()[0].name
        self._grid, self._stride = yolox_grid(spec.input_size_hw)  # (A, 2), (A, 1)

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return self.spec.input_size_hw

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> network input (1, 3, h, w) float32 and the letterbox used."""
        ultralytics = self.spec.format is ModelFormat.ULTRALYTICS
        canvas, box = letterbox(image_bgr, self.spec.input_size_hw, centred=ultralytics)
        if ultralytics:
            canvas = canvas[:, :, ::-1]  # BGR -> RGB
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)  # (1, 3, h, w)
        if ultralytics:
            blob *= np.float32(1 / 255)
        return blob, box

    def candidates(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw network output (batch 1) -> person candidates above the threshold, before NMS.

        Returns xyxy (M, 4) float32 in network-input pixels and score (M,) float32.
        """
        if self.spec.format is ModelFormat.ULTRALYTICS:
            rows = output[0].T  # (4 + C, A) -> (A, 4 + C)
            score = rows[:, 4 + PERSON]
        else:
            rows = output[0]  # (A, 5 + C)
            score = rows[:, 4] * rows[:, 5 + PERSON]  # objectness * p(person)
        keep = np.flatnonzero(score > self.score_threshold)
        rows, score = rows[keep], score[keep]
        if self.spec.format is ModelFormat.YOLOX_RAW:
            stride = self._stride[keep]  # (M, 1)
            cxcy = (rows[:, 0:2] + self._grid[keep]) * stride
            wh = np.exp(rows[:, 2:4]) * stride
        else:
            cxcy, wh = rows[:, 0:2], rows[:, 2:4]
        xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1)
        return xyxy.astype(np.float32, copy=False), score.astype(np.float32, copy=False)

    def postprocess(self, output: np.ndarray, box: Letterbox, size_wh: tuple[int, int]) -> Detections:
        """Network output -> person Detections in frame pixels (threshold, unletterbox, clip, NMS)."""
        xyxy, score = self.candidates(output)
        w, h = size_wh
        xyxy = box.to_frame(xyxy)
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        bw, bh = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        keep = (bw > 0) & (bh > 0) & (bw * bh >= self.min_box_area)
        xyxy, score = xyxy[keep], score[keep]
        if len(score) == 0:
            return Detections.empty()
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        kept = np.asarray(
            cv2.dnn.NMSBoxes(xywh, score, self.score_threshold, self.nms_iou_threshold), np.int64
        ).reshape(-1)[: self.max_people]  # descending score
        return Detections(np.ascontiguousarray(xyxy[kept]), np.ascontiguousarray(score[kept]))

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """image_bgr: (H, W, 3) uint8 -> person xyxy (N, 4) float32 frame pixels (clipped), score (N,)."""
        _check_image(image_bgr)
        blob, box = self.preprocess(image_bgr)
        (output,) = self.session.run(None, {self._input_name: blob})
        return self.postprocess(output, box, (image_bgr.shape[1], image_bgr.shape[0]))


def _open_session(path: Path, intra_op_threads: int, providers: Sequence[str] | None) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelFileError(f"{path}: detector model file not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    requested = resolve_providers(providers) if providers else ["CPUExecutionProvider"]
    # Ask only for providers this onnxruntime build has (else it warns and may refuse); anything
    # requested but not granted, for either reason, is reported once below.
    available = set(ort.get_available_providers())
    usable = [p for p in requested if p in available] or ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=usable)
    except ORT_LOAD_ERRORS as e:
        raise ModelFileError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from e
    granted = session.get_providers()
    missing = [p for p in requested if p not in granted]
    if missing:
        logger.warning("%s: execution providers %s not granted, running on %s", path.name, missing, granted)
    return session


def load_person_detector(
    path: str | Path | None,
    *,
    score_threshold: float = 0.3,
    nms_iou_threshold: float = 0.45,
    min_box_area: float = 0.0,
    max_people: int = 100,
    intra_op_threads: int = 2,
    providers: Sequence[str] | None = None,
) -> PersonDetector:
    """Open a YOLOX or Ultralytics ONNX detector; ``None`` gives the ``FullFrameDetector`` fallback.

    score_threshold: keep people whose score is above this. Lower finds more small / occluded people
        (recall) at the price of false boxes the pose model then wastes time on.
    nms_iou_threshold: a box overlapping a higher-scored one by more than this IoU is dropped. Lower
        removes more duplicates but also merges people who stand close together (crowds, hugs).
    min_box_area: drop boxes smaller than this many frame pixels (after clipping); pose on a tiny
        crop is noise anyway. 0 keeps all.
    max_people: keep at most this many boxes, highest score first; bounds the pose stage's work.
    intra_op_threads: onnxruntime threads for one inference. More is faster alone, but the detector
        shares the CPU with decode and pose stages running at the same time.
    providers: onnxruntime execution providers in preference order (default CPU); those not granted
        are logged as a warning.

    Raises ModelFileError for a missing, unloadable or unrecognised file, InputError for a setting
    out of range.
    """
    if path is None:
        logger.info("no detector configured: using the whole frame as the one person box")
        return FullFrameDetector()
    if not 0.0 <= score_threshold < 1.0:
        raise InputError(f"score_threshold must be in [0, 1), got {score_threshold}")
    if not 0.0 < nms_iou_threshold <= 1.0:
        raise InputError(f"nms_iou_threshold must be in (0, 1], got {nms_iou_threshold}")
    if max_people < 1 or intra_op_threads < 1 or min_box_area < 0:
        raise InputError(
            f"max_people and intra_op_threads must be >= 1 and min_box_area >= 0, got "
            f"{max_people}, {intra_op_threads}, {min_box_area}"
        )
    path = Path(path)
    session = _open_session(path, intra_op_threads, providers)
    spec = recognise_format(session, path)
    h, w = spec.input_size_hw
    logger.info(
        "detector %s: %s, input %dx%d (h x w), %d classes",
        path.name, spec.format.value, h, w, spec.num_classes,
    )
    return OnnxPersonDetector(
        session,
        spec,
        name=f"{spec.format.value}:{path.stem}",
        score_threshold=score_threshold,
        nms_iou_threshold=nms_iou_threshold,
        min_box_area=min_box_area,
        max_people=max_people,
    )
