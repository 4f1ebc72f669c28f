"""transformers ViTPose checkpoints: a Hub repo id or a local folder with config.json + safetensors.

    --weights usyd-community/vitpose-base-simple      # downloaded once through huggingface_hub
    --weights ./my-vitpose-folder                     # config.json + model.safetensors

``config.json`` (``VitPoseConfig`` with a ``VitPoseBackboneConfig``) gives the architecture: size
(``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``), decoder (``use_simple_decoder``),
experts (``num_experts``, ``part_features``) and the keypoint count (``id2label``, checked against
the head's tensors). Settings posestream's ViTPose does not implement (another input size, patch,
activation or MLP ratio) are refused with the field named, before any tensor is read; the tensors
are then loaded strictly (``posestream.models.checkpoint``).

Downloads go through ``huggingface_hub.hf_hub_download`` (``config.json`` and the safetensors, also
sharded ones) into ``<cache>/hub/<owner>--<name>/``; every safetensors file is checked against the
size and LFS sha256 the Hub reports for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from posestream.errors import ModelFileError
from posestream.models.vitpose import VARIANTS

__all__ = [
    "HubModelConfig",
    "is_hub_id",
    "is_transformers_folder",
    "read_transformers_config",
    "read_transformers_folder",
    "download_hub_repo",
]

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class HubModelConfig:
    """What a transformers ``config.json`` says about the model (ours names)."""

    variant: str | None
    embed_dim: int
    depth: int
    num_heads: int
    decoder: str
    num_keypoints: int | None
    keypoint_labels: tuple[str, ...] | None
    num_experts: int
    part_features: int
    layer_norm_eps: float
    qkv_bias: bool


def is_hub_id(spec: str) -> bool:
    """'owner/name' that is not an existing local path."""
    return bool(_HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def is_transformers_folder(path: str | os.PathLike[str]) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "config.json").is_file()


def read_transformers_config(folder: str | os.PathLike[str]) -> HubModelConfig:
    """Parse ``folder/config.json``; ModelFileError naming the file and the field for anything off."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("model_type") != "vitpose":
        got = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(f"{path}: model_type is {got!r}, expected 'vitpose' (a transformers ViTPose)")
    backbone = config.get("backbone_config") or {}

    def field(name: str, default: object) -> object:
        return backbone.get(name, default)

    def expect(name: str, want: object, default: object) -> None:
        got = field(name, default)
        if isinstance(want, (list, tuple)):
            got = list(got) if isinstance(got, (list, tuple)) else [got, got]
            want = list(want)
        if got != want:
            raise ModelFileError(
                f"{path}: backbone_config.{name} is {got!r}; posestream's ViTPose needs {want!r}"
            )

    expect("image_size", [256, 192], [256, 192])
    expect("patch_size", [16, 16], [16, 16])
    expect("mlp_ratio", 4, 4)
    expect("hidden_act", "gelu", "gelu")
    expect("num_channels", 3, 3)
    try:
        embed_dim = int(field("hidden_size", 768))
        depth = int(field("num_hidden_layers", 12))
        num_heads = int(field("num_attention_heads", 12))
        num_experts = int(field("num_experts", 1))
        part_features = int(field("part_features", 256)) if num_experts > 1 else 0
        eps = float(field("layer_norm_eps", 1e-12))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: backbone_config has a malformed number ({exc})") from None
    if config.get("scale_factor", 4) != 4:
        raise ModelFileError(
            f"{path}: scale_factor is {config['scale_factor']!r}; posestream's ViTPose needs 4"
        )
    labels = config.get("id2label")
    names = None
    if isinstance(labels, dict) and labels:
        ordered = [labels[k] for k in sorted(labels, key=lambda k: int(k))]
        if not all(str(v).startswith("LABEL_") for v in ordered):
            names = tuple(str(v) for v in ordered)
    size = (embed_dim, depth, num_heads)
    variant = next((s.name for s in VARIANTS.values() if (s.embed_dim, s.depth, s.num_heads) == size), None)
    return HubModelConfig(
        variant=variant,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        decoder="simple" if config.get("use_simple_decoder", True) else "classic",
        num_keypoints=len(labels) if isinstance(labels, dict) and labels else None,
        keypoint_labels=names,
        num_experts=num_experts,
        part_features=part_features,
        layer_norm_eps=eps,
        qkv_bias=bool(field("qkv_bias", True)),
    )


def read_transformers_folder(
    folder: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], HubModelConfig]:
    """(state dict in the transformers layout, its config) of a local transformers ViTPose folder."""
    from posestream.models.checkpoint import read_state_dict

    folder = Path(folder)
    config = read_transformers_config(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelFileError(f"{folder}: has config.json but no *.safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for file in files:  # one file, or the shards of a sharded checkpoint
        state.update(read_state_dict(file))
    return state, config


def download_hub_repo(
    repo_id: str, cache_dir: Path, revision: str | None = None, endpoint: str | None = None
) -> Path:
    """Download ``config.json`` and the safetensors of ``repo_id`` into ``cache_dir/hub/<owner>--<name>``.

    ``model.safetensors``, or the shards a ``model.safetensors.index.json`` lists. Each file goes
    through ``hf_hub_download`` and is checked against the size and LFS sha256 the Hub reports. A
    complete folder already there is used as is (no network). ModelFileError when offline
    (``HF_HUB_OFFLINE``), the Hub is unreachable, the repo or a file is missing, or a check fails.
    """
    from posestream.models.weights import hub_unreachable, is_offline, verify_lfs_file

    target = Path(cache_dir) / "hub" / repo_id.replace("/", "--")
    if is_transformers_folder(target) and any(target.glob("*.safetensors")):
        return target
    hint = f"download {repo_id} from https://huggingface.co/{repo_id} into {target}, or pass a local folder"
    if is_offline():
        raise ModelFileError(f"--weights {repo_id}: not in the cache and HF_HUB_OFFLINE is set: {hint}")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    endpoint = endpoint or constants.ENDPOINT
    revision = revision or "main"
    reason = hub_unreachable(endpoint)
    if reason is not None:
        raise ModelFileError(
            f"--weights {repo_id}: not in the cache and the Hub is unreachable ({reason}): {hint}"
        )

    def fetch(filename: str) -> Path:
        path = Path(
            hf_hub_download(repo_id, filename, revision=revision, local_dir=partial, endpoint=endpoint)
        )
        if filename.endswith(".safetensors"):
            verify_lfs_file(path, repo_id, filename, revision, endpoint)
        return path

    partial = target.with_name(target.name + ".partial")
    log.info("downloading %s (config.json, safetensors) from %s to %s", repo_id, endpoint, target)
    try:
        fetch("config.json")
        try:
            fetch("model.safetensors")
        except EntryNotFoundError:  # a sharded checkpoint
            index = json.loads(fetch("model.safetensors.index.json").read_text(encoding="utf-8"))
            for shard in sorted(set(index.get("weight_map", {}).values())):
                fetch(shard)
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"--weights {repo_id}: download failed ({type(exc).__name__}: {first}): {hint}"
        ) from exc
    if target.exists():  # an incomplete earlier copy: replace it
        shutil.rmtree(target)
    partial.replace(target)
    return target
