"""Models of other keypoint sets through the whole graph, eval with their own sigmas, and the CLI.

- a 133-keypoint whole-body ViTPose-S (random weights, exported) on mmpose_demo.mp4: video, JSON with
  133 named keypoints, CSV rows as long as the header, the whole-body skeleton drawn;
- tiny AP-10K / MPII / AIC models (random weights, exported with their set in the metadata) render
  their own skeletons and are evaluated with their own OKS sigmas on a COCO-format file made here;
- a whole-body checkpoint run as COCO fails with exit 2 naming both sets;
- ``posestream models`` lists every known name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from posestream import cli
from posestream.app import RANDOM_BANNER, build_pipeline
from posestream.config import load_config
from posestream.export.onnx import export_onnx
from posestream.keypoints import KeypointSet, get_keypoint_set
from posestream.models.vitpose import ViTPose, build_vitpose
from posestream.stages.base import StageBase
from posestream.types import Poses
from posestream.visual.draw import add_strip, draw_poses, strip_height


class Capture(StageBase):
    """Keeps every packet's rendered picture and poses."""

    name = "capture"

    def __init__(self) -> None:
        self.frames: list[tuple[np.ndarray, np.ndarray, object]] = []  # (source, rendered, poses)

    def process(self, packet):
        self.frames.append((packet.frame.image.copy(), packet.annotated.copy(), packet.poses))
        return packet


def test_wholebody_model_runs_end_to_end_on_the_crowd_clip(shared, tmp_path: Path, capsys):
    model_path = tmp_path / "vitpose-s-wholebody-random.onnx"
    assert cli.main(["export", "--variant", "s", "--keypoints", "wholebody", "--weights", "none",
                     "--out", str(model_path)]) == 0  # fmt: skip
    assert "keypoint set wholebody (133 keypoints)" in capsys.readouterr().out
    out = {kind: tmp_path / f"wb.{kind}" for kind in ("mp4", "jsonl", "csv")}
    code = cli.main(["run", str(shared / "media" / "mmpose_demo.mp4"), "--pose-model", str(model_path),
                     "--detector", str(shared / "models" / "yolox_nano_coco.onnx"), "--smooth", "kalman",
                     "--set", "render.keypoint_threshold=0", "--out-video", str(out["mp4"]),
                     "--out-json", str(out["jsonl"]), "--out-csv", str(out["csv"])])  # fmt: skip
    assert code == 0
    wholebody = get_keypoint_set("wholebody")
    lines = [json.loads(line) for line in out["jsonl"].read_text().splitlines()]
    assert len(lines) == 5 and lines[0]["keypoint_names"] == list(wholebody.keypoints)
    people = [p for line in lines for p in line["people"]]
    assert len(people) >= 10 and all(len(p["keypoints"]) == 133 for p in people)
    rows = list(csv.reader(out["csv"].open()))
    assert len(rows) == 1 + len(people) and {len(r) for r in rows} == {8 + 3 * 133 + 1}
    assert rows[0][8 + 3 * 91] == "left_hand_root_x"
    # the video: 5 frames, and the skeleton drawn on the people is the whole-body one (feet and
    # hands included): frame 0 re-drawn from the JSON with that skeleton matches the decoded video
    with av.open(str(out["mp4"])) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 5
    source = next(av.open(str(shared / "media" / "mmpose_demo.mp4")).decode(video=0)).to_ndarray(
        format="bgr24"
    )
    # re-draw frame 0 from the JSON with the whole-body skeleton, and without its hand and foot limbs:
    # the decoded video must be the former (up to H.264 noise), clearly not the latter
    poses = _poses_of(lines[0])
    no_extremities = KeypointSet("wb-body-only", wholebody.keypoints, wholebody.skeleton[:19])
    full = draw_poses(source.copy(), poses, keypoint_threshold=0, keypoint_set=wholebody)
    body = draw_poses(source.copy(), poses, keypoint_threshold=0, keypoint_set=no_extremities)
    strip = strip_height(source.shape[1::-1], 1)  # the random-weights banner, above the picture
    assert frames[0].shape[0] == source.shape[0] + strip
    err_full = np.abs(frames[0][strip:].astype(int) - full).mean()
    err_body = np.abs(frames[0][strip:].astype(int) - body).mean()
    assert err_full < 0.5 * err_body, (err_full, err_body)


def _poses_of(line: dict) -> Poses:
    kps = np.array([p["keypoints"] for p in line["people"]], np.float32)  # (N, K, 3)
    boxes = np.array([p["box_xyxy"] for p in line["people"]], np.float32)
    ids = np.array([p["track_id"] for p in line["people"]], np.int64)
    return Poses(kps[..., :2].copy(), kps[..., 2].copy(), boxes, ids)


def tiny_model(set_name: str, path: Path) -> Path:
    """A small ViTPose (random weights) of that keypoint set, exported with the set in its metadata."""
    kset = get_keypoint_set(set_name)
    torch.manual_seed(0)
    model = ViTPose(embed_dim=64, depth=1, num_heads=2, num_keypoints=kset.num_keypoints).eval()
    export_onnx(model, path, random_weights=True, keypoint_set=kset)
    return path


@pytest.mark.parametrize("set_name", ["ap10k", "mpii", "aic"])
def test_other_sets_render_their_skeleton_and_evaluate_with_their_sigmas(
    set_name, shared, make_video, tmp_path
):
    kset = get_keypoint_set(set_name)
    model = tiny_model(set_name, tmp_path / f"{set_name}.onnx")

    # run: whole-frame boxes on a small clip; the render stage draws the model's skeleton
    capture = Capture()
    config = load_config(None, [f"pose.model={model}", "render.keypoint_threshold=0", "render.hud=false",
                                f"output.csv={tmp_path / 'k.csv'}"])  # fmt: skip
    pipeline = build_pipeline(str(make_video(n=3, size_wh=(192, 256))), config, extra_stages=[capture])
    assert cli.execute(pipeline) == 0 and len(capture.frames) == 3
    frame, annotated, poses = capture.frames[0]
    assert poses.keypoints.shape == (1, kset.num_keypoints, 2)

    def redraw(skeleton_of):  # what the render stage draws: poses, then the random-weights banner
        drawn = draw_poses(frame.copy(), poses, keypoint_threshold=0, keypoint_set=skeleton_of)
        return add_strip(drawn, [RANDOM_BANNER])

    assert np.array_equal(annotated, redraw(kset))
    if kset.num_keypoints == 17:  # same K as COCO: the COCO skeleton would have looked different
        assert not np.array_equal(annotated, redraw(get_keypoint_set("coco")))
    header = next(csv.reader((tmp_path / "k.csv").open()))
    assert header[8] == f"{kset.keypoints[0]}_x" and len(header) == 8 + 3 * kset.num_keypoints + 1

    # eval: a COCO-format file whose category spells the names its own way and gives no sigmas
    annotations = _coco_file(shared, kset, tmp_path)
    out_dir = tmp_path / "eval"
    assert cli.main(["eval", "--images", str(shared / "coco" / "val_subset" / "images"), "--annotations",
                     str(annotations), "--pose-model", str(model), "--out-dir", str(out_dir),
                     "--no-progress"]) == 0  # fmt: skip
    report = json.loads((out_dir / "report.json").read_text())
    assert report["meta"]["oks_sigmas"] == f"keypoint set '{set_name}'"
    assert list(report["per_keypoint"]) == list(kset.keypoints)
    results = {r["ann_id"]: np.array(r["keypoints"]).reshape(-1, 3)[:, :2] for r in
               json.loads((out_dir / "results.json").read_text())}  # fmt: skip
    gt = {a["id"]: a for a in json.loads(annotations.read_text())["annotations"]}
    j = int(np.argmax(kset.sigmas))  # a joint whose error the sigma visibly scales
    errors = [np.linalg.norm(results[i][j] - np.array(gt[i]["keypoints"]).reshape(-1, 3)[j, :2])
              / (np.sqrt(gt[i]["area"]) * 2 * kset.sigmas[j]) for i in results]  # fmt: skip
    assert report["per_keypoint"][kset.keypoints[j]]["oks_error"] == pytest.approx(np.mean(errors), rel=1e-6)


def _coco_file(shared: Path, kset, tmp_path: Path) -> Path:
    """Three people on three real images, K random keypoints inside their boxes; names 'kp<i>'."""
    val = json.loads((shared / "coco" / "val_subset" / "person_keypoints.json").read_text())
    images = val["images"][:3]
    rng = np.random.default_rng(0)
    anns = []
    for i, image in enumerate(images):
        w, h = image["width"], image["height"]
        x, y, bw, bh = w * 0.2, h * 0.2, w * 0.5, h * 0.6
        k = kset.num_keypoints
        kp = np.column_stack([rng.uniform(x, x + bw, k), rng.uniform(y, y + bh, k), np.full(k, 2)])
        anns.append({"id": i + 1, "image_id": image["id"], "category_id": 1, "bbox": [x, y, bw, bh],
                     "area": bw * bh, "iscrowd": 0, "num_keypoints": kset.num_keypoints,
                     "keypoints": kp.ravel().round(2).tolist()})  # fmt: skip
    names = [f"kp{i}" for i in range(kset.num_keypoints)]
    category = {"id": 1, "name": kset.name, "keypoints": names, "skeleton": []}
    data = {"images": images, "annotations": anns, "categories": [category]}
    path = tmp_path / f"{kset.name}_keypoints.json"
    path.write_text(json.dumps(data))
    return path


def test_wholebody_weights_run_as_coco_exit_2_naming_both_sets(make_video, tmp_path: Path, capsys):
    weights = tmp_path / "vitpose-s-wholebody-random.pth"
    torch.save({k: v.half() for k, v in build_vitpose("s", num_keypoints=133).state_dict().items()}, weights)
    out_json = tmp_path / "never.jsonl"
    code = cli.main(["run", str(make_video(n=2)), "--variant", "s", "--weights", str(weights), "--keypoints",
                     "coco", "--out-json", str(out_json)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "wholebody (133 keypoints)" in err and "coco (17 keypoints)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not out_json.exists()


def test_models_lists_every_known_name(capsys, tmp_path: Path, monkeypatch):
    from posestream.models.catalog import KNOWN_DETECTORS
    from posestream.models.known_weights import known_weight_names

    monkeypatch.setenv("POSESTREAM_CACHE", str(tmp_path))
    assert cli.main(["models"]) == 0
    listed = {line.split()[0].rstrip("*") for line in capsys.readouterr().out.splitlines()[2:-1]
              if line and not line[0].isspace()}  # fmt: skip
    assert listed == set(known_weight_names()) | set(KNOWN_DETECTORS)
    assert len(known_weight_names()) == 7 * 4 * 2 + 7  # sets x sizes x (.pth, .onnx) + Hub repos
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    export_help = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    assert all(n in export_help for n in known_weight_names() if not n.endswith(".onnx")), "export --help"
