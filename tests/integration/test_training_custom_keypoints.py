"""A 6-keypoint set (shoulders, hips, knees) made from train_mini: new head, trains, evaluates, exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.models.trained import load_checkpoint_model
from posestream.models.vitpose import ViTPose
from posestream.training.checkpoints import HEAD_OUTPUT_KEYS, load_init_weights
from posestream.training.loop import TrainConfig, evaluate_model, train

KEEP = ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee", "right_knee")


def six_keypoint_json(source: Path, out: Path, num_images: int | None = None) -> Path:
    data = json.loads(source.read_text())
    cat = data["categories"][0]
    index = [cat["keypoints"].index(name) for name in KEEP]
    new_of_old = {old + 1: new + 1 for new, old in enumerate(index)}  # 1-based, as COCO skeletons
    pairs = [(a, b) for a, b in cat["skeleton"] if a in new_of_old and b in new_of_old]
    skeleton = [[new_of_old[a], new_of_old[b]] for a, b in pairs]
    annotations = []
    for ann in data["annotations"]:
        k = np.asarray(ann["keypoints"]).reshape(-1, 3)[index]
        labelled = int((k[:, 2] > 0).sum())
        annotations.append({**ann, "keypoints": k.ravel().tolist(), "num_keypoints": labelled})
    images = data["images"]
    if num_images is not None:
        with_people = {a["image_id"] for a in annotations if a["num_keypoints"] > 0}
        images = [im for im in images if im["id"] in with_people][:num_images]
        ids = {im["id"] for im in images}
        annotations = [a for a in annotations if a["image_id"] in ids]
    cats = [{**cat, "name": "upper-legs", "keypoints": list(KEEP), "skeleton": skeleton}]
    out.write_text(json.dumps({**data, "images": images, "annotations": annotations, "categories": cats}))
    return out


def test_six_keypoints_train_evaluate_and_export(shared: Path, tmp_path: Path):
    root = shared / "coco" / "train_mini"
    train_json = six_keypoint_json(root / "person_keypoints.json", tmp_path / "t.json")
    train_set = load_keypoint_dataset(root / "images", train_json)
    val_root = shared / "coco" / "val_subset"
    val_json = six_keypoint_json(val_root / "person_keypoints.json", tmp_path / "v.json", num_images=5)
    val_set = load_keypoint_dataset(val_root / "images", val_json)
    assert train_set.category.num_keypoints == 6 and train_set.category.flip_pairs == ((0, 1), (2, 3), (4, 5))
    assert train_set.category.skeleton == ((4, 2), (5, 3), (2, 3), (0, 2), (1, 3), (0, 1))

    # A 17-keypoint "pretrained" checkpoint: everything but the final layer carries over.
    torch.manual_seed(1)
    coco_model = ViTPose(embed_dim=64, depth=2, num_heads=2, decoder="simple", num_keypoints=17)
    torch.save({"state_dict": coco_model.state_dict()}, tmp_path / "init.pth")
    torch.manual_seed(2)
    model = ViTPose(embed_dim=64, depth=2, num_heads=2, decoder="simple", num_keypoints=6)
    assert load_init_weights(model, tmp_path / "init.pth") == list(HEAD_OUTPUT_KEYS)
    init, new = coco_model.state_dict(), model.state_dict()
    assert all(torch.equal(init[k], new[k]) for k in new if k not in HEAD_OUTPUT_KEYS)
    assert new["head.conv.weight"].shape == (6, 64, 3, 3)

    config = TrainConfig(epochs=1, batch_size=4, max_steps_per_epoch=3, warmup_steps=1, progress=False)
    result = train(model, train_set, tmp_path / "run", config, val_set=val_set)
    assert len(result.step_losses) == 3 and np.isfinite(result.step_losses).all()
    assert (tmp_path / "run" / "eval" / "epoch_001.json").is_file()

    reloaded, meta = load_checkpoint_model(result.best_path)
    assert meta["keypoint_names"] == list(KEEP) and meta["num_keypoints"] == 6
    report = evaluate_model(reloaded, val_set)  # pycocotools with the 6 COCO sigmas of these joints
    assert set(report.per_keypoint) == set(KEEP) and 0.0 <= report.stats["AP"] <= 1.0

    export_onnx = pytest.importorskip("posestream.export.onnx").export_onnx
    from posestream.runtime.factory import open_pose_backend

    names = meta["keypoint_names"]
    exported = export_onnx(reloaded, tmp_path / "six.onnx", random_weights=False, keypoint_names=names)
    assert exported.max_abs_diff <= exported.tolerance
    backend = open_pose_backend(tmp_path / "six.onnx")
    assert backend.num_keypoints == 6 and tuple(backend.keypoint_names) == KEEP
