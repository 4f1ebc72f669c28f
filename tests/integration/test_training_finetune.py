"""Fine-tuning smoke on train_mini with a tiny ViTPose: loss, checkpoints, resume, per-epoch eval."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posestream.datasets.coco_keypoints import load_keypoint_dataset
from posestream.errors import InputError
from posestream.models.checkpoint import load_weights
from posestream.models.trained import load_checkpoint_model
from posestream.models.vitpose import ViTPose
from posestream.training.loop import TrainConfig, train


def tiny_model(num_keypoints: int = 17) -> ViTPose:
    torch.manual_seed(0)
    return ViTPose(embed_dim=64, depth=2, num_heads=2, decoder="simple", num_keypoints=num_keypoints)


def subset_json(root: Path, out: Path, num_images: int) -> Path:
    """The first ``num_images`` images of a dataset that have people with keypoints (same image folder)."""
    data = json.loads((root / "person_keypoints.json").read_text())
    with_people = {a["image_id"] for a in data["annotations"] if a["num_keypoints"] > 0}
    keep = [im for im in data["images"] if im["id"] in with_people][:num_images]
    ids = {im["id"] for im in keep}
    data = {**data, "images": keep, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    out.write_text(json.dumps(data))
    return out


CONFIG = dict(epochs=2, batch_size=4, lr=1e-3, warmup_steps=2, max_steps_per_epoch=6, progress=False)


@pytest.fixture(scope="module")
def runs(shared: Path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    train_root, val_root = shared / "coco" / "train_mini", shared / "coco" / "val_subset"
    train_set = load_keypoint_dataset(train_root / "images", train_root / "person_keypoints.json")
    val_set = load_keypoint_dataset(val_root / "images", subset_json(val_root, tmp / "val.json", 6))
    continuous = tiny_model()
    result = train(continuous, train_set, tmp / "a", TrainConfig(**CONFIG), val_set=val_set)
    interrupted = tiny_model()
    stop_early = TrainConfig(**CONFIG, stop_after_epochs=1)
    first = train(interrupted, train_set, tmp / "b", stop_early, val_set=val_set)
    resumed_model = tiny_model()
    resumed = train(resumed_model, train_set, tmp / "b", TrainConfig(**CONFIG), val_set=val_set, resume=True)
    return {
        "tmp": tmp, "train_set": train_set, "val_set": val_set, "model": continuous, "result": result,
        "first": first, "resumed": resumed, "resumed_model": resumed_model,
    }  # fmt: skip


def test_loss_falls(runs):
    losses = runs["result"].step_losses
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_checkpoint_reloads_to_identical_outputs(runs):
    model = runs["model"].eval()
    x = torch.randn(2, 3, 256, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        reloaded, meta = load_checkpoint_model(runs["tmp"] / "a" / "last.pth")
        assert torch.equal(reloaded.eval()(x), expected)
        again = tiny_model()  # the generic loader reads our files too
        load_weights(again, runs["tmp"] / "a" / "last.pth")
        assert torch.equal(again.eval()(x), expected)
    assert meta["num_keypoints"] == 17 and meta["keypoint_names"][5] == "left_shoulder" and meta["step"] == 12
    assert meta["arch"] == {"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size_hw": [256, 192]}
    assert (runs["tmp"] / "a" / "best.pth").is_file()


def test_resume_continues_the_step_count_and_reproduces_the_run(runs):
    assert [e["step"] for e in runs["first"].epochs] == [6]
    assert [e["step"] for e in runs["resumed"].epochs] == [6, 12]
    assert runs["resumed"].step_losses == runs["result"].step_losses
    a, b = runs["model"].state_dict(), runs["resumed_model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_report_and_logs_are_written(runs):
    run = runs["tmp"] / "a"
    report = json.loads((run / "eval" / "epoch_002.json").read_text())
    assert set(report["stats"]) >= {"AP", "AP50", "AP75", "APm", "APl", "AR"}
    assert report["num_predictions"] > 0
    assert (run / "eval" / "epoch_001.md").is_file() and (run / "curves.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "val_AP" in rows[0]
    assert len(list(csv.DictReader(open(run / "steps.csv")))) == 12


def test_resume_and_overwrite_are_refused(runs, tmp_path):
    with pytest.raises(InputError, match="nothing to resume"):
        train(tiny_model(), runs["train_set"], tmp_path / "new", TrainConfig(**CONFIG), resume=True)
    with pytest.raises(InputError, match="already holds a run"):
        train(tiny_model(), runs["train_set"], runs["tmp"] / "a", TrainConfig(**CONFIG))
