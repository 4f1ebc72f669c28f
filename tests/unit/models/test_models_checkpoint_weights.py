"""Weights resolution: explicit paths, 'none', known names from the cache, offline failures."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from posestream.errors import ModelFileError
from posestream.models import weights as weights_mod
from posestream.models.checkpoint import sha256_of_file
from posestream.models.weights import (
    KNOWN_WEIGHTS,
    RANDOM_WEIGHTS_WARNING,
    default_cache_dir,
    known_weights,
    resolve_weights,
)


def test_table_matches_the_official_files():
    s = known_weights("vitpose-s-coco")
    assert s is not None and s is KNOWN_WEIGHTS["vitpose-s-coco.pth"]
    assert (s.variant, s.size_bytes, s.repo_id, s.filename) == (
        "s", 97_217_406, "JunkyByte/easy_ViTPose", "torch/coco/vitpose-s-coco.pth"
    )
    assert s.sha256 == "d5399f0e60a74fe8b48e8a3692dd7311aa307b552cd2412a90452308d7372c66"
    assert known_weights("vitpose-b-coco.onnx").sha256.startswith("532bc22c")
    for entry in KNOWN_WEIGHTS.values():
        if entry.repo_id == "JunkyByte/easy_ViTPose":
            assert len(entry.revision) == 40 and int(entry.revision, 16) >= 0  # a pinned commit, not "main"
        if entry.verify == "sha256":
            assert len(entry.sha256) == 64 and entry.size_bytes > 0


def test_none_means_random_and_warns(caplog):
    with caplog.at_level("WARNING"):
        assert resolve_weights("none", "s") is None
    assert "RANDOM WEIGHTS" in RANDOM_WEIGHTS_WARNING and RANDOM_WEIGHTS_WARNING in caplog.text


def test_explicit_path(tmp_path: Path):
    path = tmp_path / "mine.pth"
    path.write_bytes(b"x")
    assert resolve_weights(str(path), "b") == path
    with pytest.raises(ModelFileError, match=r"--weights .*nope\.pth: no such file, and not a known name"):
        resolve_weights(str(tmp_path / "nope.pth"), "s")


def test_known_name_of_another_variant_is_refused(tmp_path: Path):
    with pytest.raises(ModelFileError, match=r"ViTPose-S weights but the model is ViTPose-B"):
        resolve_weights("vitpose-s-coco", "b", cache_dir=tmp_path)


def test_offline_with_empty_cache_fails_at_once_with_hint(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ModelFileError) as err:
        resolve_weights("vitpose-s-coco", "s", cache_dir=tmp_path)
    assert time.monotonic() - t0 < 2.0
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message
    assert "https://huggingface.co/JunkyByte/easy_ViTPose/resolve/" in message
    assert str(tmp_path / "torch" / "coco" / "vitpose-s-coco.pth") in message


def test_cached_file_is_verified(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a cache hit must never touch the network
    payload = b"pretend checkpoint bytes"
    target = tmp_path / "torch" / "coco" / "vitpose-s-coco.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(payload)
    # The real entry's size and hash do not match these bytes: a corrupt/partial download.
    with pytest.raises(ModelFileError, match=r"24 bytes, expected 97,217,406 .*delete it and download"):
        resolve_weights("vitpose-s-coco", "s", cache_dir=tmp_path)
    # An entry whose size and hash are those of the bytes: accepted, streamed through sha256.
    real = KNOWN_WEIGHTS["vitpose-s-coco.pth"]
    fake = replace(real, size_bytes=len(payload), sha256=sha256_of_file(target))
    monkeypatch.setitem(weights_mod.KNOWN_WEIGHTS, "vitpose-s-coco.pth", fake)
    assert resolve_weights("vitpose-s-coco", "s", cache_dir=tmp_path) == target
    target.write_bytes(payload.upper())  # same size, other content
    with pytest.raises(ModelFileError, match="sha256 .* does not match"):
        resolve_weights("vitpose-s-coco", "s", cache_dir=tmp_path)


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("POSESTREAM_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("POSESTREAM_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "posestream"
