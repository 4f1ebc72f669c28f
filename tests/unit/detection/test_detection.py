"""Person detector: real YOLOX-Nano on a known picture, and the decode maths on synthetic ONNX graphs.

The synthetic graphs take a real ``[1, 3, H, W]`` input and return a constant tensor in the YOLOX
or Ultralytics output layout, so the real onnxruntime session, format recogniser and decode run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from posestream.errors import InputError, ModelFileError
from posestream.detection import (
    FullFrameDetector,
    ModelFormat,
    OnnxPersonDetector,
    PersonDetector,
    letterbox,
    load_person_detector,
    num_anchors,
)

SIZE_HW = (64, 64)  # synthetic network input: anchors 8*8 + 4*4 + 2*2 = 84
A = num_anchors(SIZE_HW)
CELL_S16 = 8 * 8 + 1 * 4 + 2  # anchor index of the stride-16 head's cell (column 2, row 1)


def _write_constant_model(
    path: Path, output: np.ndarray, *, size_hw=SIZE_HW, metadata: dict[str, str] | None = None, with_exp=False
) -> Path:
    """ONNX file: input ``images`` [1,3,h,w] -> ``output`` (constant) + 0 * mean(images).

    ``with_exp`` routes the zero through an ``Exp`` node (``exp(0) - 1``), the structural mark of a
    YOLOX export with the decode in the graph.
    """
    h, w = size_hw
    const = numpy_helper.from_array(output.astype(np.float32), "const")
    initializers = [const, numpy_helper.from_array(np.float32(0), "zero")]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["z"]),
    ]
    if with_exp:
        initializers.append(numpy_helper.from_array(np.float32(1), "one"))
        nodes += [helper.make_node("Exp", ["z"], ["e"]), helper.make_node("Sub", ["e", "one"], ["z2"])]
    nodes.append(helper.make_node("Add", ["const", "z2" if with_exp else "z"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(output.shape))],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _yolox_raw(cells: dict[int, tuple[float, ...]], num_classes: int = 2) -> np.ndarray:
    """[1, A, 5 + C] raw YOLOX output, zero except ``cells``: index -> (dx, dy, log w, log h, obj, p0...)."""
    out = np.zeros((1, A, 5 + num_classes), np.float32)
    for index, values in cells.items():
        out[0, index, : len(values)] = values
    return out


ULTRA_META = {"names": "{0: 'person', 1: 'bicycle'}", "stride": "32", "imgsz": "[64, 64]", "task": "detect"}


# ---------------------------------------------------------------------------- real model


def test_yolox_nano_finds_the_astronaut(shared: Path):
    # Looking at the picture: hair top near y=15, orange sleeve at x~15 on the left, suit shoulder
    # at x~365 on the right, body cut by the bottom edge (y=512). The helmet on the right (x 280-510)
    # is not the person. Expected box about (15, 15, 365, 512), each edge within 30 px.
    detector = load_person_detector(shared / "models" / "yolox_nano_coco.onnx")
    image = cv2.imread(str(shared / "media" / "images" / "astronaut.png"))
    assert image is not None
    found = detector.detect(image)
    assert detector.spec.format is ModelFormat.YOLOX_RAW
    assert detector.input_size_hw == (416, 416)
    assert len(found) == 1 and found.score[0] > 0.5
    assert found.xyxy.dtype == np.float32 and found.score.dtype == np.float32
    np.testing.assert_allclose(found.xyxy[0], [15, 15, 365, 512], atol=30)


# ---------------------------------------------------------------------------- decode maths


def test_yolox_raw_cell_decodes_to_known_box(tmp_path: Path):
    # stride-16 cell (2, 1), offsets (0.5, 0.25), sizes exp(log 2) * 16 = 32 and exp(log 1.5) * 16 = 24:
    # centre ((2 + 0.5) * 16, (1 + 0.25) * 16) = (40, 20) -> xyxy (24, 8, 56, 32); score 0.9 * 0.8.
    out = _yolox_raw({CELL_S16: (0.5, 0.25, np.log(2), np.log(1.5), 0.9, 0.8, 0.1)})
    detector = load_person_detector(_write_constant_model(tmp_path / "yolov8n.onnx", out))
    assert detector.spec.format is ModelFormat.YOLOX_RAW  # the file name says otherwise, on purpose
    found = detector.detect(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[24, 8, 56, 32]], atol=1e-4)
    np.testing.assert_allclose(found.score, [0.72], atol=1e-6)


def test_yolox_letterbox_inverse_on_non_square_frame(tmp_path: Path):
    # Frame 256 wide x 128 high -> ratio 0.25, resized 64x32 at the top-left (no offset).
    # Network box (24, 4, 56, 28) [cell (2, 1), dy = 0, h = 1.5 * 16] -> frame (96, 16, 224, 112).
    out = _yolox_raw({CELL_S16: (0.5, 0.0, np.log(2), np.log(1.5), 0.9, 0.8)})
    detector = load_person_detector(_write_constant_model(tmp_path / "raw.onnx", out))
    found = detector.detect(np.zeros((128, 256, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[96, 16, 224, 112]], atol=1e-3)


def test_yolox_decoded_export_is_recognised_and_not_decoded_twice(tmp_path: Path):
    out = np.zeros((1, A, 7), np.float32)
    out[0, 5] = (40, 20, 32, 24, 0.9, 0.8, 0.0)  # cx, cy, w, h in input pixels already
    detector = load_person_detector(_write_constant_model(tmp_path / "decoded.onnx", out, with_exp=True))
    assert detector.spec.format is ModelFormat.YOLOX_DECODED
    found = detector.detect(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[24, 8, 56, 32]], atol=1e-4)


def test_ultralytics_centred_letterbox_inverse_on_non_square_frame(tmp_path: Path):
    # Frame 256 x 128 -> ratio 0.25, resized 64x32 centred: 16 px pad on top.
    # Frame (96, 16, 224, 112) -> network (24, 20, 56, 44) = cx 40, cy 32, w 32, h 24.
    out = np.zeros((1, 4 + 2, A), np.float32)
    out[0, :, 7] = (40, 32, 32, 24, 0.85, 0.1)
    out[0, :, 9] = (10, 10, 8, 8, 0.05, 0.95)  # a confident bicycle: not a person
    path = _write_constant_model(tmp_path / "yolox_s.onnx", out, metadata=ULTRA_META)
    detector = load_person_detector(path)
    assert detector.spec.format is ModelFormat.ULTRALYTICS  # from metadata + shapes, not the name
    found = detector.detect(np.zeros((128, 256, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[96, 16, 224, 112]], atol=1e-3)
    np.testing.assert_allclose(found.score, [0.85], atol=1e-6)


def test_boxes_are_clipped_to_the_frame(tmp_path: Path):
    out = np.zeros((1, 6, A), np.float32)
    out[0, :, 0] = (60, 4, 40, 40, 0.9, 0.0)  # (40, -16, 80, 24) on a 64x64 frame
    detector = load_person_detector(_write_constant_model(tmp_path / "u.onnx", out, metadata=ULTRA_META))
    found = detector.detect(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(found.xyxy, [[40, 0, 64, 24]], atol=1e-4)


def test_nms_threshold_area_and_max_people(tmp_path: Path):
    out = np.zeros((1, 6, A), np.float32)
    out[0, :, 0] = (20, 20, 20, 20, 0.90, 0)  # (10, 10, 30, 30)
    out[0, :, 1] = (21, 20, 20, 20, 0.80, 0)  # duplicate of the first, IoU 0.9
    out[0, :, 2] = (50, 50, 20, 20, 0.70, 0)  # far away
    out[0, :, 3] = (50, 10, 4, 4, 0.60, 0)  # small, 16 px^2
    out[0, :, 4] = (10, 50, 20, 20, 0.29, 0)  # below the score threshold 0.3
    path = _write_constant_model(tmp_path / "u.onnx", out, metadata=ULTRA_META)
    image = np.zeros((64, 64, 3), np.uint8)

    found = load_person_detector(path).detect(image)
    np.testing.assert_allclose(found.score, [0.9, 0.7, 0.6], atol=1e-6)
    np.testing.assert_allclose(found.xyxy[:2], [[10, 10, 30, 30], [40, 40, 60, 60]], atol=1e-4)

    assert len(load_person_detector(path, min_box_area=17).detect(image)) == 2
    assert load_person_detector(path, max_people=1).detect(image).score.tolist() == pytest.approx([0.9])
    assert len(load_person_detector(path, nms_iou_threshold=0.95).detect(image)) == 4


def test_preprocess_layouts():
    image = np.zeros((8, 16, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 200  # B = 10, R = 200
    canvas, box = letterbox(image, (32, 32), centred=False)
    assert box.ratio == 2.0 and box.pad_xy == (0.0, 0.0)
    assert (canvas[:16, :, 0] == 10).all() and (canvas[16:] == 114).all()
    canvas, box = letterbox(image, (32, 32), centred=True)
    assert box.pad_xy == (0.0, 8.0)
    assert (canvas[8:24, :, 2] == 200).all() and (canvas[:8] == 114).all() and (canvas[24:] == 114).all()
    np.testing.assert_allclose(box.to_frame(np.array([[0, 8, 32, 24]], np.float32)), [[0, 0, 16, 8]])


def test_network_input_colour_and_scale(tmp_path: Path):
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0], image[..., 2] = 10, 200  # B, R
    yolox = load_person_detector(_write_constant_model(tmp_path / "y.onnx", _yolox_raw({})))
    ultra = load_person_detector(
        _write_constant_model(tmp_path / "u.onnx", np.zeros((1, 6, A), np.float32), metadata=ULTRA_META)
    )
    assert isinstance(yolox, OnnxPersonDetector) and isinstance(ultra, OnnxPersonDetector)
    blob, _ = yolox.preprocess(image)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    assert blob[0, 0, 0, 0] == 10 and blob[0, 2, 0, 0] == 200  # BGR 0-255
    blob, _ = ultra.preprocess(image)
    assert blob[0, 0, 0, 0] == pytest.approx(200 / 255)  # RGB 0-1
    assert blob[0, 2, 0, 0] == pytest.approx(10 / 255)


# ---------------------------------------------------------------------------- recognition and errors


def test_ultralytics_recognised_from_shape_without_metadata(tmp_path: Path):
    size_hw = (96, 128)  # A = 12*16 + 6*8 + 3*4 = 252
    out = np.zeros((1, 84, num_anchors(size_hw)), np.float32)
    detector = load_person_detector(_write_constant_model(tmp_path / "m.onnx", out, size_hw=size_hw))
    assert detector.spec.format is ModelFormat.ULTRALYTICS and detector.spec.num_classes == 80
    assert detector.input_size_hw == (96, 128)


def test_layout_fitting_both_families_is_refused(tmp_path: Path):
    # At 64x64, A = 84 = 4 + 80: [1, 84, 84] is YOLOX with 79 classes or Ultralytics with 80.
    path = _write_constant_model(tmp_path / "m.onnx", np.zeros((1, 84, 84), np.float32))
    with pytest.raises(ModelFileError, match="fits both"):
        load_person_detector(path)


def test_unknown_layout_names_file_and_shapes(tmp_path: Path):
    path = _write_constant_model(tmp_path / "end2end.onnx", np.zeros((1, 300, 6), np.float32))
    with pytest.raises(ModelFileError, match=r"end2end\.onnx.*\[1, 300, 6\].*expected a YOLOX"):
        load_person_detector(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({**ULTRA_META, "task": "pose"}, "task 'pose'"),
        ({**ULTRA_META, "names": "{0: 'person', 1: 'car', 2: 'dog'}"}, "lists 3 classes"),
        ({**ULTRA_META, "names": "{0: 'car', 1: 'person'}"}, "class 0 is 'car'"),
        ({**ULTRA_META, "names": "not a dict"}, "unreadable metadata"),
    ],
)
def test_inconsistent_ultralytics_metadata_is_rejected(tmp_path: Path, metadata: dict, message: str):
    path = _write_constant_model(tmp_path / "u.onnx", np.zeros((1, 6, A), np.float32), metadata=metadata)
    with pytest.raises(ModelFileError, match=message):
        load_person_detector(path)


def test_missing_and_non_onnx_files(tmp_path: Path):
    with pytest.raises(ModelFileError, match="not found"):
        load_person_detector(tmp_path / "absent.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("this is a text file, not a model\n")
    with pytest.raises(ModelFileError, match=r"notes\.onnx: not a loadable ONNX model"):
        load_person_detector(text)


@pytest.mark.parametrize(
    "setting",
    [{"score_threshold": 1.0}, {"nms_iou_threshold": 0.0}, {"max_people": 0}, {"min_box_area": -1.0}],
)
def test_settings_out_of_range_are_refused(tmp_path: Path, setting: dict):
    path = _write_constant_model(tmp_path / "y.onnx", _yolox_raw({}))
    with pytest.raises(InputError, match=next(iter(setting))):
        load_person_detector(path, **setting)


def test_unavailable_provider_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    path = _write_constant_model(tmp_path / "y.onnx", _yolox_raw({}))
    with caplog.at_level(logging.WARNING, logger="posestream.runtime"):
        detector = load_person_detector(path, providers=["cuda", "cpu"])  # short names, as in configs
    assert "CUDAExecutionProvider" in caplog.text  # this CPU build cannot grant it: said out loud
    assert detector.session.providers == ("CPUExecutionProvider",)
    with pytest.raises(InputError, match="unknown execution provider 'NoSuchExecutionProvider'"):
        load_person_detector(path, providers=["NoSuchExecutionProvider"])


def test_full_frame_fallback():
    detector = load_person_detector(None)
    assert isinstance(detector, FullFrameDetector) and isinstance(detector, PersonDetector)
    found = detector.detect(np.zeros((48, 80, 3), np.uint8))
    np.testing.assert_array_equal(found.xyxy, [[0, 0, 80, 48]])
    np.testing.assert_array_equal(found.score, [1.0])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        detector.detect(np.zeros((48, 80), np.uint8))
