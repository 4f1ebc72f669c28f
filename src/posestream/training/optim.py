"""AdamW with layer-wise learning-rate decay and the step schedule of the ViTPose configs.

Recipe (ViTAE-Transformer/ViTPose ``configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/ViTPose_*``):
AdamW lr 5e-4, betas (0.9, 0.999), weight decay 0.1, grad-norm clip 1.0; ``LayerDecayOptimizerConstructor``
with ``layer_decay_rate`` 0.9 (S), 0.75 (B), 0.8 (L), 0.85 (H); no weight decay on biases, norms and
``pos_embed``; linear warm-up over 500 iterations from 0.001 x lr, then x0.1 at epochs 170 and 200 of 210.

Layer ids (``get_num_layer_for_vit`` of that constructor), with ``L = depth + 2`` groups:
patch embed and pos embed -> 0, ``backbone.blocks.i`` -> i + 1, everything else (final norm, head) ->
L - 1. A parameter of layer id ``j`` gets ``lr * layer_decay ** (L - 1 - j)``: the head trains at full lr,
the patch embedding at ``layer_decay ** (depth + 1)`` of it.

Scaling to a short run: milestones stay at the same fractions of the run (170/210, 200/210 of the
steps), and warm-up is ``min(500, 5% of the steps)`` iterations unless given.
"""

from __future__ import annotations

import logging
import math
import re

import torch
from torch import nn

__all__ = [
    "LAYER_DECAY",
    "MILESTONE_FRACTIONS",
    "layer_id",
    "param_groups",
    "build_optimizer",
    "lr_factor",
    "build_scheduler",
    "default_warmup_steps",
]

log = logging.getLogger(__name__)

LAYER_DECAY: dict[str, float] = {"s": 0.9, "b": 0.75, "l": 0.8, "h": 0.85}
MILESTONE_FRACTIONS = (170 / 210, 200 / 210)
WARMUP_RATIO = 0.001
RECIPE_WARMUP_STEPS = 500


def layer_id(name: str, depth: int) -> int:
    """Layer-decay group of a parameter name of our ViTPose layout (0 .. depth + 1)."""
    if name.startswith(("backbone.patch_embed", "backbone.pos_embed", "backbone.cls_token")):
        return 0
    match = re.match(r"^backbone\.blocks\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    return depth + 1


def _no_weight_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim == 1 or name.endswith(".bias") or "pos_embed" in name or "norm" in name


def param_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay: float) -> list[dict]:
    """AdamW parameter groups: one per (layer id, decay / no decay), each with its scaled ``lr``."""
    depth = len(model.backbone.blocks)
    num_layers = depth + 2
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lid = layer_id(name, depth)
        no_wd = _no_weight_decay(name, param)
        key = (lid, no_wd)
        if key not in groups:
            scale = layer_decay ** (num_layers - 1 - lid)
            groups[key] = {
                "params": [],
                "names": [],
                "lr": lr * scale,
                "lr_scale": scale,
                "weight_decay": 0.0 if no_wd else weight_decay,
            }
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(
    model: nn.Module, lr: float = 5e-4, weight_decay: float = 0.1, layer_decay: float = 0.75
) -> torch.optim.AdamW:
    groups = param_groups(model, lr, weight_decay, layer_decay)
    for g in groups:
        g.pop("names")  # AdamW keeps extra keys in its state dict; names would only bloat checkpoints
    log.info(
        "AdamW: %d groups, lr %.2e, wd %.2f, layer decay %.2f", len(groups), lr, weight_decay, layer_decay
    )
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)


def default_warmup_steps(total_steps: int) -> int:
    return max(1, min(RECIPE_WARMUP_STEPS, math.ceil(0.05 * total_steps)))


def lr_factor(step: int, total_steps: int, warmup_steps: int, gamma: float = 0.1) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based).

    Linear warm-up as mmcv's: ``1 - (1 - step / warmup) * (1 - 0.001)``, times ``gamma`` per passed
    milestone (at ``MILESTONE_FRACTIONS`` of ``total_steps``).
    """
    factor = 1.0
    if step < warmup_steps:
        factor = 1.0 - (1.0 - step / warmup_steps) * (1.0 - WARMUP_RATIO)
    passed = sum(step >= round(f * total_steps) for f in MILESTONE_FRACTIONS)
    return factor * gamma**passed


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step LambdaLR of ``lr_factor``; each group keeps its layer-decay scale (its initial lr)."""
    warmup = default_warmup_steps(total_steps) if warmup_steps is None else warmup_steps

    def factor(step: int) -> float:
        return lr_factor(step, total_steps, warmup)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
