"""Image folders, globs and stills are independent photos: no tracking, every detection kept, named."""

import json
from collections import defaultdict

import cv2
import numpy as np
import pytest

from posestream import cli
from posestream.detection import load_person_detector
from posestream.visual.draw import strip_height


def _iou(a, b):
    tl, br = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _found(det, gt):
    """GT people matched one-to-one by detections (descending score) at IoU >= 0.5 (benchmarks/detector_recall.py)."""
    if len(det) == 0 or len(gt) == 0:
        return 0
    taken = np.zeros(len(gt), bool)
    for row in _iou(det, gt):
        row = np.where(taken, -1.0, row)
        if row.max() >= 0.5:
            taken[int(np.argmax(row))] = True
    return int(taken.sum())


@pytest.fixture(scope="module")
def coco(shared):
    root = shared / "coco" / "val_subset"
    data = json.loads((root / "person_keypoints.json").read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    gt = defaultdict(list)
    for a in data["annotations"]:  # non-crowd people larger than 32x32 (COCO medium + large)
        if not a.get("iscrowd") and a["area"] > 32**2:
            x, y, w, h = a["bbox"]
            gt[names[a["image_id"]]].append([x, y, x + w, y + h])
    return root / "images", {n: np.array(gt[n], np.float64).reshape(-1, 4) for n in names.values()}


def test_image_folder_lines_name_their_image_and_recall_is_the_detectors_own(shared, coco, tmp_path):
    images, gt = coco
    model = shared / "models" / "yolox_nano_coco.onnx"
    out_json = tmp_path / "o.jsonl"
    code = cli.main(["run", str(images), "--detector", str(model), "--out-json", str(out_json), "-q"])
    assert code == 0
    lines = [json.loads(x) for x in out_json.read_text().splitlines()]
    assert sorted(line["file"] for line in lines) == sorted(gt) and len(lines) == len(gt) == 107
    people = {line["file"]: line["people"] for line in lines}
    assert all(p["track_id"] == -1 and p["keypoints"] == [] for ps in people.values() for p in ps)  # untracked
    detector = load_person_detector(model, score_threshold=0.3)  # the detector alone, at detector.conf
    ours = own = 0
    for name, boxes in gt.items():
        rows = sorted(people[name], key=lambda p: -p["box_score"])
        ours += _found(np.array([p["box_xyxy"] for p in rows], np.float64).reshape(-1, 4), boxes)
        alone = detector.detect(cv2.imread(str(images / name)))
        own += _found(alone.xyxy.astype(np.float64), boxes)
        assert len(rows) == len(alone) and np.allclose([p["box_score"] for p in rows], alone.score, atol=1e-3)
    total = sum(len(b) for b in gt.values())
    print(f"person recall through `posestream run`: {ours}/{total} = {ours / total:.3f}; detector alone "
          f"{own}/{total} = {own / total:.3f}")
    assert total == 165 and ours == own and ours / total >= 0.68


def test_a_still_is_posed_and_out_video_png_writes_a_png(shared, vitpose_s_onnx, tmp_path):
    still = shared / "media" / "images" / "astronaut.png"
    out_png, out_json = tmp_path / "x.png", tmp_path / "x.jsonl"
    code = cli.main(["run", str(still), "--detector", str(shared / "models" / "yolox_nano_coco.onnx"),
                     "--pose-model", str(vitpose_s_onnx), "--out-video", str(out_png), "--out-json", str(out_json),
                     "-q"])  # fmt: skip
    assert code == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a real PNG, not MP4 bytes under a .png name
    h, w = cv2.imread(str(still)).shape[:2]
    banner = strip_height((w, h), 1)  # random weights: the banner strip above the picture
    assert cv2.imread(str(out_png)).shape == (h + banner, w, 3)
    (line,) = [json.loads(x) for x in out_json.read_text().splitlines()]
    assert line["file"] == "astronaut.png" and len(line["people"]) >= 1
    person = line["people"][0]
    assert person["track_id"] == -1 and len(person["keypoints"]) == 17 and person["box_score"] >= 0.3


def _frames_folder(shared, folder, n=6):
    import av

    folder.mkdir()
    with av.open(str(shared / "media" / "pose2sim_multiperson_cam01.mp4")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == n:
                break
            cv2.imwrite(str(folder / f"f{i:03d}.jpg"), frame.to_ndarray(format="bgr24")[::4, ::4])
    return folder


def test_track_makes_a_folder_a_sequence_and_image_outputs_are_checked(shared, tmp_path, capsys):
    frames = _frames_folder(shared, tmp_path / "frames")
    det = ["--detector", str(shared / "models" / "yolox_nano_coco.onnx"), "-q"]
    for extra, tracked in (([], False), (["--track"], True)):
        out, out_dir = tmp_path / f"o{len(extra)}.jsonl", tmp_path / f"annotated{len(extra)}"
        assert cli.main(["run", str(frames / "*.jpg"), *det, "--out-json", str(out), "--out-dir", str(out_dir),
                         *extra]) == 0  # fmt: skip
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [x["file"] for x in lines] == [f"f{i:03d}.jpg" for i in range(6)]
        ids = {p["track_id"] for x in lines for p in x["people"]}
        assert (min(ids) >= 1) if tracked else ids == {-1}
        # --out-dir: the annotated pictures under the same names, at the same sizes, boxes drawn
        assert sorted(p.name for p in out_dir.iterdir()) == [x["file"] for x in lines]
        drawn, original = cv2.imread(str(out_dir / "f000.jpg")), cv2.imread(str(frames / "f000.jpg"))
        assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100
    capsys.readouterr()
    before = sorted(p.stat().st_mtime_ns for p in frames.iterdir())
    for args, message in (
        (["--out-video", str(tmp_path / "x.png")], "an image file holds one annotated picture, and the source is 6"),
        (["--out-dir", str(frames)], "is the source's own folder"),
    ):
        assert cli.main(["run", str(frames), *det, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1
    assert sorted(p.stat().st_mtime_ns for p in frames.iterdir()) == before and not (tmp_path / "x.png").exists()


def test_conf_and_device_flags(shared, coco, tmp_path, capsys, caplog):
    images, _ = coco
    det = ["--detector", str(shared / "models" / "yolox_nano_coco.onnx"), "-q"]
    scores = {}
    for conf in ("0.3", "0.6"):
        out = tmp_path / f"c{conf}.jsonl"
        assert cli.main(["run", str(images / "0000000008*.jpg"), *det, "--conf", conf, "--out-json", str(out)]) == 0
        scores[conf] = [p["box_score"] for x in out.read_text().splitlines() for p in json.loads(x)["people"]]
    assert min(scores["0.6"]) >= 0.6 and min(scores["0.3"]) >= 0.3
    assert sorted(s for s in scores["0.3"] if s >= 0.6) == sorted(scores["0.6"]) and len(scores["0.3"]) > len(scores["0.6"])
    capsys.readouterr()
    assert cli.main(["run", str(images / "0000000008*.jpg"), *det, "--conf", "1.5", "--out-json", "x"]) == 2
    assert cli.main(["run", str(images / "0000000008*.jpg"), *det, "--device", "tpu", "--out-json", "x"]) == 2
    err = capsys.readouterr().err
    assert "--conf 1.5: expected a detector score in [0, 1]" in err and "--device tpu: expected cpu, cuda" in err
    # cuda where there is none: asked for, not granted, said (onnxruntime falls back to the CPU)
    out = tmp_path / "cuda.jsonl"
    caplog.set_level("WARNING")
    code = cli.main(["run", str(images / "0000000008*.jpg"), "--detector", str(shared / "models" / "yolox_nano_coco.onnx"),
                     "--device", "cuda", "--out-json", str(out), "--no-progress"])  # fmt: skip
    assert code == 0 and len(out.read_text().splitlines()) >= 1
    assert "CUDAExecutionProvider was requested but not granted" in caplog.text
