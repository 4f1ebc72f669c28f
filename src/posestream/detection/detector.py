"""An ONNX person detector: one session, the decoder of its format, and the shared post-processing.

Post-processing: person score above ``score_threshold`` (the decoder), boxes mapped back through
the letterbox and clipped to the frame, small boxes dropped, then NMS with ``cv2.dnn.NMSBoxes``:
OpenCV's maintained C++ greedy NMS on float boxes (continuous IoU, no ``+1`` pixel convention),
returned in descending score order, so a numpy re-implementation would only add code to test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from posestream.detection.base import FullFrameDetector, PersonDetector, check_image
from posestream.detection.formats import ModelFormat, ModelSpec, recognise_format
from posestream.detection.letterbox import Letterbox
from posestream.detection.ultralytics import UltralyticsDecoder
from posestream.detection.yolox import YoloxDecodedDecoder, YoloxRawDecoder
from posestream.errors import InputError
from posestream.runtime.factory import resolve_engine
from posestream.runtime.precision import resolve_precision
from posestream.runtime.sessions import Session, open_session
from posestream.types import Detections

__all__ = ["OnnxPersonDetector", "Decoder", "DECODERS", "load_person_detector"]

logger = logging.getLogger(__name__)


class Decoder(Protocol):
    """One detector family's input preparation and output reading (see yolox.py, ultralytics.py)."""

    input_size_hw: tuple[int, int]

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]: ...

    def candidates(self, output: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]: ...


DECODERS: dict[ModelFormat, type] = {
    ModelFormat.YOLOX_RAW: YoloxRawDecoder,
    ModelFormat.YOLOX_DECODED: YoloxDecodedDecoder,
    ModelFormat.ULTRALYTICS: UltralyticsDecoder,
}


class OnnxPersonDetector:
    """A YOLOX or Ultralytics ONNX model, post-processed to person boxes.

    Build it with ``load_person_detector``. ``detect`` keeps no state between calls.
    """

    def __init__(
        self,
        session: Session,
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
        self.decoder: Decoder = DECODERS[spec.format](spec.input_size_hw)
        self.name = name
        self.score_threshold = float(score_threshold)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.min_box_area = float(min_box_area)
        self.max_people = int(max_people)
        self._input_name = session.inputs[0].name

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return self.spec.input_size_hw

    @property
    def threads(self) -> int:
        return self.session.threads

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """(H, W, 3) uint8 BGR -> network input (1, 3, h, w) float32 and the letterbox used."""
        return self.decoder.preprocess(image_bgr)

    def postprocess(self, output: np.ndarray, box: Letterbox, size_wh: tuple[int, int]) -> Detections:
        """Network output -> person Detections in frame pixels (threshold, unletterbox, clip, NMS)."""
        xyxy, score = self.decoder.candidates(output, self.score_threshold)
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
        check_image(image_bgr)
        blob, box = self.preprocess(image_bgr)
        (output,) = self.session.run({self._input_name: blob})
        return self.postprocess(output, box, (image_bgr.shape[1], image_bgr.shape[0]))


def load_person_detector(
    path: str | Path | None,
    *,
    score_threshold: float = 0.3,
    nms_iou_threshold: float = 0.45,
    min_box_area: float = 0.0,
    max_people: int = 100,
    intra_op_threads: int = 2,
    providers: Sequence[str] | None = None,
    engine: str = "auto",
    precision: str = "auto",
) -> PersonDetector:
    """Open a YOLOX or Ultralytics ONNX detector; ``None`` gives the ``FullFrameDetector`` fallback.

    score_threshold: keep people whose score is above this. Lower finds more small / occluded people
        (recall) at the price of false boxes the pose model then wastes time on.
    nms_iou_threshold: a box overlapping a higher-scored one by more than this IoU is dropped. Lower
        removes more duplicates but also merges people who stand close together (crowds, hugs).
    min_box_area: drop boxes smaller than this many frame pixels (after clipping); pose on a tiny
        crop is noise anyway. 0 keeps all.
    max_people: keep at most this many boxes, highest score first; bounds the pose stage's work.
    intra_op_threads: inference threads for one call. More is faster alone, but the detector
        shares the CPU with decode and pose stages running at the same time.
    providers: onnxruntime execution providers in preference order (default CPU); those not granted
        are logged as a warning.
    engine / precision: 'auto' picks as for the pose model (``resolve_engine``, ``resolve_precision``:
        OpenVINO on the CPU, bf16 where native); fp32 or bf16 (int8 is not offered for the detector).

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
    providers = providers or ("cpu",)
    engine = resolve_engine(engine, providers)
    precision, _ = resolve_precision(precision, engine)
    if precision not in ("fp32", "bf16"):
        raise InputError(f"detector precision: expected auto, fp32 or bf16, got {precision!r}")
    session = open_session(
        path, engine=engine, threads=intra_op_threads, providers=providers, precision=precision,
        what="detector model",
    )  # fmt: skip
    spec = recognise_format(session, path)
    h, w = spec.input_size_hw
    logger.info(
        "detector %s: %s, input %dx%d (h x w), %d classes, %s",
        path.name, spec.format.value, h, w, spec.num_classes, session.name,
    )  # fmt: skip
    return OnnxPersonDetector(
        session,
        spec,
        name=f"{spec.format.value}:{path.stem}",
        score_threshold=score_threshold,
        nms_iou_threshold=nms_iou_threshold,
        min_box_area=min_box_area,
        max_people=max_people,
    )
