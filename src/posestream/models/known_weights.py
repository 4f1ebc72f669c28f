"""The table of known ViTPose weights: every easy_ViTPose release and the transformers Hub repos.

Pure data (no I/O): ``posestream.models.weights`` resolves, downloads and verifies what this table
names; ``posestream models`` lists it. One entry per file users download:

* **easy_ViTPose** (Hugging Face Hub ``JunkyByte/easy_ViTPose``): ``torch/<set>/vitpose-<s|b|l|h>-<set>.pth``
  (mmpose 0.x key layout; the non-COCO sets are ViTPose+ experts split into plain ViTPose models) and
  ``onnx/<set>/vitpose-<size>-<set>.onnx`` (no metadata, batch fixed at 1), for the keypoint sets
  coco, coco_25, wholebody, mpii, aic, ap10k and apt36k, classic decoder, 256x192 input.
* **transformers** repos (``usyd-community/vitpose-*``): a folder with ``config.json`` and
  ``model.safetensors`` (``VitPoseForPoseEstimation``), read by ``posestream.models.hub``.

Verification (``verify``): ``"sha256"`` where the size and sha256 of the official file are known
(../shared/DATA.md: the four ViTPose-S/B COCO files); ``"hub-lfs"`` for the rest: the download asks
the Hub for the file's size and LFS sha256, checks the bytes against both, and records the checked
hash beside the cached file (``<file>.sha256``) so later runs re-check the cache against it.

Revision: easy_ViTPose files are pinned to commit ``2757e82adcccda02f9f7fef66e5a115b7be439fe``, the
snapshot independent users' Hub caches hold for ``torch/coco/``, ``torch/wholebody/`` and
``torch/multi-coco/`` files (seen in public code; these machines have no network to query the Hub).
The transformers repos are not pinned (``main``): their entries carry no hash, so the LFS check is
what vouches for the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "KnownWeights",
    "KNOWN_WEIGHTS",
    "EASY_VITPOSE_REPO",
    "EASY_VITPOSE_REVISION",
    "EASY_VITPOSE_SETS",
    "known_weights",
    "known_weight_names",
]

EASY_VITPOSE_REPO = "JunkyByte/easy_ViTPose"
EASY_VITPOSE_REVISION = "2757e82adcccda02f9f7fef66e5a115b7be439fe"
EASY_VITPOSE_SETS = ("coco", "coco_25", "wholebody", "mpii", "aic", "ap10k", "apt36k")
_SIZES = ("s", "b", "l", "h")


@dataclass(frozen=True, slots=True)
class KnownWeights:
    """One downloadable model.

    name: what users type (``vitpose-s-wholebody`` means the .pth; ``vitpose-s-wholebody.onnx``).
    kind: 'torch' (a state dict), 'onnx' (a whole exported model) or 'transformers' (a Hub repo
        folder: config.json + safetensors; ``filename`` is None).
    keypoint_set: registry name of the set the model predicts.
    variant: 's' | 'b' | 'l' | 'h'. decoder: 'classic' | 'simple'. num_experts: 6 for ViTPose+.
    size_bytes, sha256: known facts of the file, or None (then ``verify`` is 'hub-lfs').
    """

    name: str
    kind: str
    variant: str
    keypoint_set: str
    repo_id: str
    filename: str | None
    revision: str
    decoder: str = "classic"
    num_experts: int = 1
    size_bytes: int | None = None
    sha256: str | None = None

    @property
    def num_keypoints(self) -> int:
        """K of the model's keypoint set (a ViTPose+ repo: its COCO head's)."""
        from posestream.keypoints import get_keypoint_set

        return get_keypoint_set(self.keypoint_set).num_keypoints

    @property
    def verify(self) -> str:
        """'sha256' (size and hash pinned here) or 'hub-lfs' (checked against the Hub's LFS metadata)."""
        return "sha256" if self.sha256 is not None else "hub-lfs"

    @property
    def url(self) -> str:
        path = f"/resolve/{self.revision}/{self.filename}" if self.filename else f"/tree/{self.revision}"
        return f"https://huggingface.co/{self.repo_id}{path}"


# Sizes and hashes of the official files: ../shared/DATA.md.
_PINNED = {
    "vitpose-s-coco.pth": (97_217_406, "d5399f0e60a74fe8b48e8a3692dd7311aa307b552cd2412a90452308d7372c66"),
    "vitpose-b-coco.pth": (360_033_150, "776115a5187b570bde410e592a5fcd1f2763844c3acd0a3662c86b00ff0800a1"),
    "vitpose-s-coco.onnx": (97_280_548, "43b38f69aaabee526d928b345eb791c7896b536dda66f01a34c49691bf22da05"),
    "vitpose-b-coco.onnx": (360_096_343, "532bc22c4b6d84bc8e3acf0bfc64607e24d4853b152ae7109456861a7c8903c2"),
}


def _easy_vitpose() -> list[KnownWeights]:
    entries = []
    for kset in EASY_VITPOSE_SETS:
        for size in _SIZES:
            for kind, folder, ext in (("torch", "torch", "pth"), ("onnx", "onnx", "onnx")):
                name = f"vitpose-{size}-{kset}.{ext}"
                size_bytes, sha256 = _PINNED.get(name, (None, None))
                entries.append(KnownWeights(
                    name=name, kind=kind, variant=size, keypoint_set=kset, repo_id=EASY_VITPOSE_REPO,
                    filename=f"{folder}/{kset}/{name}", revision=EASY_VITPOSE_REVISION,
                    size_bytes=size_bytes, sha256=sha256,
                ))  # fmt: skip
    return entries


# transformers checkpoints on the Hub (VitPoseForPoseEstimation): name = the repo id.
_TRANSFORMERS = (
    ("usyd-community/vitpose-base", "b", "classic", 1),
    ("usyd-community/vitpose-base-simple", "b", "simple", 1),
    ("usyd-community/vitpose-base-coco-aic-mpii", "b", "classic", 1),
    ("usyd-community/vitpose-plus-small", "s", "classic", 6),
    ("usyd-community/vitpose-plus-base", "b", "classic", 6),
    ("usyd-community/vitpose-plus-large", "l", "classic", 6),
    ("usyd-community/vitpose-plus-huge", "h", "classic", 6),
)

KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    k.name: k
    for k in _easy_vitpose()
    + [
        KnownWeights(
            name=repo,
            kind="transformers",
            variant=variant,
            keypoint_set="coco",
            repo_id=repo,
            filename=None,
            revision="main",
            decoder=decoder,
            num_experts=experts,
        )  # fmt: skip
        for repo, variant, decoder, experts in _TRANSFORMERS
    ]
}


def known_weight_names() -> list[str]:
    """Every name ``--weights`` / ``--pose-model`` accept, in table order (.pth names without the suffix)."""
    return [k.name.removesuffix(".pth") for k in KNOWN_WEIGHTS.values()]


def known_weights(name: str) -> KnownWeights | None:
    """The entry for ``name`` ('vitpose-s-coco' = 'vitpose-s-coco.pth'; a Hub repo id as is), or None."""
    key = str(name).strip()
    lower = key.lower()
    for candidate in (key, lower, lower + ".pth"):
        if candidate in KNOWN_WEIGHTS:
            return KNOWN_WEIGHTS[candidate]
    return None
