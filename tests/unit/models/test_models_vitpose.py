"""ViTPose architecture: shapes, builders, and parity with transformers' independent implementation.

Parity: a ``transformers.VitPoseForPoseEstimation`` with random weights (every tensor randomised,
BatchNorm running statistics included) is (a) converted from its own key layout by our importer
and (b) rewritten by this file's own helper into the mmpose 0.x layout of the released
``vitpose-*-coco.pth`` files (written to disk as an mmpose checkpoint and loaded by path). Both must
reproduce its heatmaps to 1e-4 ((b) by loading tensors identical to (a)'s).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from posestream.models.checkpoint import convert_state_dict, infer_variant, load_weights
from posestream.models.vitpose import VARIANTS, ViTPose, build_vitpose

transformers = pytest.importorskip("transformers")

PARITY_ATOL = 1e-4


def test_forward_shape_and_attributes():
    model = build_vitpose("small", decoder="simple", num_keypoints=5).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 192))
    assert out.shape == (2, 5, 64, 48)
    assert (model.variant, model.decoder_kind, model.num_keypoints) == ("s", "simple", 5)


@pytest.mark.parametrize("variant", ["s", "b", "l", "h"])
def test_builder_sizes(variant):
    with torch.device("meta"):  # no memory, no init time: only the shapes
        model = build_vitpose(variant)
    spec = VARIANTS[variant]
    assert model.backbone.patch_embed.proj.weight.shape == (spec.embed_dim, 3, 16, 16)
    assert model.backbone.patch_embed.proj.padding == (2, 2)
    assert len(model.backbone.blocks) == spec.depth
    assert model.backbone.blocks[0].attn.num_heads == spec.num_heads
    assert model.backbone.pos_embed.shape == (1, 1 + 16 * 12, spec.embed_dim)


def test_parameter_count_matches_released_file_size():
    # vitpose-s-coco.pth is 97,217,406 bytes of float32 (../shared/DATA.md): ~24.3 M numbers.
    with torch.device("meta"):
        model = build_vitpose("s")
    n = sum(t.numel() for t in model.state_dict().values() if t.dtype.is_floating_point)
    assert abs(n * 4 - 97_217_406) < 200_000


def test_unknown_variant_and_decoder_raise():
    with pytest.raises(ValueError, match="unknown ViTPose variant 'xl'"):
        build_vitpose("xl")
    with pytest.raises(ValueError, match="decoder"):
        ViTPose(embed_dim=64, depth=1, num_heads=2, decoder="fancy")


# ------------------------------------------------------------------------------ transformers parity


def _hf_model(variant: str, simple: bool, seed: int) -> torch.nn.Module:
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    spec = VARIANTS[variant]
    config = VitPoseConfig(
        backbone_config=VitPoseBackboneConfig(
            hidden_size=spec.embed_dim,
            num_hidden_layers=spec.depth,
            num_attention_heads=spec.num_heads,
            out_indices=[spec.depth],
            layer_norm_eps=1e-6,
            image_size=[256, 192],
            patch_size=[16, 16],
            qkv_bias=True,
        ),
        num_labels=17,
        use_simple_decoder=simple,
    )
    with torch.device("meta"):  # skip transformers' own init: every tensor is overwritten below
        model = VitPoseForPoseEstimation(config)
    model = model.to_empty(device="cpu").eval()
    _randomise_(model, seed)
    return model


def _randomise_(model: torch.nn.Module, seed: int) -> None:
    """Every parameter and BN statistic random, at scales that keep activations O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "position_embeddings" in name:
                p.copy_(0.5 * noise)
            elif p.ndim == 1:  # norm scales around 1, biases around 0
                p.copy_((1.0 if name.endswith("weight") and "norm" in name else 0.0) + 0.1 * noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            else:  # num_batches_tracked
                b.zero_()


_HF_TO_MMPOSE_HEAD = {
    "head.deconv1.": "keypoint_head.deconv_layers.0.",
    "head.batchnorm1.": "keypoint_head.deconv_layers.1.",
    "head.deconv2.": "keypoint_head.deconv_layers.3.",
    "head.batchnorm2.": "keypoint_head.deconv_layers.4.",
    "head.conv.": "keypoint_head.final_layer.",
}
_HF_TO_MMPOSE_BLOCK = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


_HF_QKV = re.compile(r"backbone\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(\w+)$")


def _mmpose_from_hf(hf_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers layout -> mmpose 0.x layout, written from the two projects' module names alone."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in hf_sd.items():
        if key == "backbone.embeddings.position_embeddings":
            out["backbone.pos_embed"] = value
        elif key.startswith("backbone.embeddings.patch_embeddings.projection."):
            out["backbone.patch_embed.proj." + key.split(".")[-1]] = value
        elif key.startswith("backbone.layernorm."):
            out["backbone.last_norm." + key.split(".")[-1]] = value
        elif m := _HF_QKV.match(key):
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
        elif m := re.match(r"backbone\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", key):
            out[f"backbone.blocks.{m.group(1)}.{_HF_TO_MMPOSE_BLOCK[m.group(2)]}.{m.group(3)}"] = value
        else:
            prefix = next(p for p in _HF_TO_MMPOSE_HEAD if key.startswith(p))
            out[_HF_TO_MMPOSE_HEAD[prefix] + key[len(prefix) :]] = value
    for (layer, kind), parts in qkv.items():
        fused = torch.cat([parts["query"], parts["key"], parts["value"]])
        out[f"backbone.blocks.{layer}.attn.qkv.{kind}"] = fused
    return out


@pytest.mark.parametrize("variant", ["s", "b"])
@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_parity_with_transformers(variant: str, decoder: str, tmp_path: Path):
    torch.manual_seed(0)
    hf = _hf_model(variant, simple=decoder == "simple", seed=1)
    hf_sd = hf.state_dict()
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = hf(x).heatmaps
    assert want.shape == (1, 17, 64, 48) and want.abs().max() > 0.1  # not trivially small

    info = infer_variant(hf_sd)
    assert (info.variant, info.decoder, info.num_keypoints) == (variant, decoder, 17)

    # (a) transformers layout, converted in memory
    ours = build_vitpose(variant, decoder=decoder).eval()
    ours.load_state_dict(convert_state_dict(hf_sd), strict=True)
    with torch.no_grad():
        diff_hf = (ours(x) - want).abs().max().item()
    assert diff_hf < PARITY_ATOL, f"transformers layout: max abs diff {diff_hf:.3g}"

    # (b) mmpose layout, as an mmpose checkpoint file on disk (S only: B's file would be 360 MB). The
    # loaded tensors must equal (a)'s exactly, so (a)'s forward parity covers this model too.
    mmpose_sd = _mmpose_from_hf(hf_sd)
    assert "backbone.last_norm.weight" in mmpose_sd and not any(k.startswith("head.") for k in mmpose_sd)
    other = build_vitpose(variant, decoder=decoder).eval()
    if variant == "s":
        path = tmp_path / "vitpose-s-mmpose.pth"
        torch.save({"meta": {"epoch": 210}, "state_dict": mmpose_sd}, path)
        load_weights(other, path)
    else:
        other.load_state_dict(convert_state_dict(mmpose_sd), strict=True)
    got, ref = other.state_dict(), ours.state_dict()
    assert got.keys() == ref.keys()
    unequal = [k for k in ref if not torch.equal(got[k], ref[k]) and not k.endswith("num_batches_tracked")]
    assert not unequal, f"mmpose layout loads differently from transformers layout: {unequal[:5]}"
