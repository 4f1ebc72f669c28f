"""Checkpoint files: strict loading, and clear ModelFileErrors for files that do not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from posestream.errors import InputError, ModelFileError
from posestream.models.checkpoint import (
    convert_state_dict,
    infer_variant,
    load_weights,
    read_state_dict,
    sha256_of_file,
)
from posestream.models.vitpose import ViTPose, build_vitpose


@pytest.fixture(scope="module")
def s_checkpoint(tmp_path_factory) -> Path:
    """A ViTPose-S state dict in the mmpose layout of the released files (last_norm, keypoint_head)."""
    torch.manual_seed(0)
    sd = build_vitpose("s").state_dict()
    renames = {
        "backbone.norm.": "backbone.last_norm.",
        "head.deconv1.": "keypoint_head.deconv_layers.0.",
        "head.bn1.": "keypoint_head.deconv_layers.1.",
        "head.deconv2.": "keypoint_head.deconv_layers.3.",
        "head.bn2.": "keypoint_head.deconv_layers.4.",
        "head.conv.": "keypoint_head.final_layer.",
    }
    mmpose = {}
    for key, value in sd.items():
        prefix = next((p for p in renames if key.startswith(p)), None)
        mmpose[renames[prefix] + key[len(prefix) :] if prefix else key] = value
    path = tmp_path_factory.mktemp("ckpt") / "vitpose-s-coco.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": mmpose}, path)
    return path


def test_loads_mmpose_file_and_reports_what_it_holds(s_checkpoint: Path):
    model = build_vitpose("s")
    info = load_weights(model, s_checkpoint, expected_sha256=sha256_of_file(s_checkpoint))
    assert (info.variant, info.decoder, info.num_keypoints) == ("s", "classic", 17)
    assert (info.embed_dim, info.depth) == (384, 12)
    raw = read_state_dict(s_checkpoint)
    assert torch.equal(model.backbone.norm.weight, raw["backbone.last_norm.weight"])
    assert torch.equal(model.head.bn2.running_var, raw["keypoint_head.deconv_layers.4.running_var"])


def test_small_file_into_base_model_names_both_variants(s_checkpoint: Path):
    with pytest.raises(ModelFileError) as err:
        load_weights(build_vitpose("b"), s_checkpoint)
    message = str(err.value)
    assert str(s_checkpoint) in message
    assert "tensor backbone.pos_embed has shape (1, 193, 384), the model expects (1, 193, 768)" in message
    assert "looks like ViTPose-S (embed_dim 384, depth 12)" in message
    assert "the model is ViTPose-B (embed_dim 768, depth 12)" in message
    assert isinstance(err.value, InputError)  # exit code 2 in the CLI


def test_wrong_decoder_lists_missing_and_unexpected_keys(s_checkpoint: Path):
    with pytest.raises(ModelFileError, match=r"missing .*head\.conv|unexpected .*head\.bn1") as err:
        load_weights(build_vitpose("s", decoder="simple"), s_checkpoint)
    assert "unexpected" in str(err.value) and "classic decoder" in str(err.value)


def test_truncated_file(s_checkpoint: Path, tmp_path: Path):
    path = tmp_path / "truncated.pth"
    data = s_checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match=r"truncated\.pth: cannot be read as a PyTorch checkpoint"):
        load_weights(build_vitpose("s"), path)


def test_text_file(tmp_path: Path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(ModelFileError, match=r"notes\.pth: cannot be read as a PyTorch checkpoint"):
        load_weights(build_vitpose("s"), path)


def test_missing_file_and_onnx_file(tmp_path: Path):
    with pytest.raises(ModelFileError, match=r"absent\.pth: does not exist"):
        load_weights(build_vitpose("s"), tmp_path / "absent.pth")
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"\x08\x07")
    with pytest.raises(ModelFileError, match=r"model\.onnx: is an ONNX model"):
        read_state_dict(onnx_path)


def test_sha256_mismatch(s_checkpoint: Path):
    with pytest.raises(ModelFileError, match=r"sha256 [0-9a-f]{64} does not match the expected 0000"):
        load_weights(build_vitpose("s"), s_checkpoint, expected_sha256="0" * 64)


def test_pickled_objects_are_refused(tmp_path: Path):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled module, not a state dict
    with pytest.raises(ModelFileError, match=r"whole_model\.pth: holds pickled Python objects"):
        read_state_dict(path)


def test_safetensors_roundtrip_and_truncation(tmp_path: Path):
    from safetensors.torch import save_file

    model = ViTPose(embed_dim=32, depth=2, num_heads=2, decoder="simple", num_keypoints=3)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    other = ViTPose(embed_dim=32, depth=2, num_heads=2, decoder="simple", num_keypoints=3)
    info = load_weights(other, path)
    assert (info.variant, info.embed_dim, info.depth) == (None, 32, 2)
    assert (info.decoder, info.num_keypoints) == ("simple", 3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"tiny\.safetensors: not a valid safetensors file"):
        load_weights(other, path)


def test_experts_are_stacked_unless_fc2_already_holds_one():
    proj = torch.zeros(8, 3, 16, 16)  # embed_dim 8
    experts = {f"backbone.blocks.0.mlp.experts.{e}.weight": torch.full((2, 32), float(e)) for e in range(3)}
    moe = convert_state_dict({"backbone.patch_embed.proj.weight": proj,
                              "backbone.blocks.0.mlp.fc2.weight": torch.zeros(6, 32), **experts})  # fmt: skip
    assert moe["backbone.blocks.0.mlp.expert_weight"].shape == (3, 2, 32)
    assert moe["backbone.blocks.0.mlp.expert_weight"][2].eq(2).all()
    # tools/model_split.py output: fc2 folded to 8 rows, the experts left behind: they are dropped
    split = convert_state_dict({"backbone.patch_embed.proj.weight": proj,
                                "backbone.blocks.0.mlp.fc2.weight": torch.zeros(8, 32), **experts})  # fmt: skip
    assert not any("expert" in k for k in split)
    with pytest.raises(ModelFileError, match=r"block 0 has experts \[0, 2\]"):
        convert_state_dict({"backbone.patch_embed.proj.weight": proj, "backbone.blocks.0.mlp.fc2.weight":
                            torch.zeros(6, 32), **{k: v for k, v in experts.items() if ".1." not in k}})  # fmt: skip


def test_infer_variant_of_a_non_vitpose_state_dict():
    with pytest.raises(ModelFileError, match="no ViTPose patch embedding"):
        infer_variant({"conv1.weight": torch.zeros(4, 3, 3, 3)})
