"""ViTPose+: parity with transformers for every expert, the official layout's heads, folding, export.

Random weights throughout (no ViTPose+ file can be downloaded here): every tensor of a
``transformers.VitPoseForPoseEstimation(num_experts=6)`` is randomised at O(1) scales, imported,
and both models run each of the six ``dataset_index`` values on its own sample in one batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posestream.errors import ModelFileError
from posestream.export.onnx import export_onnx
from posestream.keypoints import get_keypoint_set
from posestream.models.checkpoint import convert_state_dict, infer_variant
from posestream.models.loading import load_vitpose
from posestream.models.vitpose import VARIANTS, ViTPose, build_vitpose
from posestream.models.vitpose_plus import EXPERTS, fold_expert

from test_models_vitpose import _randomise_  # pytest puts this folder on sys.path

transformers = pytest.importorskip("transformers")

PARITY_ATOL = 1e-4
HEAD_K = {"coco": 17, "aic": 14, "mpii": 16, "ap10k": 17, "apt36k": 17, "wholebody": 133}


def hf_moe(variant: str, seed: int) -> torch.nn.Module:
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    spec = VARIANTS[variant]
    config = VitPoseConfig(
        backbone_config=VitPoseBackboneConfig(
            hidden_size=spec.embed_dim, num_hidden_layers=spec.depth, num_attention_heads=spec.num_heads,
            out_indices=[spec.depth], layer_norm_eps=1e-6, image_size=[256, 192], patch_size=[16, 16],
            qkv_bias=True, num_experts=6, part_features=spec.part_features,
        ),
        num_labels=17, use_simple_decoder=False,
    )  # fmt: skip
    with torch.device("meta"):
        model = VitPoseForPoseEstimation(config)
    model = model.to_empty(device="cpu").eval()
    _randomise_(model, seed)
    return model


@pytest.fixture(scope="module")
def hf_s() -> torch.nn.Module:
    return hf_moe("s", seed=3)


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> tuple[Path, dict[str, ViTPose]]:
    sd, split = official_checkpoint()
    path = tmp_path_factory.mktemp("vitpose_plus") / "vitpose+_small.pth"
    torch.save({"meta": {"epoch": 100}, "state_dict": sd}, path)
    return path, split


@pytest.mark.parametrize("variant", ["s", "b"])
def test_every_expert_matches_transformers(variant: str, hf_s):
    hf = hf_s if variant == "s" else hf_moe(variant, seed=3)
    x = torch.randn(6, 3, 256, 192, generator=torch.Generator().manual_seed(4))
    index = torch.arange(6)
    with torch.no_grad():
        want = hf(x, dataset_index=index).heatmaps  # (6, 17, 64, 48), sample i through expert i
    assert want.abs().max() > 0.1

    info = infer_variant(hf.state_dict())
    assert (info.variant, info.num_experts, info.part_features) == (
        variant,
        6,
        VARIANTS[variant].part_features,
    )
    ours = build_vitpose(variant, num_experts=6).eval()
    ours.load_state_dict(convert_state_dict(hf.state_dict()), strict=True)
    with torch.no_grad():
        got = ours.head(ours.backbone(x, index))
    diff = (got - want).abs().amax(dim=(1, 2, 3))  # per dataset_index
    assert diff.max() < PARITY_ATOL, f"max abs diff per dataset_index: {diff.tolist()}"
    # the expert matters: sample 0 through expert 5 is not sample 0 through expert 0
    with torch.no_grad():
        other = ours.head(ours.backbone(x[:1], torch.tensor([5])))
    assert (other - want[:1]).abs().max() > 1e-2


def randomise(model: torch.nn.Module, seed: int) -> None:
    """``_randomise_`` plus what its name rules miss in our modules: BN scales ~1, experts ~1/sqrt(fan-in)."""
    _randomise_(model, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(1.0 + 0.1 * torch.randn(module.weight.shape, generator=g))
        for name, p in model.named_parameters():
            if name.endswith("expert_weight"):
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


def official_checkpoint(seed: int = 5) -> tuple[dict[str, torch.Tensor], dict[str, ViTPose]]:
    """A random ViTPose+-S in the official layout (six experts, six heads), and per expert the plain
    model the official tools/model_split.py makes of it, built here from that script's rule."""
    torch.manual_seed(seed)
    moe = build_vitpose("s", num_experts=6).eval()
    randomise(moe, seed)
    sd: dict[str, torch.Tensor] = {}
    for key, value in moe.state_dict().items():
        if key.startswith("head."):
            continue
        key = key.replace("backbone.norm.", "backbone.last_norm.")
        if key.endswith("mlp.expert_weight") or key.endswith("mlp.expert_bias"):
            kind = "weight" if key.endswith("weight") else "bias"
            for e in range(6):
                sd[key.rsplit(".", 1)[0] + f".experts.{e}.{kind}"] = value[e].clone()
        else:
            sd[key] = value
    split: dict[str, ViTPose] = {}
    for expert in EXPERTS:
        head = build_vitpose("s", num_keypoints=HEAD_K[expert.name]).head
        randomise(head, seed + 10 + expert.index)
        prefix = expert.official_head
        names = {"deconv1.": "deconv_layers.0.", "bn1.": "deconv_layers.1.", "deconv2.": "deconv_layers.3.",
                 "bn2.": "deconv_layers.4.", "conv.": "final_layer."}  # fmt: skip
        for key, value in head.state_dict().items():
            ours = next(n for n in names if key.startswith(n))
            sd[prefix + names[ours] + key[len(ours) :]] = value
        # model_split.py: fc2 rows + expert rows, the expert's head as the model's head
        plain = build_vitpose("s", num_keypoints=HEAD_K[expert.name]).eval()
        state = {}
        for key, value in plain.state_dict().items():
            if key.startswith("head."):
                state[key] = head.state_dict()[key[len("head.") :]]
            elif key.endswith("mlp.fc2.weight") or key.endswith("mlp.fc2.bias"):
                kind = key.rsplit(".", 1)[1]
                mlp = key[: -len(f"fc2.{kind}")]  # backbone.blocks.{i}.mlp.
                state[key] = torch.cat([sd[mlp + f"fc2.{kind}"], sd[mlp + f"experts.{expert.index}.{kind}"]])
            else:
                state[key] = sd[key.replace("backbone.norm.", "backbone.last_norm.")]
        plain.load_state_dict(state, strict=True)
        split[expert.name] = plain
    return sd, split


def test_official_layout_every_expert_with_its_head_equals_model_split(official):
    path, split = official
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(6))
    for expert in EXPERTS:
        loaded = load_vitpose(str(path), expert=expert.name)
        assert loaded.keypoint_set is get_keypoint_set(expert.keypoint_set) and loaded.expert == expert.name
        with torch.no_grad():
            got, want = loaded.model(x), split[expert.name](x)
        assert got.shape == (1, HEAD_K[expert.name], 64, 48) and want.abs().max() > 0.1
        assert (got - want).abs().max() < PARITY_ATOL, expert.name
    sd = torch.load(path, weights_only=True)["state_dict"]
    assert infer_variant(sd).heads == tuple(e.name for e in EXPERTS)


def test_folded_expert_exports_to_plain_onnx_equal_to_the_moe_model(official, tmp_path: Path):
    from posestream.runtime.factory import open_pose_backend

    path, _ = official
    moe = load_vitpose(str(path), expert="wholebody")
    plain = fold_expert(moe.model)
    assert plain.num_experts == 1 and not any("expert" in k for k in plain.state_dict())
    out = tmp_path / "wholebody.onnx"
    export_onnx(plain, out, random_weights=True, keypoint_set=moe.keypoint_set)
    backend = open_pose_backend(str(out), engine="onnxruntime")
    assert backend.keypoint_set == get_keypoint_set("wholebody")  # the set travels in the metadata
    x = np.random.default_rng(7).standard_normal((2, 3, 256, 192)).astype(np.float32)
    got = backend(x)
    with torch.no_grad():
        want = moe.model(torch.from_numpy(x)).numpy()
    assert got.shape == (2, 133, 64, 48) and np.abs(want).max() > 0.1
    assert np.abs(got - want).max() < PARITY_ATOL


def test_transformers_wholebody_index_runs_the_coco_head_unlike_the_official_split(hf_s, tmp_path: Path):
    """transformers#39789: dataset_index=5 decodes the whole-body expert with the COCO head."""
    hf = hf_s
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        hf_wholebody = hf(x, dataset_index=torch.tensor([5])).heatmaps
    assert hf_wholebody.shape[1] == 17  # COCO's channels: no whole-body head exists in that layout
    ours = build_vitpose("s", num_experts=6).eval()
    ours.load_state_dict(convert_state_dict(hf.state_dict()), strict=True)
    ours.select_expert(5)
    with torch.no_grad():
        assert (ours(x) - hf_wholebody).abs().max() < PARITY_ATOL  # same computation: expert 5 + COCO head
    folder = tmp_path / "hf"
    hf.save_pretrained(folder)
    with pytest.raises(ModelFileError, match="holds only the COCO head.*#39789"):
        load_vitpose(str(folder), expert="wholebody")
    assert load_vitpose(str(folder)).keypoint_set.name == "coco"  # its own (COCO) expert and head load
