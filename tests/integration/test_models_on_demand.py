"""Models on demand: known names fetched once into the cache, checked, exported once, reused.

The files are made here (random ViTPose-S weights saved as a checkpoint; the shared YOLOX-Nano) and
their sizes and hashes registered in the tables for the test: no network is needed, and none is used.
"""

import dataclasses
import functools
import hashlib
import http.server
import json
import shutil
import threading
import time

import pytest

from posestream import cli
from posestream.models import catalog, weights

YOLOX_SHA = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"  # DATA.md


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("POSESTREAM_CACHE", str(path))
    return path


def _register_detector(monkeypatch, shared, url="http://127.0.0.1:9/yolox_nano.onnx"):
    src = shared / "models" / "yolox_nano_coco.onnx"
    entry = dataclasses.replace(catalog.KNOWN_DETECTORS["yolox-nano"], url=url, size_bytes=src.stat().st_size,
                                sha256=YOLOX_SHA)  # fmt: skip
    monkeypatch.setitem(catalog.KNOWN_DETECTORS, "yolox-nano", entry)
    return src, entry


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    import torch

    from posestream.models.vitpose import build_vitpose

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "vitpose-s-coco.pth"
    torch.save(build_vitpose("s").state_dict(), path)
    return path


def test_offline_without_the_files_fails_at_once_with_the_download_hint(shared, cache, make_video, capsys,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip = make_video(n=3)
    cli.main(["run", str(clip), "--out-json", str(cache.parent / "warm.jsonl"), "--pose-model", "none", "-q"])
    capsys.readouterr()  # (imports warmed up: what is timed next is the model lookup)
    t0 = time.monotonic()
    code = cli.main(["run", str(clip), "--out-json", str(cache.parent / "o.jsonl"), "-q"])
    took = time.monotonic() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    entry = weights.KNOWN_WEIGHTS["vitpose-s-coco.pth"]
    assert entry.url in err and str(cache / entry.filename) in err and "Traceback" not in err
    assert took < 5.0 and not (cache.parent / "o.jsonl").exists()
    # the detector the same way (the pose model named explicitly as none)
    code = cli.main(["run", str(clip), "--out-json", str(cache.parent / "o.jsonl"), "--detector", "yolox-nano"])
    err = capsys.readouterr().err.strip()
    known = catalog.KNOWN_DETECTORS["yolox-nano"]
    assert code == 2 and known.url in err and str(cache / "detectors" / "yolox_nano.onnx") in err


def test_no_model_flags_use_the_cached_defaults_and_the_export_is_reused(shared, cache, make_video, capsys,
                                                                          monkeypatch, random_checkpoint):  # fmt: skip
    entry = weights.KNOWN_WEIGHTS["vitpose-s-coco.pth"]
    (cache / entry.filename).parent.mkdir(parents=True)
    shutil.copy(random_checkpoint, cache / entry.filename)
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "vitpose-s-coco.pth", dataclasses.replace(
        entry, size_bytes=random_checkpoint.stat().st_size, sha256=_sha(random_checkpoint)))  # fmt: skip
    src, _ = _register_detector(monkeypatch, shared)
    (cache / "detectors").mkdir()
    shutil.copy(src, cache / "detectors" / "yolox_nano.onnx")
    from posestream.export import onnx as export_module

    exports = []
    real_export = export_module.export_onnx
    monkeypatch.setattr(export_module, "export_onnx", lambda *a, **k: exports.append(a[1]) or real_export(*a, **k))
    clip = shared / "media" / "pose2sim_multiperson_cam01.mp4"
    for run in (1, 2):
        out = cache.parent / f"run{run}.jsonl"
        assert cli.main(["run", str(clip), "--max-frames", "2", "--out-json", str(out), "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert "no model named: using vitpose-s-coco (pose) and yolox-nano (person detector)" in err
        people = [p for line in out.read_text().splitlines() for p in json.loads(line)["people"]]
        assert people and all(len(p["keypoints"]) == 17 and p["box_score"] > 0 for p in people)
        assert len(exports) == 1  # exported by the first run only; the second opened the cached file
    assert exports[0] == catalog.exported_path("vitpose-s-coco") and exports[0].is_file()
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vitpose-s-coco*" in out and "vitpose-s-coco.pth" in out and exports[0].name in out
    assert "yolox_nano.onnx 3.7 MB" in out


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Files, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_pull_downloads_a_detector_once_checks_it_and_refuses_a_different_file(shared, cache, http_root, capsys,
                                                                               monkeypatch):  # fmt: skip
    root, base = http_root
    shutil.copy(shared / "models" / "yolox_nano_coco.onnx", root / "yolox_nano.onnx")
    (root / "short.onnx").write_bytes((root / "yolox_nano.onnx").read_bytes()[:1000])
    _register_detector(monkeypatch, shared, url=f"{base}/short.onnx")
    assert cli.main(["models", "pull", "yolox-nano"]) == 2
    err = capsys.readouterr().err
    assert "sent 1,000 bytes" in err and "nothing was kept" in err
    assert not any((cache / "detectors").iterdir())  # no partial file under any name
    _register_detector(monkeypatch, shared, url=f"{base}/yolox_nano.onnx")
    assert cli.main(["models", "pull", "yolox-nano"]) == 0
    target = cache / "detectors" / "yolox_nano.onnx"
    assert _sha(target) == YOLOX_SHA and str(target) in capsys.readouterr().out
    (root / "yolox_nano.onnx").unlink()  # a second pull must not need the server
    assert cli.main(["models", "pull", "yolox-nano"]) == 0
    target.write_bytes(target.read_bytes()[:-1])  # damaged in the cache: never loaded
    assert cli.main(["models", "pull", "yolox-nano"]) == 2
    assert "3,660,091 bytes, expected 3,660,092" in capsys.readouterr().err
