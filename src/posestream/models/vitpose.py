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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VARIANTS",
    "VariantSpec",
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
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # exact (erf) GELU, as the official model and transformers' "gelu"
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float, eps: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


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
    """Plain ViT without class token. Input (N, 3, H, W) -> feature map (N, D, Hp, Wp).

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
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size_hw, patch_size, embed_dim)
        self.grid_hw = self.patch_embed.grid_hw
        num_patches = self.grid_hw[0] * self.grid_hw[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear decay rule
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], layer_norm_eps) for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (N, L, D)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
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
    ) -> None:
        super().__init__()
        if decoder not in ("classic", "simple"):
            raise ValueError(f"decoder: expected 'classic' or 'simple', got {decoder!r}")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints: expected a positive count, got {num_keypoints}")
        self.variant = variant
        self.decoder_kind = decoder
        self.num_keypoints = num_keypoints
        self.img_size_hw = tuple(img_size_hw)
        self.backbone = ViTBackbone(
            img_size_hw, patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_path_rate,
            layer_norm_eps,
        )  # fmt: skip
        head_cls = ClassicDecoder if decoder == "classic" else SimpleDecoder
        self.head = head_cls(embed_dim, num_keypoints)
        hp, wp = self.backbone.grid_hw
        self.heatmap_size_hw = (hp * 4, wp * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """Size of one ViTPose variant (the backbone is a ViT of that size)."""

    name: str
    embed_dim: int
    depth: int
    num_heads: int

    def describe(self) -> str:
        return f"ViTPose-{self.name.upper()} (embed_dim {self.embed_dim}, depth {self.depth})"


VARIANTS: dict[str, VariantSpec] = {
    "s": VariantSpec("s", 384, 12, 12),
    "b": VariantSpec("b", 768, 12, 12),
    "l": VariantSpec("l", 1024, 24, 16),
    "h": VariantSpec("h", 1280, 32, 16),
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
    variant: str, decoder: str = "classic", num_keypoints: int = 17, **kwargs: object
) -> ViTPose:
    """ViTPose-S/B/L/H, randomly initialised; ``kwargs`` go to ``ViTPose`` (e.g. ``drop_path_rate``)."""
    spec = VARIANTS[canonical_variant(variant)]
    return ViTPose(
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        decoder=decoder,
        num_keypoints=num_keypoints,
        variant=spec.name,
        **kwargs,  # type: ignore[arg-type]
    )
