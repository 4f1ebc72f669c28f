"""Person detection: YOLOX and Ultralytics YOLOv8/YOLO11 ONNX models, or the whole frame.

The pose model is top-down, so every frame first needs person boxes. ``load_person_detector``
opens an ONNX file through the runtime's one session opener, recognises its layout from the file
(``formats.py``) and pairs it with that format's decoder (``yolox.py``, ``ultralytics.py``);
the shared post-processing (unletterbox, clip, NMS) is in ``detector.py``.
"""

from posestream.detection.base import FullFrameDetector, PersonDetector
from posestream.detection.detector import DECODERS, OnnxPersonDetector, load_person_detector
from posestream.detection.formats import ModelFormat, ModelSpec, num_anchors, recognise_format
from posestream.detection.letterbox import Letterbox, letterbox
from posestream.detection.yolox import yolox_grid

__all__ = [
    "PersonDetector",
    "FullFrameDetector",
    "OnnxPersonDetector",
    "DECODERS",
    "ModelFormat",
    "ModelSpec",
    "Letterbox",
    "load_person_detector",
    "recognise_format",
    "letterbox",
    "num_anchors",
    "yolox_grid",
]
