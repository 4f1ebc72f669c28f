"""The known-weights table, downloads through huggingface_hub from a real HTTP server on 127.0.0.1
that answers like the Hub (resolve URLs with commit, ETag and LFS size/sha256 headers), Hub ids and
local transformers folders, and weights of the wrong keypoint set.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from posestream.errors import ModelFileError
from posestream.keypoints import get_keypoint_set
from posestream.models.known_weights import EASY_VITPOSE_SETS, KNOWN_WEIGHTS, known_weight_names
from posestream.models.loading import load_vitpose
from posestream.models.vitpose import build_vitpose
from posestream.models.weights import resolve_weights

COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    """``/{repo}/resolve/{revision}/{path}`` for HEAD and GET, as huggingface_hub expects them."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}  # (repo_id, path) -> bytes served
        self.claimed_sha: dict[tuple[str, str], str] = {}  # what the metadata says, if not the truth
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].strip("/").split("/")
                key = (
                    ("/".join(parts[:2]), "/".join(parts[4:]))
                    if len(parts) > 4 and parts[2] == "resolve"
                    else None
                )
                data = hub.files.get(key) if key else None
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sha = hub.claimed_sha.get(key, hashlib.sha256(data).hexdigest())
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
                self._answer(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    server = FakeHub()
    yield server
    server.close()


def test_table_covers_every_set_and_size_as_pth_and_onnx():
    easy = [k for k in KNOWN_WEIGHTS.values() if k.repo_id == "JunkyByte/easy_ViTPose"]
    assert len(easy) == len(EASY_VITPOSE_SETS) * 4 * 2 == 56
    for entry in easy:
        ext = "pth" if entry.kind == "torch" else "onnx"
        folder = "torch" if entry.kind == "torch" else "onnx"
        assert (
            entry.filename
            == f"{folder}/{entry.keypoint_set}/vitpose-{entry.variant}-{entry.keypoint_set}.{ext}"
        )
        get_keypoint_set(entry.keypoint_set)  # every set is registered
        assert (entry.verify == "sha256") == (entry.keypoint_set == "coco" and entry.variant in "sb")
    assert sum(k.verify == "sha256" for k in KNOWN_WEIGHTS.values()) == 4
    assert (
        "vitpose-l-wholebody.onnx" in known_weight_names()
        and "usyd-community/vitpose-plus-base" in known_weight_names()
    )


def test_hub_lfs_entry_downloads_verifies_records_and_is_cached(hub, tmp_path: Path):
    payload = b"pretend ViTPose-S AP-10K checkpoint bytes" * 100
    hub.files[("JunkyByte/easy_ViTPose", "torch/ap10k/vitpose-s-ap10k.pth")] = payload
    path = resolve_weights("vitpose-s-ap10k", "s", cache_dir=tmp_path, endpoint=hub.endpoint)
    assert path == tmp_path / "torch" / "ap10k" / "vitpose-s-ap10k.pth" and path.read_bytes() == payload
    record = path.with_name(path.name + ".sha256").read_text().split()
    assert record == [hashlib.sha256(payload).hexdigest(), str(len(payload))]
    assert any(f"/resolve/{KNOWN_WEIGHTS['vitpose-s-ap10k.pth'].revision}/" in r for r in hub.requests)

    seen = len(hub.requests)
    assert resolve_weights("vitpose-s-ap10k", "s", cache_dir=tmp_path, endpoint=hub.endpoint) == path
    assert len(hub.requests) == seen  # a cache hit asks nobody
    path.write_bytes(payload.upper())  # same size, other bytes
    with pytest.raises(ModelFileError, match="sha256 .* does not match vitpose-s-ap10k.pth's"):
        resolve_weights("vitpose-s-ap10k", "s", cache_dir=tmp_path, endpoint=hub.endpoint)


def test_bytes_that_are_not_what_the_hub_says_are_refused(hub, tmp_path: Path):
    key = ("JunkyByte/easy_ViTPose", "torch/mpii/vitpose-b-mpii.pth")
    hub.files[key] = b"x" * 1000
    hub.claimed_sha[key] = hashlib.sha256(b"y" * 1000).hexdigest()
    with pytest.raises(ModelFileError, match="does not match the Hub's LFS hash"):
        resolve_weights("vitpose-b-mpii", "b", cache_dir=tmp_path, endpoint=hub.endpoint)


def test_offline_hub_id_fails_at_once(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelFileError, match="usyd-community/vitpose-base-simple: not in the cache and HF_HUB_OFFLINE"
    ):
        resolve_weights("usyd-community/vitpose-base-simple", None, cache_dir=tmp_path)


def hf_vitpose_s(folder: Path) -> torch.nn.Module:
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    torch.manual_seed(0)
    config = VitPoseConfig(
        backbone_config=VitPoseBackboneConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                                              out_indices=[12], image_size=[256, 192], patch_size=[16, 16]),
        num_labels=17, use_simple_decoder=True,
    )  # fmt: skip
    model = VitPoseForPoseEstimation(config).eval()
    model.save_pretrained(folder)
    return model


def test_hub_id_and_local_transformers_folder_load_strictly(hub, tmp_path: Path):
    pytest.importorskip("transformers")
    folder = tmp_path / "local"
    hf = hf_vitpose_s(folder)
    for path in folder.iterdir():
        if path.is_file():
            hub.files[("acme/vitpose-small-simple", path.name)] = path.read_bytes()
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = hf(x).heatmaps

    local = load_vitpose(str(folder))  # a local folder: config.json + model.safetensors
    cache = tmp_path / "cache"
    hub_id = load_vitpose("acme/vitpose-small-simple", cache_dir=cache, endpoint=hub.endpoint)
    assert (cache / "hub" / "acme--vitpose-small-simple" / "model.safetensors").is_file()
    for loaded in (local, hub_id):
        assert (loaded.variant, loaded.decoder, loaded.keypoint_set.name) == ("s", "simple", "coco")
        with torch.no_grad():
            assert (loaded.model(x) - want).abs().max() < 1e-4
    with pytest.raises(ModelFileError, match="is ViTPose-S weights but the model is ViTPose-B"):
        load_vitpose(str(folder), variant="b")


def test_wrong_set_weights_name_both_sets(tmp_path: Path):
    wholebody = build_vitpose("s", num_keypoints=133)
    path = tmp_path / "wb.pth"
    torch.save(wholebody.state_dict(), path)
    coco = get_keypoint_set("coco")
    with pytest.raises(
        ModelFileError, match=r"keypoint set wholebody \(133 keypoints\).*coco \(17 keypoints\)"
    ):
        load_vitpose(str(path), variant="s", keypoint_set=coco)
    # a known name says its set before anything is downloaded (the cache is empty, offline or not)
    with pytest.raises(ModelFileError, match=r"keypoint set ap10k \(17 keypoints\).*coco \(17 keypoints\)"):
        load_vitpose("vitpose-s-ap10k", variant="s", keypoint_set=coco, cache_dir=tmp_path / "empty")
    assert load_vitpose(str(path), variant="s").keypoint_set.name == "wholebody"
