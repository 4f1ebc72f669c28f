"""Checkpoints written by ``posestream train``, and initial weights for fine-tuning.

The file format (``{'state_dict', 'meta', ...}``) and how to read it back are described in
``posestream.models.trained``, which evaluation uses too; this module writes it (``model_meta``,
``save_checkpoint``) and initialises a model for fine-tuning (``load_init_weights``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from posestream.errors import ModelFileError
from posestream.keypoints import KeypointSet, keypoint_set_for
from posestream.runtime.base import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

__all__ = [
    "HEAD_OUTPUT_KEYS",
    "model_meta",
    "load_init_weights",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

# The final layer of either decoder: the only tensors whose shape depends on K.
HEAD_OUTPUT_KEYS = ("head.conv.weight", "head.conv.bias")


def model_meta(model: nn.Module, keypoint_set: KeypointSet | None = None) -> dict:
    """Plain-Python description of ``model`` and of the keypoint set it predicts (see models.trained).

    keypoint_set: None = the registered set for the model's K.
    """
    backbone = model.backbone
    kset = keypoint_set or keypoint_set_for(model.num_keypoints)
    if kset.num_keypoints != model.num_keypoints:
        raise ValueError(f"model_meta: keypoint set {kset.describe()} for a {model.num_keypoints}-keypoint model")
    return {
        "format": "posestream-vitpose-v1",
        "variant": getattr(model, "variant", "custom"),
        "decoder": model.decoder_kind,
        "num_keypoints": model.num_keypoints,
        "arch": {
            "embed_dim": backbone.embed_dim,
            "depth": len(backbone.blocks),
            "num_heads": backbone.blocks[0].attn.num_heads,
            "img_size_hw": list(model.img_size_hw),
        },
        "mean_rgb": list(IMAGENET_MEAN_RGB),
        "std_rgb": list(IMAGENET_STD_RGB),
        "keypoint_set": kset.to_json(),
        "keypoint_names": list(kset.keypoints),
        "skeleton": [list(p) for p in kset.skeleton],
        "sigmas": None if kset.sigmas is None else list(kset.sigmas),
    }


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a crash mid-save never leaves a half-written checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_init_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model`` from a checkpoint of any supported layout, for fine-tuning.

    Same K: a strict load (``load_weights``). Different K (a custom keypoint set): every tensor but
    the decoder's final layer is loaded strictly; ``HEAD_OUTPUT_KEYS`` keep their fresh random
    initialisation. Returns the names of the tensors left at initialisation. Any other mismatch
    (other size, other decoder) raises ModelFileError naming the file.
    """
    from posestream.models.checkpoint import apply_weights, read_weights

    path = Path(path)
    sd = read_weights(path)
    head = sd.get(HEAD_OUTPUT_KEYS[0])
    if head is None or int(head.shape[0]) == model.num_keypoints:
        apply_weights(model, sd, path)
        return []
    target = model.state_dict()
    kept = {k: v for k, v in sd.items() if k not in HEAD_OUTPUT_KEYS}
    missing = sorted(k for k in target if k not in kept and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in kept if k not in target)
    if missing != sorted(HEAD_OUTPUT_KEYS) or unexpected:
        raise ModelFileError(
            f"weights file {path}: does not fit the model apart from its final layer "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, tensor in kept.items():
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ModelFileError(
                f"weights file {path}: tensor {key} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(target[key].shape)} (another ViTPose size or decoder?)"
            )
    result = model.load_state_dict({k: v.to(target[k].dtype) for k, v in kept.items()}, strict=False)
    left = sorted(k for k in result.missing_keys if not k.endswith("num_batches_tracked"))
    assert left == sorted(HEAD_OUTPUT_KEYS), left
    log.info(
        "initialised from %s; new %d-keypoint final layer (the file has %d)",
        path, model.num_keypoints, head.shape[0],
    )
    return list(HEAD_OUTPUT_KEYS)
