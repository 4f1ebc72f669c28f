"""One place that turns ``--variant/--weights/--keypoints/--expert`` into a loaded PyTorch ViTPose.

Used by ``run`` (PyTorch path), ``export`` and ``eval``. Weights may be: 'none' (random), a
known name (``posestream.models.known_weights``), a Hub repo id or a local transformers folder
(``posestream.models.hub``), or a checkpoint file (mmpose / easy_ViTPose / official ViTPose+ /
transformers / ``posestream train`` layouts, ``posestream.models.checkpoint``).

The keypoint set of the result comes, in this order, from: a ``posestream train`` checkpoint's meta;
the known-weights table; the ViTPose+ expert; the caller's expectation; the registered set for the
file's K. When the caller names a set (``--keypoints``) and the weights are for another one, the
error names both sets (a ``ModelFileError``: exit code 2), before anything is downloaded when the
table already tells.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from posestream.errors import InputError, ModelFileError
from posestream.keypoints import KeypointSet, get_keypoint_set, keypoint_set_for
from posestream.models.checkpoint import CheckpointInfo, apply_weights, convert_state_dict, infer_variant
from posestream.models.known_weights import known_weights
from posestream.models.vitpose import VARIANTS, ViTPose, build_vitpose, canonical_variant
from posestream.models.vitpose_plus import EXPERTS, Expert, expert_named

__all__ = ["LoadedModel", "load_vitpose", "parse_expert"]

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A ViTPose ready to run (eval mode) and what it is.

    weights: the resolved source ('none' for random weights). expert: the ViTPose+ expert that runs
    (None for a plain ViTPose).
    """

    model: ViTPose
    keypoint_set: KeypointSet
    weights: str
    random_weights: bool
    expert: str | None = None

    @property
    def variant(self) -> str:
        return self.model.variant

    @property
    def decoder(self) -> str:
        return self.model.decoder_kind


def parse_expert(value: str | None) -> Expert | None:
    """An ``--expert`` value, or InputError listing the names."""
    if value is None:
        return None
    try:
        return expert_named(value)
    except ValueError as exc:
        raise InputError(f"--expert: {exc}") from None


def _mismatch(spec: str, held: KeypointSet, expected: KeypointSet) -> ModelFileError:
    return ModelFileError(
        f"--weights {spec}: the weights are for keypoint set {held.describe()}, but the model is asked for "
        f"{expected.describe()} (drop --keypoints, or pass weights of that set)"
    )


def load_vitpose(
    weights: str | None,
    *,
    variant: str | None = None,
    decoder: str | None = None,
    keypoint_set: KeypointSet | None = None,
    expert: str | None = None,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
) -> LoadedModel:
    """Build and load the model the flags describe (see the module docstring).

    variant / decoder: required for random weights; otherwise checked against the weights (another
        variant or decoder is a ModelFileError naming both).
    keypoint_set: the set the caller expects (``--keypoints``); None = whatever the weights hold.
    expert: ViTPose+ expert name ('coco', ..., 'wholebody'); None = COCO's for a ViTPose+ file.
    """
    from posestream.models.weights import resolve_weights

    chosen = parse_expert(expert)
    variant = _variant(variant)
    spec = "none" if weights is None else str(weights).strip()
    if spec.lower() in ("", "none", "random"):
        return _random(variant, decoder, keypoint_set, chosen)

    known = known_weights(spec)
    if known is not None:
        if known.kind == "onnx":
            raise ModelFileError(f"--weights {spec}: is an ONNX model; pass it as --pose-model (run) instead")
        held = get_keypoint_set(known.keypoint_set)
        if keypoint_set is not None and known.num_experts == 1 and held.keypoints != keypoint_set.keypoints:
            raise _mismatch(spec, held, keypoint_set)  # before any download
    path = resolve_weights(spec, variant, cache_dir=cache_dir, endpoint=endpoint)
    assert path is not None
    trained = _trained(path, spec, variant, keypoint_set, chosen)
    if trained is not None:
        return trained
    state_dict, meta_set, hub_config = _read(path)

    info = infer_variant(state_dict, chosen.name if chosen else None)
    if chosen is not None and info.num_experts == 1 and not info.heads:
        raise ModelFileError(
            f"--weights {spec}: --expert applies to ViTPose+ (mixture-of-experts) or multi-head checkpoints; "
            f"this is a single-head {info.describe()}"
        )
    if chosen is None and (info.num_experts > 1 or info.heads):
        chosen = EXPERTS[0]
        log.info("%s: ViTPose+ / multi-head checkpoint, running the coco expert (choose with --expert)", spec)
    _check_arch(spec, info, variant, decoder)

    hub_names = hub_config.keypoint_labels if hub_config is not None else None
    held = _held_set(info, meta_set, known, chosen, keypoint_set, hub_names)
    if keypoint_set is not None and held.keypoints != keypoint_set.keypoints:
        if held.num_keypoints != keypoint_set.num_keypoints or meta_set is not None or known is not None:
            raise _mismatch(spec, held, keypoint_set)
        held = keypoint_set  # same K, nothing in the file names the set: the caller's word counts
    model = build_vitpose(
        info.variant, info.decoder, info.num_keypoints, num_experts=info.num_experts,
        expert=chosen.index if chosen is not None and info.num_experts > 1 else 0,
        layer_norm_eps=hub_config.layer_norm_eps if hub_config is not None else 1e-6,
    )  # fmt: skip
    apply_weights(model, convert_state_dict(state_dict, chosen.name if chosen else None), path)
    return LoadedModel(model.eval(), held, str(path), False, chosen.name if info.num_experts > 1 else None)


def _variant(variant: str | None) -> str | None:
    if variant is None:
        return None
    try:
        return canonical_variant(variant)
    except ValueError as exc:
        raise InputError(f"--variant: {exc}") from None


def _random(
    variant: str | None, decoder: str | None, kset: KeypointSet | None, chosen: Expert | None
) -> LoadedModel:
    if variant is None:
        raise InputError("--variant is required with random weights (--weights none)")
    from posestream.models.weights import RANDOM_WEIGHTS_WARNING

    log.warning(RANDOM_WEIGHTS_WARNING)
    if chosen is not None:
        expert_set = get_keypoint_set(chosen.keypoint_set)
        if kset is not None and kset.keypoints != expert_set.keypoints:
            raise InputError(
                f"--expert {chosen.name} predicts {expert_set.describe()}, not {kset.describe()}"
            )
        k = expert_set.num_keypoints
        model = build_vitpose(variant, decoder or "classic", k, num_experts=len(EXPERTS), expert=chosen.index)
        return LoadedModel(model.eval(), expert_set, "none", True, chosen.name)
    kset = kset or keypoint_set_for(17)
    model = build_vitpose(variant, decoder or "classic", kset.num_keypoints)
    return LoadedModel(model.eval(), kset, "none", True)


def _trained(path: Path, spec: str, variant: str | None, expected: KeypointSet | None,
             chosen: Expert | None) -> LoadedModel | None:  # fmt: skip
    """A ``posestream train`` checkpoint (any size: its meta has the architecture), else None."""
    from posestream.models.checkpoint import read_checkpoint
    from posestream.models.trained import keypoint_set_of_meta, load_checkpoint_model

    if path.is_dir():
        return None
    checkpoint = read_checkpoint(path)
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    if not (isinstance(meta, dict) and "arch" in meta):
        return None
    if chosen is not None:
        raise ModelFileError(
            f"--weights {spec}: --expert applies to ViTPose+ checkpoints, not to a train checkpoint"
        )
    model, meta = load_checkpoint_model(path, checkpoint)
    held = keypoint_set_of_meta(meta, str(path))
    if expected is not None and held.keypoints != expected.keypoints:
        raise _mismatch(spec, held, expected)
    if variant is not None and model.variant != variant:
        raise ModelFileError(
            f"--weights {spec}: a ViTPose-{model.variant.upper()} checkpoint, not ViTPose-{variant.upper()}"
        )
    return LoadedModel(model.eval(), held, str(path), False)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], KeypointSet | None, object | None]:
    """(raw state dict, the set a train checkpoint's meta names, a transformers folder's config)."""
    from posestream.models.checkpoint import read_checkpoint, tensors_of
    from posestream.models.hub import is_transformers_folder, read_transformers_folder
    from posestream.models.trained import keypoint_set_of_meta

    if path.is_dir():
        if not is_transformers_folder(path):
            raise ModelFileError(f"--weights {path}: a folder without config.json (not a transformers model)")
        state_dict, config = read_transformers_folder(path)
        head = next((v for k, v in state_dict.items() if k == "head.conv.weight"), None)
        if config.num_keypoints is not None and head is not None and head.shape[0] != config.num_keypoints:
            raise ModelFileError(
                f"{path}: config.json names {config.num_keypoints} labels, the head outputs {head.shape[0]}"
            )
        if config.num_experts > 1 and not any(".mlp.experts." in k for k in state_dict):
            raise ModelFileError(
                f"{path}: config.json says {config.num_experts} experts, the weights hold none"
            )
        return state_dict, None, config
    checkpoint = read_checkpoint(path)
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    meta_set = keypoint_set_of_meta(meta, str(path)) if isinstance(meta, dict) and "arch" in meta else None
    return tensors_of(checkpoint, path), meta_set, None


def _check_arch(spec: str, info: CheckpointInfo, variant: str | None, decoder: str | None) -> None:
    if info.variant is None:
        raise ModelFileError(f"--weights {spec}: {info.describe()} is no known variant (s, b, l, h)")
    if variant is not None and info.variant != variant:
        raise ModelFileError(
            f"--weights {spec}: is ViTPose-{info.variant.upper()} weights but the model is "
            f"ViTPose-{variant.upper()} (use --variant {info.variant})"
        )
    if decoder is not None and info.decoder != decoder:
        raise ModelFileError(
            f"--weights {spec}: has a {info.decoder} decoder, not {decoder} (drop --decoder)"
        )
    if info.num_experts > 1 and info.part_features != VARIANTS[info.variant].part_features:
        raise ModelFileError(
            f"--weights {spec}: {info.part_features} expert channels per block; "
            f"ViTPose+-{info.variant.upper()} has {VARIANTS[info.variant].part_features}"
        )


def _held_set(info, meta_set, known, chosen, expected, hub_names) -> KeypointSet:
    """The set the weights predict (see the module docstring for the order)."""
    if meta_set is not None:
        return meta_set
    if known is not None and known.num_experts == 1:
        return get_keypoint_set(known.keypoint_set)
    if chosen is not None and (info.num_experts > 1 or info.heads):
        expert_set = get_keypoint_set(chosen.keypoint_set)
        if expert_set.num_keypoints == info.num_keypoints:
            return expert_set
    if expected is not None and expected.num_keypoints == info.num_keypoints:
        return expected
    held = keypoint_set_for(info.num_keypoints)
    if hub_names is not None and len(hub_names) == held.num_keypoints:
        log.info("transformers labels %s... taken as keypoint set %r", hub_names[:3], held.name)
    return held
