"""ViTPose+ experts: which dataset each one serves, and folding one into a plain ViTPose.

The official ViTPose+ checkpoints (``vitpose+_{small,base,large,huge}.pth``, trained with
``configs/body/.../vitPose+_*_coco+aic+mpii+ap10k+apt36k+wholebody_256x192_udp.py``) hold six experts
per block and six heads: ``keypoint_head`` for COCO and ``associate_keypoint_heads.{0..4}`` for
AIC, MPII, AP-10K, APT-36K and COCO-WholeBody, in that order. The expert index is the
``dataset_idx`` of the official code and the ``dataset_index`` of transformers.

Folding (the official ``tools/model_split.py``): expert ``e``'s rows are appended to fc2's, so
``fc2'(h) = [fc2(h) | expert_e(h)]`` exactly, and the result with expert ``e``'s head is a plain
ViTPose that every backend and the ONNX exporter run unchanged.

Note on the whole-body expert. At test time the official ``TopDownMoE`` decodes every expert with
``keypoint_head`` (COCO's 17 channels); a 133-keypoint model exists only after the split, which
pairs expert 5 with ``associate_keypoint_heads.4``. transformers' ViTPose+ checkpoints carry only
the COCO head, so ``dataset_index=5`` there runs the whole-body expert into the COCO head (their
issue #39789). ``expert='wholebody'`` here follows ``model_split.py``: expert 5 with the whole-body
head, 133 keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posestream.models.vitpose import MoEMlp, ViTPose

__all__ = ["Expert", "EXPERTS", "expert_named", "fold_expert"]


@dataclass(frozen=True, slots=True)
class Expert:
    """One ViTPose+ expert: its dataset index, keypoint set and head in the official checkpoint."""

    name: str
    index: int
    keypoint_set: str  # registry name (posestream.keypoints)
    official_head: str  # key prefix of its head in the official checkpoint


EXPERTS: tuple[Expert, ...] = (
    Expert("coco", 0, "coco", "keypoint_head."),
    Expert("aic", 1, "aic", "associate_keypoint_heads.0."),
    Expert("mpii", 2, "mpii", "associate_keypoint_heads.1."),
    Expert("ap10k", 3, "ap10k", "associate_keypoint_heads.2."),
    Expert("apt36k", 4, "apt36k", "associate_keypoint_heads.3."),
    Expert("wholebody", 5, "wholebody", "associate_keypoint_heads.4."),
)


def expert_named(name: str | int) -> Expert:
    """The expert called ``name`` ('wholebody') or with that index; ValueError listing the names."""
    for expert in EXPERTS:
        if str(name).strip().lower() in (expert.name, str(expert.index)):
            return expert
    raise ValueError(
        f"unknown ViTPose+ expert {name!r}: expected one of {', '.join(e.name for e in EXPERTS)}"
    )


@torch.no_grad()
def fold_expert(model: ViTPose, expert: int | None = None) -> ViTPose:
    """A plain ViTPose equal to ``model`` running ``expert`` (default: the one it runs now).

    Every block's ``fc2`` gains that expert's rows (weights and biases); all other tensors, the
    head included, are copied. The result is in eval mode on the CPU.
    """
    if model.num_experts == 1:
        raise ValueError("fold_expert: the model has a single expert already")
    index = int(model.expert) if expert is None else int(expert)
    if not 0 <= index < model.num_experts:
        raise ValueError(f"fold_expert: expert {index} of {model.num_experts}")
    backbone = model.backbone
    plain = ViTPose(
        img_size_hw=model.img_size_hw,
        patch_size=backbone.patch_embed.proj.kernel_size[0],
        embed_dim=backbone.embed_dim,
        depth=len(backbone.blocks),
        num_heads=backbone.blocks[0].attn.num_heads,
        mlp_ratio=backbone.blocks[0].mlp.fc1.out_features / backbone.embed_dim,
        qkv_bias=backbone.blocks[0].attn.qkv.bias is not None,
        decoder=model.decoder_kind,
        num_keypoints=model.num_keypoints,
        layer_norm_eps=backbone.norm.eps,
        variant=model.variant,
    )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for i, block in enumerate(backbone.blocks):
        assert isinstance(block.mlp, MoEMlp)
        prefix = f"backbone.blocks.{i}.mlp."
        weight, bias = state.pop(prefix + "expert_weight"), state.pop(prefix + "expert_bias")
        state[prefix + "fc2.weight"] = torch.cat([state[prefix + "fc2.weight"], weight[index]], dim=0)
        state[prefix + "fc2.bias"] = torch.cat([state[prefix + "fc2.bias"], bias[index]], dim=0)
    plain.load_state_dict(state, strict=True)
    return plain.eval()
