"""Live form feedback end to end: a real clip played at its native rate, poses replayed from keypoints
made in the test (five squats, the third too shallow), `--exercise squat --serve`: the live page in
headless Chromium shows the rep counter going up and the cue; the JSON Lines hold the rep events."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from synthetic_motion import squat_keypoints_for_clip
from test_serve_browser import CHROMIUM, REPO, chromium, wait_until  # noqa: F401 - chromium is a fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium absent (CI: apt-get install -y chromium)"),
]

READ_REPS = """(() => {
  const box = document.getElementById("exercise");
  if (!box || !box.classList.contains("show")) return null;
  const card = document.querySelector("#people-reps .person");
  if (!card) return null;
  return {reps: card.querySelector(".reps").textContent, phase: card.querySelector(".phase").textContent,
          cues: card.querySelector(".cues").textContent, track: card.dataset.track,
          name: document.getElementById("exercise-name").textContent,
          recent: document.getElementById("recent").textContent};
})()"""


def test_live_page_counts_reps_and_shows_the_cue(shared, chromium, tmp_path):  # noqa: F811
    clip = shared / "media" / "sports2d_demo.mp4"  # 230 frames at 30 fps, 1768x994
    with av.open(str(clip)) as c:
        times = [float(f.time) for f in c.decode(c.streams.video[0])]
    keypoints = tmp_path / "earlier.jsonl"
    squat_keypoints_for_clip(keypoints, times, [80, 82, 104, 78, 81], period_s=1.2, hold_s=0.25, scale=1.6,
                             offset=(500, 250))  # fmt: skip
    reps = tmp_path / "reps.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "posestream", "run", str(clip), "--keypoints-from", str(keypoints), "--smooth", "none",
         "--exercise", "squat", "--out-reps", str(reps), "--serve", "127.0.0.1:0", "--realtime"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    seen: list[dict] = []
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            m = re.search(r"live view on (http://\S+)", line)
            url = m.group(1) if m else None
        assert url, "the run did not announce its live view"
        page = chromium(url)
        t_end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < t_end:
            state = page.evaluate(READ_REPS)
            if state and (not seen or state != seen[-1]):
                seen.append(state)
            if state and state["reps"] == "5":
                break
            time.sleep(0.15)
        png = base64.b64decode(page.call("Page.captureScreenshot", {"format": "png"})["data"])
        (tmp_path / "exercise_page.png").write_bytes(png)
        if os.environ.get("POSESTREAM_SAVE_SCREENSHOT"):
            (REPO / "reports").mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / "exercise_page.png", REPO / "reports" / "exercise_page.png")
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, err[-2000:]

    # The page: one person (#1) doing squats; the counter only goes up, through several values.
    counts = [int(s["reps"]) for s in seen]
    assert seen and all(s["name"] == "squat" and s["track"] == "1" for s in seen)
    assert counts == sorted(counts) and len(set(counts)) >= 3 and max(counts) >= 4, counts
    assert {s["phase"] for s in seen} & {"lowering", "bottom", "rising"}  # the phase is shown as it changes
    shallow = [s for s in seen if s["reps"] == "3"]
    assert shallow and all(s["cues"] == "go deeper" for s in shallow), shallow  # the cue of rep 3
    assert all(s["cues"] == "" for s in seen if s["reps"] in ("1", "2"))
    assert "rep 3" in seen[-1]["recent"] and "go deeper" in seen[-1]["recent"]

    # The JSON Lines: every rep, with its times (frames of the clip), angles and cues.
    events = [json.loads(line) for line in reps.read_text().splitlines()]
    assert [e["rep"] for e in events] == [1, 2, 3, 4, 5] and {e["track_id"] for e in events} == {1}
    assert [e["cues"] for e in events] == [[], [], ["go deeper"], [], []]
    for e in events:
        assert {e["pts_start"], e["pts_turn"], e["pts"]} <= set(times) and e["pts_start"] < e["pts_turn"] < e["pts"]
        assert e["min_deg"]["knee"] < 110 < 160 < e["max_deg"]["knee"]
    assert abs(events[2]["min_deg"]["knee"] - 104) < 4 and all(abs(events[i]["min_deg"]["knee"] - b) < 4
                                                               for i, b in [(0, 80), (1, 82), (3, 78), (4, 81)])
    assert "reps: track 1: 5 (go deeper x1)" in err
