"""The tracker's frame rate comes from the source: a 10 fps clip keeps ids like the 60 fps original."""

from fractions import Fraction

import av
import pytest

from posestream import cli


def _retime(src, dst, fps, *, step=1, blank=(), half=True, frames=None):
    """Every ``step``-th frame of ``src`` (the first ``frames`` of them) re-encoded at ``fps`` (pts = n / fps);
    frames in ``blank`` black."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = inp.streams.video[0]
        o = out.add_stream("libx264", rate=Fraction(fps))
        scale = 2 if half else 1
        o.width, o.height, o.pix_fmt = s.codec_context.width // scale, s.codec_context.height // scale, "yuv420p"
        o.options = {"preset": "ultrafast", "bf": "0"}
        n = 0
        for i, frame in enumerate(inp.decode(s)):
            if i % step:
                continue
            if frames is not None and n == frames:
                break
            img = frame.to_ndarray(format="bgr24", width=o.width, height=o.height)
            if n in blank:
                img[:] = 0
            new = av.VideoFrame.from_ndarray(img, format="bgr24")
            new.pts, new.time_base = n, Fraction(1, fps)
            n += 1
            for packet in o.encode(new):
                out.mux(packet)
        for packet in o.encode(None):
            out.mux(packet)
    return dst


def _distinct_ids(shared, clip, tmp_path, *extra):
    import json

    out = tmp_path / f"{clip.stem}-{len(extra)}.jsonl"
    code = cli.main(["run", str(clip), "--detector", str(shared / "models" / "yolox_nano_coco.onnx"),
                     "--out-json", str(out), "--no-progress", "-q", *extra])  # fmt: skip
    assert code == 0
    return len({p["track_id"] for line in out.read_text().splitlines() for p in json.loads(line)["people"]})


@pytest.fixture(scope="module")
def original_ids(shared, tmp_path_factory):
    return _distinct_ids(shared, shared / "media" / "pose2sim_multiperson_cam01.mp4", tmp_path_factory.mktemp("o"))


def test_10fps_resample_keeps_the_ids_of_the_60fps_original(shared, tmp_path, original_ids):
    src = shared / "media" / "pose2sim_multiperson_cam01.mp4"
    every_sixth = _retime(src, tmp_path / "10fps.mp4", 10, step=6)
    ids = _distinct_ids(shared, every_sixth, tmp_path)
    print(f"distinct ids: 60 fps original {original_ids}, every 6th frame at 10 fps {ids}")
    assert original_ids >= 2 and abs(ids - original_ids) <= 1


def test_lost_buffer_counts_frames_of_the_source_not_of_30_fps(shared, tmp_path, original_ids):
    # The clip's first 60 frames played at 10 fps with a 2 s blackout in the middle: lost_track_buffer
    # (30 frames) is 3 s of this source, so everyone keeps their id; at the old fixed 30 fps it was 1 s.
    src = shared / "media" / "pose2sim_multiperson_cam01.mp4"
    gap = _retime(src, tmp_path / "gap10.mp4", 10, blank=range(20, 40), frames=60)
    from_source = _distinct_ids(shared, gap, tmp_path)
    fixed_30 = _distinct_ids(shared, gap, tmp_path, "--set", "tracker.frame_rate=30")
    print(f"distinct ids: original {original_ids}, 10 fps with a 2 s gap {from_source}, same at a fixed 30 fps "
          f"{fixed_30}")
    assert abs(from_source - original_ids) <= 1
    assert fixed_30 > original_ids + 1  # the test can tell the two apart
