"""Live views are sinks app.py builds from the config; the HUD is theirs unless render.hud asks otherwise."""

import re
import signal
import subprocess
import sys
import time
import urllib.request

import av
import cv2
import numpy as np

from posestream.visual.draw import strip_height


def _size(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.width, s.codec_context.height


def test_hud_in_the_live_view_not_in_the_saved_video_unless_asked(make_video, tmp_path):
    src = make_video(n=90, fps=30, size_wh=(320, 240))  # 3 s played in real time
    out_video = tmp_path / "o.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "posestream", "run", str(src), "--realtime", "--serve", "127.0.0.1:0",
         "--out-video", str(out_video), "--no-progress", "--pose-model", "none"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line, deadline = "", time.monotonic() + 30
        while "live view on" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        url = re.search(r"(http://\S+)", line).group(1)
        time.sleep(0.5)
        jpeg = urllib.request.urlopen(url + "frame.jpg", timeout=5).read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    live = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    hud_h = strip_height((320, 240), 1)
    assert live.shape[:2] == (240 + hud_h, 320)  # the live view carries the HUD strip
    assert _size(out_video) == (320, 240)  # the saved video does not
    asked = tmp_path / "hud.mp4"
    code = subprocess.run([sys.executable, "-m", "posestream", "run", str(src), "--max-frames", "5", "-q",
                           "--out-video", str(asked), "--set", "render.hud=true", "--pose-model", "none"],
                          timeout=120).returncode  # fmt: skip
    assert code == 0 and _size(asked) == (320, 240 + hud_h)  # render.hud: true burns it in, above the picture
