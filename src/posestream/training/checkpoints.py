"""Checkpoints written by ``posestream train``, and initial weights for fine-tuning.

A checkpoint is ``{'state_dict': <our ViTPose layout>, 'meta': {...}, ...}``: ``read_state_dict`` of
``posestream.models.checkpoint`` unwraps ``state_dict`` and ignores the rest, so ``load_weights`` and
``posestream export --weights`` read it like any other file. Everything in it is tensors or plain
Python, so it loads with ``torch.load(weights_only=True)``.

``meta``: ``format``, ``variant``, ``decoder``, ``num_keypoints``, ``arch`` (``embed_dim``, ``depth``,
``num_heads``, ``img_size_hw``: enough to rebuild a non-standard size), ``mean_rgb`` / ``std_rgb``,
and from the training data ``keypoint_names``, ``skeleton`` (0-based pairs) and ``sigmas``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from posestream.errors import ModelFileError
from posestream.evaluation.dataset import KeypointDataset
from posestream.runtime.base import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

__all__ = [
    "HEAD_OUTPUT_KEYS",
    "model_meta",
    "build_model_from_meta",
    "load_checkpoint_model",
    "load_init_weights",
    "save_checkpoint",
    "torch_load",
]

log = logging.getLogger(__name__)

# The final layer of either decoder: the only tensors whose shape depends on K.
HEAD_OUTPUT_KEYS = ("head.conv.weight", "head.conv.bias")


def model_meta(model: nn.Module, dataset: KeypointDataset | None = None) -> dict:
    """Plain-Python description of ``model`` (and of its keypoints, from the dataset's category)."""
    backbone = model.backbone
    meta = {
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
    }
    if dataset is not None:
        cat = dataset.category
        meta["keypoint_names"] = list(cat.keypoints)
        meta["skeleton"] = [list(p) for p in cat.skeleton]
        meta["sigmas"] = [float(s) for s in cat.sigmas]
    return meta


def build_model_from_meta(meta: dict) -> nn.Module:
    """A randomly initialised ViTPose with the architecture ``meta`` describes."""
    from posestream.models.vitpose import ViTPose

    arch = meta["arch"]
    return ViTPose(
        img_size_hw=tuple(arch["img_size_hw"]),
        embed_dim=arch["embed_dim"],
        depth=arch["depth"],
        num_heads=arch["num_heads"],
        decoder=meta["decoder"],
        num_keypoints=meta["num_keypoints"],
        variant=meta.get("variant", "custom"),
    )


def torch_load(path: Path) -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint, or ModelFileError naming it."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelFileError(f"checkpoint {path}: cannot be read: {str(exc).splitlines()[0]}") from exc
    if not isinstance(obj, dict):
        raise ModelFileError(f"checkpoint {path}: holds {type(obj).__name__}, expected a dict")
    return obj


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a crash mid-save never leaves a half-written checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint_model(path: str | Path, checkpoint: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild and load a model saved by ``train`` (``last.pth`` / ``best.pth``); returns it and meta.

    checkpoint: the file's content when the caller has read it already (it is read once either way).
    """
    from posestream.models.checkpoint import apply_weights, read_weights

    path = Path(path)
    checkpoint = torch_load(path) if checkpoint is None else checkpoint
    meta = checkpoint.get("meta")
    if not isinstance(meta, dict) or "arch" not in meta:
        raise ModelFileError(
            f"weights file {path}: no 'meta' with the architecture (not written by posestream train)"
        )
    model = build_model_from_meta(meta)
    apply_weights(model, read_weights(path, checkpoint), path)
    return model, meta


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
