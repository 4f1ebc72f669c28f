"""The OKS AP harness against pycocotools itself, and the dataset validation errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.errors import InputError
from posestream.evaluation.coco_eval import evaluate_results
from posestream.evaluation.predict import rescore


@pytest.fixture(scope="module")
def val(shared: Path):
    root = shared / "coco" / "val_subset"
    return load_keypoint_dataset(root / "images", root / "person_keypoints.json")


def _gt_as_results(dataset, offset=(0.0, 0.0), noise_px=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for p in dataset.keypoint_instances():
        kpts = p.keypoints.astype(np.float64).copy()
        kpts[:, :2] += np.asarray(offset) + rng.normal(0.0, noise_px, size=(len(kpts), 2))
        kpts[:, 2] = 1.0
        flat = kpts.ravel().tolist()
        out.append({"image_id": p.image_id, "category_id": 1, "keypoints": flat, "score": 1.0})
    return out


def _pycocotools_ap(annotations: Path, results: list[dict]) -> list[float]:
    """pycocotools straight from the file, nothing of ours in between."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


def test_ground_truth_as_predictions_gives_ap_one(val):
    report = evaluate_results(val, _gt_as_results(val))
    assert report.stats["AP"] == 1.0 and report.stats["AR"] == 1.0
    assert report.num_matched == report.num_gt == 164
    assert all(m["oks_error"] == 0.0 and m["pck@0.05"] == 1.0 for m in report.per_keypoint.values())


@pytest.mark.parametrize("offset, noise", [((3.0, -2.0), 0.0), ((0.0, 0.0), 4.0)])
def test_perturbed_predictions_match_pycocotools_directly(val, offset, noise):
    results = _gt_as_results(val, offset=offset, noise_px=noise, seed=7)
    report = evaluate_results(val, results)
    expected = _pycocotools_ap(val.annotations_path, results)
    assert [report.stats[k] for k in report.stats] == pytest.approx(expected, abs=1e-12)
    assert 0.0 < report.stats["AP"] < 1.0  # the perturbation really costs something


def test_per_keypoint_error_of_a_known_shift(val):
    shift = np.array([3.0, 4.0])  # 5 px for every joint
    report = evaluate_results(val, _gt_as_results(val, offset=shift))
    people = val.keypoint_instances()
    j = val.category.keypoints.index("left_hip")
    sigma = val.category.sigmas[j]
    expected = np.mean([5.0 / (np.sqrt(p.area) * 2 * sigma) for p in people if p.keypoints[j, 2] > 0])
    assert report.per_keypoint["left_hip"]["oks_error"] == pytest.approx(expected, rel=1e-9)
    box = [max(p.xyxy[2] - p.xyxy[0], p.xyxy[3] - p.xyxy[1]) for p in people if p.keypoints[j, 2] > 0]
    expected_pck = np.mean([5.0 < 0.05 * b for b in box])
    assert report.per_keypoint["left_hip"]["pck@0.05"] == pytest.approx(expected_pck)


def test_rescore_is_box_score_times_mean_of_confident_keypoints():
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.05]])
    assert rescore(np.array([0.5, 1.0]), scores).tolist() == pytest.approx([0.5 * 0.7, 0.0])


def test_report_writes_json_and_markdown(val, tmp_path):
    report = evaluate_results(val, _gt_as_results(val, offset=(1.0, 1.0)), meta={"boxes": "gt"})
    json_path, md_path = report.write(tmp_path)
    assert json.loads(json_path.read_text())["stats"]["AP"] == report.stats["AP"]
    assert "| left_knee |" in md_path.read_text() and "boxes: gt" in md_path.read_text()


# ------------------------------------------------------------------------------------ bad datasets


def _small_copy(shared: Path, tmp_path: Path, num_images: int = 3) -> tuple[Path, Path, dict]:
    """A copy of the first images of val_subset with their annotations: (images dir, json path, data)."""
    root = shared / "coco" / "val_subset"
    data = json.loads((root / "person_keypoints.json").read_text())
    keep = [im for im in data["images"] if any(a["image_id"] == im["id"] and a["num_keypoints"] > 0
                                               for a in data["annotations"])][:num_images]  # fmt: skip
    ids = {im["id"] for im in keep}
    data = {**data, "images": keep, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    images = tmp_path / "images"
    images.mkdir()
    for im in keep:
        shutil.copy(root / "images" / im["file_name"], images / im["file_name"])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return images, path, data


def _error(images: Path, path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_keypoint_dataset(images, path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_small_copy_loads(shared, tmp_path):
    images, path, data = _small_copy(shared, tmp_path)
    assert len(load_keypoint_dataset(images, path).images) == 3


def test_missing_image_names_file_and_id(shared, tmp_path):
    images, path, data = _small_copy(shared, tmp_path)
    gone = data["images"][1]
    (images / gone["file_name"]).unlink()
    message = _error(images, path)
    assert gone["file_name"] in message and f"image id {gone['id']}" in message and "missing" in message


def test_keypoint_count_mismatch_names_annotation(shared, tmp_path):
    images, path, data = _small_copy(shared, tmp_path)
    ann = next(a for a in data["annotations"] if a["num_keypoints"] > 0)
    ann["keypoints"] = ann["keypoints"][:-3]  # 16 keypoints for a 17-keypoint category
    path.write_text(json.dumps(data))
    message = _error(images, path)
    assert f"annotation id {ann['id']}" in message
    assert "48 keypoint values" in message and "expected 51" in message
    assert str(path) in message


def test_box_outside_image_names_annotation(shared, tmp_path):
    images, path, data = _small_copy(shared, tmp_path)
    ann = data["annotations"][0]
    width = next(im["width"] for im in data["images"] if im["id"] == ann["image_id"])
    ann["bbox"] = [width - 10.0, 5.0, 50.0, 40.0]
    path.write_text(json.dumps(data))
    message = _error(images, path)
    assert f"annotation id {ann['id']}" in message and "outside image" in message


@pytest.mark.parametrize("content", ["", "   \n", None])
def test_empty_file_or_no_keypoint_annotations(shared, tmp_path, content):
    images, path, data = _small_copy(shared, tmp_path)
    if content is None:  # valid JSON, but no person has a labelled keypoint
        for ann in data["annotations"]:
            ann["keypoints"] = [0] * 51
            ann["num_keypoints"] = 0
        path.write_text(json.dumps(data))
        assert "no non-crowd annotation with labelled keypoints" in _error(images, path)
    else:
        path.write_text(content)
        assert _error(images, path) == f"annotations file {path} is empty"
