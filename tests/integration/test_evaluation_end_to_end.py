"""``posestream eval`` end to end on val_subset: GT boxes, the YOLOX-Nano detector, the flip test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posestream.cli import main
from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.evaluation.predict import FlipTestBackend
from posestream.models.vitpose import ViTPose
from posestream.runtime.torch import TorchPoseBackend
from posestream.training.checkpoints import model_meta, save_checkpoint
from posestream.training.targets import udp_heatmap_targets


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random tiny ViTPose saved as ``posestream train`` saves it (the CLI rebuilds it from meta).

    CI uses it instead of ViTPose-S: same estimator, decoder and evaluation code, a fraction of the CPU.
    """
    torch.manual_seed(0)
    model = ViTPose(embed_dim=32, depth=1, num_heads=2, decoder="simple")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(path, {"state_dict": model.state_dict(), "meta": model_meta(model)})
    return path


def _subset(root: Path, out: Path, num_images: int) -> Path:
    data = json.loads((root / "person_keypoints.json").read_text())
    with_people = {a["image_id"] for a in data["annotations"] if a["num_keypoints"] > 0}
    keep = [im for im in data["images"] if im["id"] in with_people][:num_images]
    ids = {im["id"] for im in keep}
    annotations = [a for a in data["annotations"] if a["image_id"] in ids]
    out.write_text(json.dumps({**data, "images": keep, "annotations": annotations}))
    return out


def test_eval_cli_gt_boxes_all_people(shared: Path, tmp_path: Path, tiny_checkpoint: Path):
    """All 164 people of val_subset through the live estimator (random tiny ViTPose)."""
    root = shared / "coco" / "val_subset"
    code = main([
        "eval", "--images", str(root / "images"), "--annotations", str(root / "person_keypoints.json"),
        "--weights", str(tiny_checkpoint), "--boxes", "gt", "--out-dir", str(tmp_path), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(results) == 164 and len(results[0]["keypoints"]) == 51 and results[0]["category_id"] == 1
    assert report["num_matched"] == 164 and report["num_gt_people"] == 164
    assert 0.0 <= report["stats"]["AP"] < 0.05  # random weights: near zero, and reported as such
    assert "| right_ankle | 63 |" in (tmp_path / "report.md").read_text()


def test_eval_cli_with_yolox_nano_detector(shared: Path, tmp_path: Path, tiny_checkpoint: Path):
    root = shared / "coco" / "val_subset"
    annotations = _subset(root, tmp_path / "ann.json", 12)
    code = main([
        "eval", "--images", str(root / "images"), "--annotations", str(annotations),
        "--weights", str(tiny_checkpoint), "--boxes", "detector",
        "--detector", str(shared / "models" / "yolox_nano_coco.onnx"),
        "--flip-test", "--out-dir", str(tmp_path / "out"), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["num_predictions"] == len(results) > 5 and all("ann_id" not in r for r in results)
    assert report["stats"]["AP"] < 0.05 and report["meta"]["flip_test"] is True  # random pose weights
    assert "yolox_nano_coco.onnx" in report["meta"]["boxes"]


@pytest.mark.parametrize("argv, message", [
    (["--boxes", "detector", "--variant", "s", "--weights", "none"], "--detector"),
    (["--variant", "s", "--weights", "none", "--pose-model", "x.onnx"], "either --pose-model"),
])  # fmt: skip
def test_eval_cli_bad_flags_exit_2(shared: Path, tmp_path: Path, capsys, argv, message):
    root = shared / "coco" / "val_subset"
    annotations = _subset(root, tmp_path / "ann.json", 2)
    base = ["eval", "--images", str(root / "images"), "--annotations", str(annotations)]
    code = main([*base, *argv, "--no-progress"])
    assert code == 2 and message in capsys.readouterr().err


def test_flip_test_is_mirror_equivariant_and_udp_needs_no_shift(shared: Path):
    torch.manual_seed(0)
    model = ViTPose(embed_dim=32, depth=1, num_heads=2, decoder="simple")
    root = shared / "coco" / "val_subset"
    category = load_keypoint_dataset(root / "images", root / "person_keypoints.json").category
    flip = FlipTestBackend(TorchPoseBackend(model), category.flip_index)
    x = np.random.default_rng(0).standard_normal((2, 3, 256, 192)).astype(np.float32)
    mirrored_out = flip(np.ascontiguousarray(x[..., ::-1]))
    np.testing.assert_allclose(mirrored_out, flip(x)[:, category.flip_index, :, ::-1], atol=1e-5)
    # UDP: mirroring a crop maps x -> 191 - x and the heatmap column u -> 47 - u, with no offset.
    joints = np.array([[37.3, 100.0], [120.6, 30.2]])
    mirrored = np.stack([191 - joints[:, 0], joints[:, 1]], axis=1)
    np.testing.assert_allclose(
        udp_heatmap_targets(mirrored, np.ones(2))[0],
        udp_heatmap_targets(joints, np.ones(2))[0][:, :, ::-1],
        atol=1e-6,
    )


def test_eval_backend_from_safetensors_and_from_a_train_checkpoint(shared, tmp_path, tiny_checkpoint):
    """--weights may be a .safetensors file (with --variant) or a train checkpoint (architecture from meta)."""
    import argparse

    from safetensors.torch import save_file

    from posestream.evaluation.cli import open_backend
    from posestream.models.vitpose import build_vitpose

    root = shared / "coco" / "val_subset"
    dataset = load_keypoint_dataset(root / "images", root / "person_keypoints.json")
    torch.manual_seed(1)
    model = build_vitpose("s", decoder="simple").eval()
    path = tmp_path / "s.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    args = argparse.Namespace(pose_model=None, variant="s", weights=str(path), decoder="simple", device="cpu",
                              providers="cpu")  # fmt: skip
    backend = open_backend(args, dataset)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(backend(x.numpy()), expected, atol=1e-5)
    assert backend.random_weights is False
    args = argparse.Namespace(pose_model=None, variant=None, weights=str(tiny_checkpoint), decoder="classic",
                              device="cpu", providers="cpu")  # fmt: skip
    assert open_backend(args, dataset).num_keypoints == 17
