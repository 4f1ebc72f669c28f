"""Calibration inputs for int8 quantisation, made from a COCO-format keypoint folder of real pictures.

A folder holds ``images/`` and ``person_keypoints.json`` (e.g. ``coco/train_mini``). The pose model
is calibrated on person crops cut at the ground-truth boxes exactly as the live estimator cuts them
(UDP warp, 1.25 padding, the model's mean/std and colour order); the detector on whole pictures
prepared by its own decoder (letterbox). Quantisation ranges then match what the models see in a
run, which random inputs would not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from posestream.datasets.coco_keypoints import KeypointDataset, load_keypoint_dataset
from posestream.errors import InputError
from posestream.runtime.base import ModelInfo
from posestream.runtime.quantize import Calibration, CalibrationFactory

__all__ = [
    "open_calibration_folder", "pose_calibration", "person_crop_calibration", "picture_calibration", "person_crops",
]  # fmt: skip

MAX_CROPS = 128  # NNCF's default subset is 300; 128 real crops settle ViTPose's ranges (measured)
MAX_PICTURES = 64


def open_calibration_folder(folder: str | Path) -> KeypointDataset:
    """The dataset in ``folder`` (``images/`` + ``person_keypoints.json``); InputError naming what is missing."""
    folder = Path(folder)
    annotations = folder / "person_keypoints.json"
    if not annotations.is_file() or not (folder / "images").is_dir():
        raise InputError(f"calibration folder {folder}: expected images/ and person_keypoints.json in it")
    return load_keypoint_dataset(folder / "images", annotations)


def person_crops(
    dataset: KeypointDataset,
    input_size_hw: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    color_order: str,
    limit: int = MAX_CROPS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(1, 3, H, W) float32 model inputs of the labelled, non-crowd people, with the (K, 3) keypoints
    in crop pixels (``x, y, v``), in file order, at most ``limit``."""
    from posestream.geometry.affine import apply_affine, to_model_input, udp_warp_matrix, warp_crops
    from posestream.geometry.boxes import xyxy_to_center_scale

    in_h, in_w = input_size_hw
    count = 0
    for image_id, people in dataset.instances_by_image().items():
        people = [p for p in people if not p.iscrowd and p.num_labelled > 0]
        if not people:
            continue
        image = cv2.imread(str(dataset.images[image_id].path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{dataset.images[image_id].path}: unreadable image")
        for person in people:
            center, scale = xyxy_to_center_scale(person.xyxy[None].astype(np.float64), aspect_wh=in_w / in_h)
            crop = warp_crops(image, center, scale, (in_w, in_h))  # (1, H, W, 3) uint8 BGR
            batch = np.zeros((1, 3, in_h, in_w), np.float32)
            to_model_input(crop, mean, std, color_order, out=batch)
            matrix = udp_warp_matrix(center, scale, (in_w, in_h))  # (1, 2, 3)
            keypoints = person.keypoints.copy()
            keypoints[:, :2] = apply_affine(matrix, keypoints[None, :, :2])[0]
            yield batch, keypoints
            count += 1
            if count >= limit:
                return


def pose_calibration(folder: str | Path, limit: int = MAX_CROPS) -> CalibrationFactory:
    """For ``open_pose_backend(calibration=...)``: person crops from ``folder`` prepared as the model
    file's metadata says (input size, mean/std, colour order). The folder is checked now."""
    open_calibration_folder(folder)

    def make(metadata: dict[str, str]) -> Calibration:
        info, _ = ModelInfo.from_metadata(metadata, str(folder))
        return person_crop_calibration(folder, info, limit)

    return make


def person_crop_calibration(folder: str | Path, info, limit: int = MAX_CROPS) -> Calibration:
    """Pose-model calibration: real person crops from ``folder``, prepared for a model of ``info``."""
    dataset = open_calibration_folder(folder)
    name = f"person crops of {Path(folder).resolve()} ({limit} max, {info.input_size_hw}, {info.color_order})"

    def batches() -> Iterator[np.ndarray]:
        for batch, _ in person_crops(dataset, info.input_size_hw, info.mean, info.std, info.color_order, limit):
            yield batch

    return Calibration(name, batches)


def picture_calibration(
    folder: str | Path, preprocess: Callable[[np.ndarray], tuple[np.ndarray, object]], limit: int = MAX_PICTURES
) -> Calibration:
    """Detector calibration: whole pictures from ``folder`` through the detector's own ``preprocess``."""
    dataset = open_calibration_folder(folder)
    records = list(dataset.images.values())[:limit]

    def batches() -> Iterator[np.ndarray]:
        for record in records:
            image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(f"{record.path}: unreadable image")
            yield preprocess(image)[0]

    return Calibration(f"pictures of {Path(folder).resolve()} ({len(records)})", batches)
