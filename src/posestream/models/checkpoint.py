"""Read ViTPose checkpoints of the known layouts and load them strictly into ``ViTPose``.

Layouts understood by ``convert_state_dict`` (detected from the keys, the result is always ours):

* **ours**: ``backbone.patch_embed.proj.weight``, ``backbone.blocks.{i}.attn.qkv.weight``,
  ``backbone.norm.*``, ``head.{deconv1,bn1,deconv2,bn2,conv}.*`` (classic) or ``head.conv.*`` (simple).
* **mmpose 0.x / official ViTPose / easy_ViTPose** (the released ``vitpose-*-coco.pth``): same backbone
  names except ``backbone.last_norm``; head ``keypoint_head.deconv_layers.{0,1,3,4}`` (deconv, BN,
  deconv, BN; 2 and 5 are ReLUs) and ``keypoint_head.final_layer``. A ``module.`` prefix (DataParallel)
  is stripped.
* **Hugging Face transformers** ``VitPoseForPoseEstimation``: ``backbone.embeddings.*``,
  ``backbone.encoder.layer.{i}.attention.attention.{query,key,value}`` (fused here into one ``qkv``,
  rows q, k, v as the official reshape expects), ``backbone.layernorm``, ``head.{deconv1,batchnorm1,...}``.
* **ViTPose+** (mixture of experts), in the official layout (``backbone.blocks.{i}.mlp.fc2`` with
  ``D - part_features`` rows, ``backbone.blocks.{i}.mlp.experts.{e}.*``, heads ``keypoint_head`` (COCO)
  and ``associate_keypoint_heads.{0..4}`` (AIC, MPII, AP-10K, APT-36K, WholeBody)) or the transformers
  layout (``backbone.encoder.layer.{i}.mlp.experts.{e}.*``, one COCO head). The experts are stacked
  into our ``mlp.expert_weight`` (E, P, hidden) / ``mlp.expert_bias`` (E, P); ``expert`` chooses the
  head (see ``posestream.models.vitpose_plus``). A file split by the official ``tools/model_split.py``
  keeps its ``mlp.experts.*`` tensors beside the already folded fc2 (its clean-up loop tests
  ``'expert' in keys``, never true): those leftovers are dropped.

Not supported (a clear ModelFileError): mmpose 1.x checkpoints (mmpretrain backbone names
``backbone.layers.{i}.ln1`` ...).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from posestream.errors import ModelFileError
from posestream.models.vitpose import VARIANTS
from posestream.models.vitpose_plus import EXPERTS, expert_named

__all__ = [
    "CheckpointInfo",
    "read_state_dict",
    "read_checkpoint",
    "tensors_of",
    "read_weights",
    "apply_weights",
    "convert_state_dict",
    "infer_variant",
    "load_weights",
    "sha256_of_file",
]

log = logging.getLogger(__name__)

_PREVIEW = 5  # how many key names an error message lists before "... (N in all)"


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What a (converted) state dict says about the model it fits.

    variant: 's' | 'b' | 'l' | 'h', or None when embed_dim/depth match no known size.
    decoder: 'classic' | 'simple'. num_keypoints: K of the (chosen) head.
    num_experts, part_features: ViTPose+ (1 and 0 for a plain ViTPose).
    heads: the experts whose heads a multi-head file holds ('coco', 'aic', ...); () for one head.
    """

    variant: str | None
    embed_dim: int
    depth: int
    decoder: str
    num_keypoints: int
    num_experts: int = 1
    part_features: int = 0
    heads: tuple[str, ...] = ()

    def describe(self) -> str:
        size = f"ViTPose-{self.variant.upper()}" if self.variant else "an unknown ViT size"
        plus = f", ViTPose+ with {self.num_experts} experts" if self.num_experts > 1 else ""
        return (
            f"{size} (embed_dim {self.embed_dim}, depth {self.depth}){plus}, "
            f"{self.decoder} decoder, {self.num_keypoints} keypoints"
        )


def sha256_of_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _preview(keys: list[str]) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:_PREVIEW])
    return head + (f", ... ({len(keys)} in all)" if len(keys) > _PREVIEW else "")


# ----------------------------------------------------------------------------------------- reading


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin`` (torch, ``weights_only=True``) or ``.safetensors`` file.

    A top-level ``state_dict`` or ``model`` entry (mmpose, training scripts) is unwrapped; other
    entries (``meta``, ``optimizer``) are ignored. Anything that is not such a file raises
    ModelFileError naming it.
    """
    path = Path(path)
    return tensors_of(read_checkpoint(path), path)


def read_checkpoint(path: str | Path) -> object:
    """The file's content as stored (for a training checkpoint: the dict with ``meta`` and the rest).

    Read it once and hand it to :func:`tensors_of`: these files are hundreds of megabytes.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"weights file {path}: does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        raise ModelFileError(
            f"weights file {path}: is an ONNX model; give it to the onnx runtime, not as PyTorch weights"
        )
    return _read_safetensors(path) if suffix == ".safetensors" else _read_torch(path)


def tensors_of(obj: object, path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict inside what :func:`read_checkpoint` returned (``path`` names it in errors)."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelFileError(
            f"weights file {path}: holds {type(obj).__name__}, expected a state dict of tensors"
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelFileError(f"weights file {path}: contains no tensors, expected a state dict")
    return tensors


def _read_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise ModelFileError(
                f"weights file {path}: holds pickled Python objects that safe loading (weights_only) "
                "refuses; save only the model's state_dict"
            ) from exc
        raise ModelFileError(
            f"weights file {path}: not a PyTorch checkpoint (corrupt or another format)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - torch.load on arbitrary bytes raises KeyError, EOFError, ...
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"weights file {path}: cannot be read as a PyTorch checkpoint (truncated, corrupt or not a "
            f"checkpoint): {type(exc).__name__}: {reason}"
        ) from exc


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"weights file {path}: not a valid safetensors file (truncated?): {exc}"
        ) from exc


# -------------------------------------------------------------------------------------- conversion

_HEAD_MMPOSE = {
    "keypoint_head.deconv_layers.0.": "head.deconv1.",
    "keypoint_head.deconv_layers.1.": "head.bn1.",
    "keypoint_head.deconv_layers.3.": "head.deconv2.",
    "keypoint_head.deconv_layers.4.": "head.bn2.",
    "keypoint_head.final_layer.": "head.conv.",
}
_HEAD_HF = {
    "head.deconv1.": "head.deconv1.",
    "head.batchnorm1.": "head.bn1.",
    "head.deconv2.": "head.deconv2.",
    "head.batchnorm2.": "head.bn2.",
    "head.conv.": "head.conv.",
}
_HF_BLOCK = {
    "layernorm_before.": "norm1.",
    "layernorm_after.": "norm2.",
    "attention.output.dense.": "attn.proj.",
    "mlp.fc1.": "mlp.fc1.",
    "mlp.fc2.": "mlp.fc2.",
    "mlp.experts.": "mlp.experts.",
}
_EXPERT_KEY = re.compile(r"^backbone\.blocks\.(\d+)\.mlp\.experts\.(\d+)\.(weight|bias)$")
_HF_LAYER = re.compile(r"^backbone\.encoder\.layer\.(\d+)\.(.+)$")


def _replace_prefix(key: str, table: Mapping[str, str]) -> str | None:
    for old, new in table.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def convert_state_dict(sd: Mapping[str, torch.Tensor], expert: str | None = None) -> dict[str, torch.Tensor]:
    """Any supported layout -> our key names (see the module docstring). Idempotent on our layout.

    expert: for a file with several heads (official ViTPose+ or multi-task ViTPose), whose head to
        keep ('coco', 'aic', 'mpii', 'ap10k', 'apt36k', 'wholebody'); None = COCO's. A transformers
        ViTPose+ file has only COCO's head, so another expert is a ModelFileError there.
    Keys the conversion does not recognise are kept as they are, so a strict load reports them.
    Raises ModelFileError for recognisably unsupported checkpoints (mmpose 1.x).
    """
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    chosen = expert_named(expert) if expert is not None else EXPERTS[0]
    if any(k.startswith("backbone.layers.") for k in sd):
        raise ModelFileError(
            "checkpoint uses the mmpose 1.x / mmpretrain layout (backbone.layers.*): not supported, "
            "use the mmpose 0.x (official ViTPose / easy_ViTPose) or transformers layout"
        )
    if any(k.startswith("backbone.embeddings.") or k.startswith("backbone.encoder.") for k in sd):
        if chosen.index != 0 and any(".mlp.experts." in k for k in sd):
            raise ModelFileError(
                f"checkpoint (transformers ViTPose+ layout) holds only the COCO head, not the {chosen.name} "
                "expert's: its dataset_index selects the expert but the COCO head decodes it (transformers "
                "issue #39789); use the official ViTPose+ checkpoint or a split vitpose-*-"
                f"{chosen.keypoint_set} file for --expert {chosen.name}"
            )
        return _stack_experts(_convert_hf(sd))
    sd = _select_head(sd, chosen)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("backbone.last_norm."):
            key = "backbone.norm." + key[len("backbone.last_norm.") :]
        else:
            key = _replace_prefix(key, _HEAD_MMPOSE) or key
        out[key] = value
    return _stack_experts(out)


def heads_in(sd: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
    """Experts whose heads a multi-head (official layout) state dict holds, in expert order; () if one."""
    if not any(k.startswith("associate_keypoint_heads.") for k in sd):
        return ()
    return tuple(e.name for e in EXPERTS if any(k.startswith(e.official_head) for k in sd))


def _select_head(sd: dict[str, torch.Tensor], chosen) -> dict[str, torch.Tensor]:
    """Official multi-head layout: keep ``chosen``'s head as ``keypoint_head.*``, drop the others."""
    available = heads_in(sd)
    if not available:
        return sd
    if chosen.name not in available:
        raise ModelFileError(
            f"checkpoint has heads for {', '.join(available)}, not for the {chosen.name} expert"
        )
    out = {k: v for k, v in sd.items() if not k.startswith(("keypoint_head.", "associate_keypoint_heads."))}
    for key, value in sd.items():
        if key.startswith(chosen.official_head):
            out["keypoint_head." + key[len(chosen.official_head) :]] = value
    return out


def _stack_experts(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``mlp.experts.{e}.{weight,bias}`` -> ``mlp.expert_weight`` (E, P, hidden) / ``mlp.expert_bias`` (E, P).

    Leftover experts beside a folded fc2 (as many rows as the embedding, see the module docstring)
    are dropped instead.
    """
    experts: dict[int, dict[str, dict[int, torch.Tensor]]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = _EXPERT_KEY.match(key)
        if m is None:
            out[key] = value
        else:
            experts.setdefault(int(m.group(1)), {}).setdefault(m.group(3), {})[int(m.group(2))] = value
    if not experts:
        return out
    proj = out.get("backbone.patch_embed.proj.weight")
    fc2 = out.get(f"backbone.blocks.{min(experts)}.mlp.fc2.weight")
    if proj is not None and fc2 is not None and fc2.shape[0] == proj.shape[0]:
        log.info("checkpoint: fc2 already holds an expert (a split ViTPose+ file); ignoring its leftover "
                 "mlp.experts.* tensors")  # fmt: skip
        return out
    for block, parts in sorted(experts.items()):
        for kind, by_index in parts.items():
            if sorted(by_index) != list(range(len(by_index))):
                raise ModelFileError(f"checkpoint: block {block} has experts {sorted(by_index)}, expected 0..N-1")
            name = "expert_weight" if kind == "weight" else "expert_bias"
            out[f"backbone.blocks.{block}.mlp.{name}"] = torch.stack([by_index[i] for i in range(len(by_index))])
    return out


def _convert_hf(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    qkv_parts: dict[tuple[int, str], dict[str, torch.Tensor]] = {}  # (block, weight|bias) -> q/k/v
    for key, value in sd.items():
        if key == "backbone.embeddings.position_embeddings":
            out["backbone.pos_embed"] = value
        elif key.startswith("backbone.embeddings.patch_embeddings.projection."):
            out["backbone.patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("backbone.layernorm."):
            out["backbone.norm." + key.rsplit(".", 1)[1]] = value
        elif (m := _HF_LAYER.match(key)) is not None:
            index, rest = int(m.group(1)), m.group(2)
            qkv = re.match(r"^attention\.attention\.(query|key|value)\.(weight|bias)$", rest)
            if qkv is not None:
                qkv_parts.setdefault((index, qkv.group(2)), {})[qkv.group(1)] = value
                continue
            renamed = _replace_prefix(rest, _HF_BLOCK)
            out[f"backbone.blocks.{index}.{renamed}" if renamed else key] = value
        else:
            out[_replace_prefix(key, _HEAD_HF) or key] = value
    for (index, kind), parts in sorted(qkv_parts.items()):
        missing = {"query", "key", "value"} - parts.keys()
        if missing:
            raise ModelFileError(
                f"checkpoint (transformers layout): layer {index} attention {kind} lacks {sorted(missing)}"
            )
        out[f"backbone.blocks.{index}.attn.qkv.{kind}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0
        )
    return out


def infer_variant(sd: Mapping[str, torch.Tensor], expert: str | None = None) -> CheckpointInfo:
    """Read the architecture off a state dict of any supported layout.

    embed_dim from the patch-embedding conv, depth from the number of blocks (together: the variant),
    decoder kind from the head keys, K from the last conv's output channels (of ``expert``'s head
    in a multi-head file), experts and part features from the stacked expert tensors.
    """
    heads = heads_in({(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()})
    sd = convert_state_dict(sd, expert)
    proj = sd.get("backbone.patch_embed.proj.weight")
    if proj is None or proj.ndim != 4:
        raise ModelFileError(
            "checkpoint has no ViTPose patch embedding (backbone.patch_embed.proj.weight or its "
            f"mmpose/transformers equivalent); keys start with: {_preview(list(sd))}"
        )
    embed_dim = int(proj.shape[0])
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"^backbone\.blocks\.(\d+)\.", k))}
    depth = max(blocks) + 1 if blocks else 0
    conv = sd.get("head.conv.weight")
    if conv is None:
        raise ModelFileError("checkpoint has no heatmap head (head.conv / keypoint_head.final_layer)")
    decoder = "classic" if "head.deconv1.weight" in sd else "simple"
    variant = next((s.name for s in VARIANTS.values() if (s.embed_dim, s.depth) == (embed_dim, depth)), None)
    experts = sd.get("backbone.blocks.0.mlp.expert_weight")
    num_experts, part = (int(experts.shape[0]), int(experts.shape[1])) if experts is not None else (1, 0)
    return CheckpointInfo(variant, embed_dim, depth, decoder, int(conv.shape[0]), num_experts, part, heads)


# ----------------------------------------------------------------------------------------- loading


def load_weights(model: nn.Module, path: str | Path, expected_sha256: str | None = None) -> CheckpointInfo:
    """Load a checkpoint file into ``model`` strictly; return what the file holds.

    Raises ModelFileError (naming the file) when the file is missing, unreadable, has the wrong
    sha256, or does not fit the model: missing / unexpected keys are listed, and a shape mismatch
    names the tensor and compares the variant the file looks like with the model's. BatchNorm
    ``num_batches_tracked`` counters are the only keys allowed to be absent (they never affect eval).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"weights file {path}: does not exist or is not a file")
    if expected_sha256 is not None:
        actual = sha256_of_file(path)
        if actual.lower() != expected_sha256.lower():
            raise ModelFileError(
                f"weights file {path}: sha256 {actual} does not match the expected {expected_sha256} "
                "(incomplete download or a different file; delete it and download again)"
            )
    return apply_weights(model, read_weights(path), path)


def read_weights(
    path: str | Path, checkpoint: object | None = None, expert: str | None = None
) -> dict[str, torch.Tensor]:
    """The file's tensors in this package's layout (any supported layout converted).

    checkpoint: what :func:`read_checkpoint` already returned for ``path``, to avoid a second read.
    expert: whose head to keep from a multi-head file (see :func:`convert_state_dict`).
    """
    path = Path(path)
    try:
        obj = read_checkpoint(path) if checkpoint is None else checkpoint
        return convert_state_dict(tensors_of(obj, path), expert)
    except ModelFileError as exc:
        if str(path) in str(exc):
            raise
        raise ModelFileError(f"weights file {path}: {exc}") from exc


def apply_weights(model: nn.Module, sd: Mapping[str, torch.Tensor], path: str | Path) -> CheckpointInfo:
    """Load ``sd`` (from :func:`read_weights`) into ``model`` strictly, as :func:`load_weights` does.

    path: the file ``sd`` came from, named in errors.
    """
    sd = dict(sd)
    target = model.state_dict()

    missing = [k for k in target if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in target]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_preview(missing)}")
        if unexpected:
            parts.append(f"unexpected {_preview(unexpected)}")
        raise ModelFileError(
            f"weights file {path}: does not fit the model: {'; '.join(parts)}{_looks_like(sd, model)}"
        )

    for key, tensor in target.items():
        if key in sd and tuple(sd[key].shape) != tuple(tensor.shape):
            raise ModelFileError(
                f"weights file {path}: tensor {key} has shape {tuple(sd[key].shape)}, the model expects "
                f"{tuple(tensor.shape)}{_looks_like(sd, model)}"
            )
    for key, tensor in target.items():
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(tensor)
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in sd.items()}, strict=True)
    info = infer_variant(sd)
    log.info("loaded %s from %s", info.describe(), path)
    return info


def _looks_like(sd: Mapping[str, torch.Tensor], model: nn.Module) -> str:
    """'; the file looks like X, the model is Y' (empty when the file's architecture is unreadable)."""
    try:
        info = infer_variant(sd)
    except ModelFileError:
        return ""
    backbone = getattr(model, "backbone", None)
    embed_dim = getattr(backbone, "embed_dim", None)
    depth = len(getattr(backbone, "blocks", ()))
    variant = getattr(model, "variant", None)
    name = f"ViTPose-{variant.upper()}" if variant and variant != "custom" else "a ViTPose"
    model_desc = (
        f"{name} (embed_dim {embed_dim}, depth {depth}), {getattr(model, 'decoder_kind', '?')} decoder, "
        f"{getattr(model, 'num_keypoints', '?')} keypoints"
    )
    return f"; the file looks like {info.describe()}, the model is {model_desc}"
