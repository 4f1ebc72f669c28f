"""ViTPose: a plain ViT backbone and a heatmap decoder for top-down human pose estimation.

Xu et al., "ViTPose: Simple Vision Transformer Baselines for Human Pose Estimation" (NeurIPS 2022).
The architecture follows the official code (ViTAE-Transformer/ViTPose, mmpose 0.x layout) so that
its checkpoints load after a key rename (see ``posestream.models.checkpoint``):

    image (N, 3, 256, 192)
      -> patch embed: conv 16x16 stride 16 **padding 2** -> (N, D, 16, 12) -> tokens (N, 192, D)
      -> + learned position embedding (pretraining left a class-token slot: see ``ViTBackbone``)
      -> depth x pre-norm transformer block
      -> final LayerNorm -> feature map (N, D, 16, 12)
      -> decoder -> heatmaps (N, K, 64, 48)

Two decoders from the paper: "classic" (two deconvolutions, the default of the released weights)
and "simple" (ReLU, bilinear x4, one 3x3 conv). Modules are configured entirely by constructor
arguments; builders for the four sizes are at the bottom.

ViTPose+ (Xu et al., "ViTPose++: Vision Transformer for Generic Body Pose Estimation", TPAMI 2023;
the official ``ViTMoE`` backbone) replaces each block's FFN by a mixture of experts
(``num_experts > 1``, ``MoEMlp``): fc2's first ``D - part_features`` outputs are shared by every
dataset, the last ``part_features`` come from the expert of the sample's dataset (0 COCO, 1 AIC,
2 MPII, 3 AP-10K, 4 APT-36K, 5 COCO-WholeBody). The model holds every expert and the head of one;
``expert`` (a buffer, not a weight) says which expert runs. ``posestream.models.vitpose_plus``
folds one expert into fc2, giving a plain ViTPose.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VARIANTS",
    "VariantSpec",
    "Mlp",
    "MoEMlp",
    "ViTBackbone",
    "ClassicDecoder",
    "SimpleDecoder",
    "ViTPose",
    "build_vitpose",
    "canonical_variant",
]


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection (rows ordered q, k, v)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape  # x: (N, L, D)
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (N, H, L, Dh)
        # Written out rather than F.scaled_dot_product_attention: exports to plain MatMul/Softmax,
        # which every ONNX Runtime provider runs in fp32, fp16 and int8 alike.
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (N, H, L, L)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(n, length, dim)
        return self.proj(x)


class Mlp(nn.Module):
    """FFN of a plain block. ``expert_index`` is accepted and unused (there is one expert)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # exact (erf) GELU, as the official model and transformers' "gelu"
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, expert_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MoEMlp(nn.Module):
    """ViTPose+ FFN: fc1, GELU, then ``[fc2(h) | expert_e(h)]`` concatenated on the channels.

    fc2 gives the first ``dim - part_features`` outputs (shared by all datasets); expert ``e`` of
    each sample gives the last ``part_features``. The experts are stacked in one tensor
    ``expert_weight`` (E, P, hidden) / ``expert_bias`` (E, P) so a batch gathers its experts and
    runs one batched matmul, instead of every expert on every sample (the official code and
    transformers multiply each expert's output by a 0/1 mask and sum).
    """

    def __init__(self, dim: int, hidden_dim: int, num_experts: int, part_features: int) -> None:
        super().__init__()
        if not 0 < part_features < dim:
            raise ValueError(f"part_features: expected 1..{dim - 1} for embed_dim {dim}, got {part_features}")
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim - part_features)
        self.expert_weight = nn.Parameter(torch.empty(num_experts, part_features, hidden_dim))
        self.expert_bias = nn.Parameter(torch.empty(num_experts, part_features))
        for weight, bias in zip(self.expert_weight.data, self.expert_bias.data):  # nn.Linear's init
            nn.init.kaiming_uniform_(weight, a=5**0.5)
            nn.init.uniform_(bias, -(hidden_dim**-0.5), hidden_dim**-0.5)

    def forward(self, x: torch.Tensor, expert_index: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))  # (N, L, hidden)
        shared = self.fc2(h)  # (N, L, D - P)
        weight = self.expert_weight[expert_index]  # (N, P, hidden): each sample's expert
        bias = self.expert_bias[expert_index]  # (N, P)
        part = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))  # (N, L, P)
        return torch.cat([shared, part], dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x), expert_index)``.

    num_experts > 1 makes the FFN a ``MoEMlp`` with ``part_features`` expert channels.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float, eps: float,
        num_experts: int = 1, part_features: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MoEMlp(dim, hidden, num_experts, part_features) if num_experts > 1 else Mlp(dim, hidden)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor, expert_index: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x), expert_index))


class PatchEmbed(nn.Module):
    """Conv patchify. ViTPose pads by 2 pixels (``4 + 2 * (ratio // 2 - 1)`` with ratio 1 in the
    official code), so a 256x192 input still gives a 16x12 grid: ``floor((256 + 4 - 16) / 16) + 1``.
    """

    def __init__(self, img_size_hw: tuple[int, int], patch_size: int, embed_dim: int, padding: int = 2):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size, padding=padding)
        h, w = img_size_hw
        self.grid_hw = tuple((size + 2 * padding - patch_size) // patch_size + 1 for size in (h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (N, D, Hp, Wp)
        return x.flatten(2).transpose(1, 2)  # (N, Hp*Wp, D)


class ViTBackbone(nn.Module):
    """Plain ViT without class token. Input (N, 3, H, W) and expert index (N,) -> feature map (N, D, Hp, Wp).

    ``pos_embed`` is (1, 1 + Hp*Wp, D): slot 0 is the class-token position of the MAE pretraining.
    The official model keeps it and adds it to every patch token (``pos_embed[:, 1:] + pos_embed[:, :1]``),
    as does ``transformers``' ``VitPoseBackboneEmbeddings``; dropping it would change the outputs.
    """

    def __init__(
        self,
        img_size_hw: tuple[int, int] = (256, 192),
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        layer_norm_eps: float = 1e-6,
        num_experts: int = 1,
        part_features: int = 0,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_experts = num_experts
        self.part_features = part_features if num_experts > 1 else 0
        self.patch_embed = PatchEmbed(img_size_hw, patch_size, embed_dim)
        self.grid_hw = self.patch_embed.grid_hw
        num_patches = self.grid_hw[0] * self.grid_hw[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear decay rule
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], layer_norm_eps, num_experts, part_features)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor, expert_index: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, 3, H, W); expert_index: (N,) int64 dataset index per sample (required with experts,
        ignored by plain blocks)."""
        x = self.patch_embed(x)  # (N, L, D)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x, expert_index)
        x = self.norm(x)
        hp, wp = self.grid_hw
        return x.transpose(1, 2).reshape(x.shape[0], self.embed_dim, hp, wp)  # (N, D, Hp, Wp)


class ClassicDecoder(nn.Module):
    """(N, D, 16, 12) -> (N, K, 64, 48): 2 x [ConvTranspose 4x4 s2 p1 (no bias), BN, ReLU], 1x1 conv."""

    def __init__(self, in_channels: int, num_keypoints: int, channels: int = 256) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(in_channels, channels, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.deconv2 = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, num_keypoints, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.deconv1(x)))  # (N, 256, 32, 24)
        x = F.relu(self.bn2(self.deconv2(x)))  # (N, 256, 64, 48)
        return self.conv(x)  # (N, K, 64, 48)


class SimpleDecoder(nn.Module):
    """(N, D, 16, 12) -> (N, K, 64, 48): ReLU, bilinear x4 (align_corners=False), 3x3 conv."""

    def __init__(self, in_channels: int, num_keypoints: int, scale_factor: int = 4) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.conv = nn.Conv2d(in_channels, num_keypoints, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(F.relu(x), scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        return self.conv(x)


class ViTPose(nn.Module):
    """Backbone + decoder. ``forward``: (N, 3, 256, 192) float32, normalised RGB -> (N, K, 64, 48).

    The input is what the official pipeline feeds: RGB, ``(pixel - mean) / std`` with the ImageNet
    mean/std in 0-255 units. ``variant`` is informational ('s', 'b', 'l', 'h' or 'custom').
    ViTPose+: ``num_experts`` > 1 with ``part_features`` expert channels per block, and ``expert``
    the index every sample runs (``select_expert`` changes it); the head is that expert's.
    """

    def __init__(
        self,
        img_size_hw: tuple[int, int] = (256, 192),
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        decoder: str = "classic",
        num_keypoints: int = 17,
        layer_norm_eps: float = 1e-6,
        variant: str = "custom",
        num_experts: int = 1,
        part_features: int = 0,
        expert: int = 0,
    ) -> None:
        super().__init__()
        if num_experts < 1 or not 0 <= expert < num_experts:
            raise ValueError(f"expert: expected 0..{num_experts - 1} for {num_experts} experts, got {expert}")
        if decoder not in ("classic", "simple"):
            raise ValueError(f"decoder: expected 'classic' or 'simple', got {decoder!r}")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints: expected a positive count, got {num_keypoints}")
        self.variant = variant
        self.decoder_kind = decoder
        self.num_keypoints = num_keypoints
        self.img_size_hw = tuple(img_size_hw)
        self.num_experts = num_experts
        self.backbone = ViTBackbone(
            img_size_hw, patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_path_rate,
            layer_norm_eps, num_experts, part_features,
        )  # fmt: skip
        head_cls = ClassicDecoder if decoder == "classic" else SimpleDecoder
        self.head = head_cls(embed_dim, num_keypoints)
        hp, wp = self.backbone.grid_hw
        self.heatmap_size_hw = (hp * 4, wp * 4)
        # Not a weight: which expert runs (0 for a plain model, where it is never read).
        self.register_buffer("expert", torch.tensor(expert, dtype=torch.int64), persistent=False)

    def select_expert(self, expert: int) -> ViTPose:
        """Run expert ``expert`` from now on (the head stays: the caller loads the matching one)."""
        if not 0 <= expert < self.num_experts:
            raise ValueError(f"expert: expected 0..{self.num_experts - 1}, got {expert}")
        self.expert.fill_(expert)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x, self.expert.expand(x.shape[0])))


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """Size of one ViTPose variant (the backbone is a ViT of that size)."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int
    part_features: int  # ViTPose+ expert channels per block (the official ViTPose+ configs)

    def describe(self) -> str:
        return f"ViTPose-{self.name.upper()} (embed_dim {self.embed_dim}, depth {self.depth})"


VARIANTS: dict[str, VariantSpec] = {
    "s": VariantSpec("s", 384, 12, 12, 192),
    "b": VariantSpec("b", 768, 12, 12, 192),
    "l": VariantSpec("l", 1024, 24, 16, 256),
    "h": VariantSpec("h", 1280, 32, 16, 320),
}
_ALIASES = {"small": "s", "base": "b", "large": "l", "huge": "h"}


def canonical_variant(variant: str) -> str:
    """'s' | 'small' | 'S' ... -> 's'. Unknown names raise ValueError listing the valid ones."""
    key = variant.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in VARIANTS:
        raise ValueError(
            f"unknown ViTPose variant {variant!r}: expected one of s, b, l, h (or small, base, large, huge)"
        )
    return key


def build_vitpose(
    variant: str,
    decoder: str = "classic",
    num_keypoints: int = 17,
    num_experts: int = 1,
    expert: int = 0,
    **kwargs: object,
) -> ViTPose:
    """ViTPose-S/B/L/H (ViTPose+ with ``num_experts`` > 1, running ``expert``), randomly initialised.

    ``kwargs`` go to ``ViTPose`` (e.g. ``drop_path_rate``).
    """
    spec = VARIANTS[canonical_variant(variant)]
    return ViTPose(
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        decoder=decoder,
        num_keypoints=num_keypoints,
        variant=spec.name,
        num_experts=num_experts,
        part_features=spec.part_features if num_experts > 1 else 0,
        expert=expert,
        **kwargs,  # type: ignore[arg-type]
    )
