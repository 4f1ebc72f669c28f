"""Model files written by ``posestream train``: the state dict plus a ``meta`` describing the model.

A checkpoint is ``{'state_dict': <our ViTPose layout>, 'meta': {...}, ...}``: ``read_state_dict`` of
``posestream.models.checkpoint`` unwraps ``state_dict`` and ignores the rest, so ``load_weights`` and
``posestream export --weights`` read it like any other file. Everything in it is tensors or plain
Python, so it loads with ``torch.load(weights_only=True)``.

``meta``: ``format``, ``variant``, ``decoder``, ``num_keypoints``, ``arch`` (``embed_dim``, ``depth``,
``num_heads``, ``img_size_hw``: enough to rebuild a non-standard size), ``mean_rgb`` / ``std_rgb``,
``keypoint_set`` (the whole ``KeypointSet``, JSON) and, for readers of older files, its
``keypoint_names``, ``skeleton`` (0-based pairs) and ``sigmas``.

This module reads such files; writing them (``model_meta``, the optimizer state around them) is
``posestream.training.checkpoints``'s. It sits in ``models`` so that evaluation can load a trained
model without importing training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from posestream.errors import ModelFileError
from posestream.keypoints import KeypointSet, keypoint_set_for

__all__ = [
    "keypoint_set_of_meta",
    "build_model_from_meta",
    "load_checkpoint_model",
    "torch_load",
]

log = logging.getLogger(__name__)


def keypoint_set_of_meta(meta: dict, source: str = "checkpoint") -> KeypointSet:
    """The ``KeypointSet`` a checkpoint's meta describes (older files: from names/skeleton/sigmas)."""
    if isinstance(meta.get("keypoint_set"), dict):
        try:
            return KeypointSet.from_json(meta["keypoint_set"], f"{source} meta")
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
    names = meta.get("keypoint_names")
    if not names:
        return keypoint_set_for(int(meta["num_keypoints"]))
    registered = keypoint_set_for(names=names)
    if registered.sigmas is not None or not meta.get("sigmas"):
        return registered
    return KeypointSet.from_names(names, skeleton=[tuple(p) for p in meta.get("skeleton") or ()],
                                  sigmas=meta.get("sigmas"))  # fmt: skip


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
