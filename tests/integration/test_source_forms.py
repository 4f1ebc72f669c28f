"""Issue 10, cases 12, 13, 15 and mixed-size image folders: sources as players show them.

Rotated phone clips are posed upright; a recording served over HTTP is a file (every frame);
the source's audio is carried into the annotated video; odd sizes and mixed-size photo folders
are padded / letterboxed, and the run says so. Real files made with PyAV, the real YOLOX.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from output_checks import decode_all, encode_frames, parse_jsonl, run_args, write_noisy_video

from posestream import cli
from posestream.io.video import open_source


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main(run_args("run", *args))
    return code, capsys.readouterr().err


def _write(path: Path, images: list[np.ndarray], rotation: int = 0, fps: int = 30) -> Path:
    return encode_frames(path, images, fps, options={"bf": "0", "crf": "12", "preset": "ultrafast"}, rotation=rotation)


# --------------------------------------------------------------------------- case 12
@pytest.mark.parametrize("rotation, store", [(90, cv2.ROTATE_90_CLOCKWISE), (-90, cv2.ROTATE_90_COUNTERCLOCKWISE),
                                             (180, cv2.ROTATE_180)])  # fmt: skip
def test_display_rotation_gives_upright_frames(tmp_path, rotation, store):
    upright = np.zeros((48, 80, 3), np.uint8)
    upright[:12, :20] = 255  # a white block in the top-left corner, as players show it
    stored = cv2.rotate(upright, store)  # the pixels a sideways-held camera writes
    path = _write(tmp_path / "rot.mp4", [stored] * 3, rotation=rotation)
    with open_source(str(path)) as reader:
        frames = list(reader)
        assert reader.info.size_wh == (80, 48)
    assert frames[0].image.shape == (48, 80, 3)
    assert frames[0].image[:12, :20].mean() > 200 and frames[0].image[36:, 60:].mean() < 50


def test_rotated_phone_clip_is_posed_upright_and_written_upright(shared, tmp_path, capsys):
    detector = shared / "models" / "yolox_nano_coco.onnx"
    with av.open(str(shared / "media" / "pose2sim_multiperson_cam01.mp4")) as c:
        portrait = [f.to_ndarray(format="bgr24") for _, f in zip(range(4), c.decode(video=0))]
    h, w = portrait[0].shape[:2]
    assert h > w  # people stand upright in portrait frames
    sideways = [cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE) for img in portrait]
    rotated = _write(tmp_path / "phone.mp4", sideways, rotation=90)  # what a phone held upright records
    plain = _write(tmp_path / "plain.mp4", portrait)
    counts = {}
    for name, src in (("rotated", rotated), ("plain", plain)):
        code, err = _run(capsys, src, "--detector", detector, "--out-json", tmp_path / f"{name}.jsonl",
                         "--out-video", tmp_path / f"{name}-out.mp4")  # fmt: skip
        assert code == 0, err
        records = parse_jsonl(tmp_path / f"{name}.jsonl")
        counts[name] = [len(r["people"]) for r in records]
        boxes = np.array([p["box_xyxy"] for r in records for p in r["people"]])
        assert boxes[:, 2].max() <= w + 1 and boxes[:, 3].max() <= h + 1  # upright pixels
    assert min(counts["plain"]) >= 2 and counts["rotated"] == counts["plain"]
    with av.open(str(tmp_path / "rotated-out.mp4")) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (w, h) and frame.rotation == 0  # upright, no tag needed
    # The detector itself finds fewer people in the sideways pixels: the test can tell the difference.
    from posestream.detection import load_person_detector

    sideways_people = len(load_person_detector(str(detector), score_threshold=0.5).detect(sideways[0]))
    upright_people = len(load_person_detector(str(detector), score_threshold=0.5).detect(portrait[0]))
    assert sideways_people < upright_people


# --------------------------------------------------------------------------- case 13
@pytest.fixture
def http_folder(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_recording_at_an_http_url_without_a_video_suffix_is_read_like_a_file(http_folder, tmp_path, capsys):
    served, base = http_folder
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)]
    encode_frames(served / "recording", frames, 30, fmt="mp4", container_options={"movflags": "+faststart"})
    with open_source(f"{base}/recording?id=3") as reader:
        assert reader.info.live is False
    code, err = _run(capsys, f"{base}/recording?id=3", "--out-json", tmp_path / "k.jsonl")
    assert code == 0, err
    assert [r["frame"] for r in parse_jsonl(tmp_path / "k.jsonl")] == list(range(30))  # every frame


def test_http_stream_without_a_duration_stays_live():
    import time

    from posestream.serve.server import LiveServer

    with LiveServer(port=0) as server:  # a real MJPEG stream over HTTP: it states no duration
        done = threading.Event()

        def publish() -> None:
            i = 0
            while not done.is_set():
                server.publish(np.full((32, 32, 3), i % 255, np.uint8), {})
                i += 1
                time.sleep(0.02)

        threading.Thread(target=publish, daemon=True).start()
        try:
            with open_source(server.url + "stream.mjpg") as reader:
                assert reader.info.live is True and reader.info.frame_count is None
        finally:
            done.set()


# --------------------------------------------------------------------------- case 15
@pytest.mark.parametrize("codec, suffix, copied", [("aac", ".mp4", "aac"), ("pcm_s16le", ".mov", "aac")])
def test_audio_is_carried_into_the_annotated_video(tmp_path, capsys, codec, suffix, copied):
    src = write_noisy_video(tmp_path / f"talk{suffix}", 60, audio=codec)  # 2 s with a tone
    out = tmp_path / "o.mp4"
    code, err = _run(capsys, src, "--out-video", out, "--max-frames", 45)
    assert code == 0, err
    assert len(decode_all(out)) == 45
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.name == copied
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples / 48000 - 1.5) < 0.1  # cut where the video ends (45 frames at 30 fps)


def test_odd_size_is_padded_to_even_and_the_run_says_so(tmp_path, capsys, caplog):
    # x264 cannot encode odd sizes in yuv420p, so the odd source is an MJPEG in Matroska.
    src = encode_frames(tmp_path / "odd.mkv", [np.full((479, 641, 3), 40 * i, np.uint8) for i in range(3)], 10,
                        codec="mjpeg", pix_fmt="yuvj444p")
    code, err = _run(capsys, src, "--out-video", tmp_path / "o.mp4")
    assert code == 0, err
    assert "padded to 642x480" in err and "padded to 642x480" in caplog.text
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (642, 480)
    assert len(decode_all(tmp_path / "o.mp4")) == 3


# --------------------------------------------------------------------------- mixed-size image folders
def test_mixed_size_image_folder_poses_each_image_at_its_size_and_letterboxes_the_video(
    vitpose_s_onnx, tmp_path, capsys, caplog
):
    folder = tmp_path / "photos"
    folder.mkdir()
    sizes = [(64, 48), (100, 40), (30, 90)]
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((h, w, 3), 60 + 40 * i, np.uint8))
    # Photos are independent: no tracking across them (a tracker holds back a new person at first).
    code, err = _run(capsys, folder, "--pose-model", vitpose_s_onnx, "--out-video", tmp_path / "o.mp4",
                     "--out-json", tmp_path / "k.jsonl", "--set", "tracker.enabled=false",
                     "--set", "render.enabled=false")  # fmt: skip
    assert code == 0, err
    assert "letterboxed into 64x48" in err and "letterboxed" in caplog.text
    records = parse_jsonl(tmp_path / "k.jsonl")
    boxes = [r["people"][0]["box_xyxy"] for r in records]  # the whole-frame box: each image's own size
    assert [(round(b[2] - b[0]), round(b[3] - b[1])) for b in boxes] == sizes
    with av.open(str(tmp_path / "o.mp4")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == 3 and frames[1].shape == (48, 64, 3)
    # 100x40 scaled to 64x26 and centred: black bars above and below, the image in the middle
    assert frames[1][:8].mean() < 20 and abs(frames[1][24].mean() - 100) < 15
