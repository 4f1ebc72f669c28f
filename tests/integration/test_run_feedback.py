"""What `posestream run` tells its user: progress off a terminal, files written, runs that write nothing."""

import re
import subprocess
import sys

from posestream import cli
from posestream.progress import format_size


def _run(args, **kw):
    """`posestream run ARGS` without models (decode and write): what is said around the work."""
    return subprocess.run([sys.executable, "-m", "posestream", "run", *map(str, args), "--pose-model", "none"],
                          capture_output=True, text=True, timeout=300, **kw)  # fmt: skip


def test_progress_lines_when_stderr_is_not_a_terminal_and_the_files_written(shared, tmp_path):
    out_json, out_video = tmp_path / "o.jsonl", tmp_path / "o.mp4"
    proc = _run([shared / "media" / "sports2d_demo.mp4", "--max-frames", "25", "--out-json", out_json,
                 "--out-video", out_video, "--progress-every", "0.2"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = re.findall(r"^posestream: (\d+)/25 frames \((\d+)%\), ([\d.]+) fps(, eta .+)?$", proc.stderr, re.M)
    assert len(lines) >= 2, proc.stderr  # several lines, not one at the end
    done = [int(d) for d, _, _, _ in lines]
    assert done == sorted(done) and done[-1] == 25 and any(eta for *_, eta in lines)
    assert "\r" not in proc.stderr and "INFO" not in proc.stderr  # plain lines, no bar; no info without -v
    listing = proc.stderr[proc.stderr.index("posestream: wrote"):].splitlines()[1:]
    sizes = {line.split()[0]: " ".join(line.split()[1:]) for line in listing}
    assert sizes == {str(p): format_size(p.stat().st_size) for p in (out_json, out_video)}


def test_quiet_prints_nothing_but_errors_wherever_it_stands(shared, tmp_path):
    proc = _run(["-q", shared / "media" / "mmpose_demo.mp4", "--out-json", tmp_path / "o.jsonl"])
    assert proc.returncode == 0 and proc.stderr == ""
    proc = _run([shared / "media" / "mmpose_demo.mp4", "--out-json", tmp_path / "o.jsonl", "--quiet",
                 "--set", "tracker.nope=1"])  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("posestream: error: unknown config key")


def test_verbose_works_before_and_after_the_subcommand(shared, tmp_path):
    clip = shared / "media" / "mmpose_demo.mp4"
    det = ["--detector", shared / "models" / "yolox_nano_coco.onnx", "--out-json", tmp_path / "o.jsonl"]
    for argv in (["-v", "run", clip, *det], ["run", clip, *det, "-v"]):
        proc = subprocess.run([sys.executable, "-m", "posestream", *map(str, argv)], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert re.search(r"INFO posestream.app: tracker: [\d.]+ fps \(the source's rate\)", proc.stderr), argv
    # that tracking-only file (boxes and ids, no keypoints) is accepted by `angles`, with a note
    proc = subprocess.run([sys.executable, "-m", "posestream", "angles", str(tmp_path / "o.jsonl"), "--out-dir",
                           str(tmp_path / "angles")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "holds boxes and track ids only (a tracking-only run" in proc.stderr
    assert (tmp_path / "angles" / "angles.csv").read_text().startswith("frame,pts,track_id,")


def test_a_run_that_would_write_nothing_says_so_and_exits_2(shared, tmp_path, capsys):
    code = cli.main(["run", str(shared / "media" / "mmpose_demo.mp4"), "--pose-model", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "this run would write nothing: add --out-video" in err and len(err.splitlines()) == 1


def test_webcam_preset_on_a_file_plays_it_in_real_time_and_says_so(make_video, tmp_path):
    src = make_video(n=15, fps=30)  # 0.5 s
    proc = _run([src, "--config", "webcam", "--out-json", tmp_path / "o.jsonl", "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert "is recorded: playing it at its native rate as a camera would (--realtime)" in proc.stderr
    assert "--set source.live=false processes every frame" in proc.stderr


def test_eval_with_random_weights_warns_on_the_terminal(shared, tmp_path, capsys):
    import json

    root = shared / "coco" / "val_subset"
    data = json.loads((root / "person_keypoints.json").read_text())
    image = next(im for im in data["images"] if any(a["image_id"] == im["id"] and a["num_keypoints"] > 0
                                                    for a in data["annotations"]))  # fmt: skip
    ann = tmp_path / "one.json"
    ann.write_text(json.dumps({**data, "images": [image],
                               "annotations": [a for a in data["annotations"] if a["image_id"] == image["id"]]}))
    code = cli.main(["eval", "--images", str(root / "images"), "--annotations", str(ann), "--variant", "s",
                     "--weights", "none", "--out-dir", str(tmp_path / "eval"), "--no-progress"])  # fmt: skip
    assert code == 0
    assert "posestream: WARNING: RANDOM WEIGHTS: this model was not loaded from a checkpoint; its AP" in capsys.readouterr().err
