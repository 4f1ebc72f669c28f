"""COCO-format person-keypoint datasets: load, validate, and hand out person instances.

One file (``person_keypoints.json`` style) and one image folder. Everything a user can get wrong in
such a pair is checked once, on load, and reported as :class:`~posestream.errors.InputError` with a
one-line message that names the file and the record (image id / annotation id):

- the annotations file is missing, empty, not JSON, or lacks ``images`` / ``annotations`` /
  ``categories``;
- no category carries a ``keypoints`` list, or no (non-crowd) annotation has a labelled keypoint;
- an annotation's ``keypoints`` array is not ``3 * K`` long for its category's K names;
- a ``bbox`` is degenerate or lies outside its image (``BOX_TOLERANCE_PX`` of float slack);
- an image listed in the file is missing on disk.

Keypoint arrays follow COCO: ``(K, 3)`` rows of ``x, y, v`` in pixels with visibility ``v`` 0 (not
labelled), 1 (labelled, occluded), 2 (labelled, visible).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.errors import InputError

__all__ = [
    "COCO_SIGMAS",
    "BOX_TOLERANCE_PX",
    "KeypointCategory",
    "ImageRecord",
    "PersonInstance",
    "KeypointDataset",
    "load_keypoint_dataset",
    "flip_pairs_from_names",
]

log = logging.getLogger(__name__)

# Per-keypoint OKS sigmas of the COCO person category (the values pycocotools hard-codes).
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}  # fmt: skip

# COCO boxes are floats rounded to 2 decimals; allow this much overhang before calling a box "outside".
BOX_TOLERANCE_PX = 1.0


def flip_pairs_from_names(names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` with ``names[i] == 'left_X'`` and ``names[j] == 'right_X'``.

    Works for any keypoint set whose mirrored joints follow the ``left_`` / ``right_`` naming of COCO.
    A ``left_X`` without its ``right_X`` stays where it is under a flip.
    """
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        if name.startswith("left_") and ("right_" + name[5:]) in index:
            pairs.append((i, index["right_" + name[5:]]))
    return pairs


@dataclass(frozen=True)
class KeypointCategory:
    """The keypoint definition of one category.

    keypoints: K names; skeleton: 0-based index pairs; sigmas: (K,) float64 OKS sigmas, from the
    category's own ``sigmas`` field when present, else the COCO value of each name.
    """

    id: int
    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: np.ndarray

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_pairs(self) -> list[tuple[int, int]]:
        return flip_pairs_from_names(self.keypoints)

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) int64 permutation: joint ``k`` of a mirrored person is joint ``flip_index[k]``."""
        perm = np.arange(self.num_keypoints)
        for i, j in self.flip_pairs:
            perm[i], perm[j] = j, i
        return perm

    def to_json(self) -> dict:
        """The category as COCO JSON (1-based skeleton)."""
        return {
            "id": self.id,
            "name": self.name,
            "supercategory": self.name,
            "keypoints": list(self.keypoints),
            "skeleton": [[a + 1, b + 1] for a, b in self.skeleton],
            "sigmas": [float(s) for s in self.sigmas],
        }


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class PersonInstance:
    """One annotated person.

    xyxy: (4,) float32 box in pixels; keypoints: (K, 3) float32 ``x, y, v``; area: the annotation's
    ``area`` (segment area, what OKS normalises by).
    """

    ann_id: int
    image_id: int
    xyxy: np.ndarray
    keypoints: np.ndarray
    area: float
    iscrowd: bool

    @property
    def num_labelled(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass(frozen=True)
class KeypointDataset:
    """A validated COCO keypoint dataset.

    ``instances`` holds every annotation of ``category`` (crowd ones too, flagged); ``coco_json`` is
    the normalised JSON (only that category, ``num_keypoints`` / ``area`` filled in) that pycocotools
    is given, so evaluation sees exactly what was validated.
    """

    images_dir: Path
    annotations_path: Path
    category: KeypointCategory
    images: dict[int, ImageRecord]
    instances: tuple[PersonInstance, ...]
    coco_json: dict

    def keypoint_instances(self) -> list[PersonInstance]:
        """Non-crowd instances with at least one labelled keypoint (what training and OKS AP use)."""
        return [p for p in self.instances if not p.iscrowd and p.num_labelled > 0]

    def instances_by_image(self) -> dict[int, list[PersonInstance]]:
        out: dict[int, list[PersonInstance]] = {i: [] for i in self.images}
        for p in self.instances:
            out[p.image_id].append(p)
        return out


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"annotations file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise InputError(f"annotations file {path} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"annotations file {path} is not valid JSON: {exc.msg} at line {exc.lineno}"
        raise InputError(message) from None
    if not isinstance(data, dict):
        raise InputError(f"annotations file {path}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise InputError(f"annotations file {path} lacks the COCO key(s) {missing}")
    return data


def _category(path: Path, data: dict, category_id: int | None) -> KeypointCategory:
    cats = [c for c in data["categories"] if c.get("keypoints")]
    if category_id is not None:
        cats = [c for c in cats if c.get("id") == category_id]
    if not cats:
        which = f"id {category_id}" if category_id is not None else "any"
        raise InputError(f"annotations file {path}: no category ({which}) has a 'keypoints' list")
    if len(cats) > 1:
        ids = [c.get("id") for c in cats]
        raise InputError(f"annotations file {path}: several keypoint categories {ids}; choose one")
    cat = cats[0]
    names = tuple(str(n) for n in cat["keypoints"])
    k = len(names)
    skeleton = []
    for pair in cat.get("skeleton", []):
        a, b = int(pair[0]) - 1, int(pair[1]) - 1  # COCO skeletons are 1-based
        if not (0 <= a < k and 0 <= b < k):
            raise InputError(
                f"annotations file {path}: category {cat['id']} skeleton pair {pair} is not in 1..{k}"
            )
        skeleton.append((a, b))
    if "sigmas" in cat:
        sigmas = np.asarray(cat["sigmas"], np.float64)
        if sigmas.shape != (k,):
            raise InputError(
                f"annotations file {path}: category {cat['id']} has {sigmas.size} sigmas for {k} keypoints"
            )
    else:
        unknown = [n for n in names if n not in COCO_SIGMAS]
        if unknown:
            raise InputError(
                f"annotations file {path}: category {cat['id']} keypoints {unknown} have no known OKS sigma; "
                "add a 'sigmas' list (one per keypoint) to the category"
            )
        sigmas = np.array([COCO_SIGMAS[n] for n in names], np.float64)
    return KeypointCategory(int(cat["id"]), str(cat.get("name", "")), names, tuple(skeleton), sigmas)


def load_keypoint_dataset(
    images_dir: str | Path,
    annotations_path: str | Path,
    *,
    category_id: int | None = None,
    check_images_exist: bool = True,
) -> KeypointDataset:
    """Load and validate a COCO keypoint dataset; raise InputError naming the first bad record."""
    images_dir, path = Path(images_dir), Path(annotations_path)
    if not images_dir.is_dir():
        raise InputError(f"images folder {images_dir} does not exist")
    data = _read_json(path)
    category = _category(path, data, category_id)
    k = category.num_keypoints

    images: dict[int, ImageRecord] = {}
    for rec in data["images"]:
        try:
            image = ImageRecord(
                int(rec["id"]), str(rec["file_name"]), images_dir / str(rec["file_name"]),
                int(rec["width"]), int(rec["height"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"annotations file {path}: image record {rec.get('id')} lacks {exc}") from None
        if check_images_exist and not image.path.is_file():
            raise InputError(f"image id {image.id}: file {image.path} (listed in {path}) is missing on disk")
        images[image.id] = image

    instances = []
    anns_json = []
    for ann in data["annotations"]:
        if ann.get("category_id") != category.id:
            continue
        ann_id = ann.get("id")
        where = f"annotations file {path}: annotation id {ann_id}"
        if ann.get("image_id") not in images:
            raise InputError(f"{where} refers to image id {ann.get('image_id')}, which is not in 'images'")
        image = images[ann["image_id"]]
        kpts = np.asarray(ann.get("keypoints", []), np.float32)
        if kpts.ndim != 1 or kpts.size != 3 * k:
            raise InputError(
                f"{where} (image {image.id}) has {kpts.size} keypoint values; category '{category.name}' "
                f"has {k} keypoints, so expected {3 * k}"
            )
        kpts = kpts.reshape(k, 3)
        bbox = np.asarray(ann.get("bbox", []), np.float64)
        if bbox.shape != (4,):
            raise InputError(f"{where} (image {image.id}) has bbox {ann.get('bbox')}, expected [x, y, w, h]")
        x, y, w, h = bbox
        num_labelled = int((kpts[:, 2] > 0).sum())
        if num_labelled > 0 and (w <= 0 or h <= 0):
            raise InputError(f"{where} (image {image.id}) has an empty bbox {bbox.tolist()}")
        tol = BOX_TOLERANCE_PX
        if x < -tol or y < -tol or x + w > image.width + tol or y + h > image.height + tol:
            raise InputError(
                f"{where} bbox {bbox.round(2).tolist()} (xywh) lies outside image {image.id} "
                f"({image.width}x{image.height})"
            )
        area = float(ann.get("area", w * h))
        iscrowd = bool(ann.get("iscrowd", 0))
        xyxy = np.array([x, y, x + w, y + h], np.float32)
        instances.append(PersonInstance(int(ann_id), image.id, xyxy, kpts, area, iscrowd))
        anns_json.append(
            {**{key: val for key, val in ann.items() if key != "segmentation" or iscrowd},
             "num_keypoints": num_labelled, "area": area, "iscrowd": int(iscrowd)}
        )  # fmt: skip

    if not any(not p.iscrowd and p.num_labelled > 0 for p in instances):
        raise InputError(
            f"annotations file {path} has no non-crowd annotation with labelled keypoints "
            f"in category {category.id} ('{category.name}')"
        )
    coco_json = {
        "images": [{"id": i.id, "file_name": i.file_name, "width": i.width, "height": i.height}
                   for i in images.values()],
        "annotations": anns_json,
        "categories": [category.to_json()],
    }  # fmt: skip
    log.info(
        "%s: %d images, %d annotations (%d with keypoints), %d keypoints per person",
        path, len(images), len(instances), sum(p.num_labelled > 0 for p in instances), k,
    )
    return KeypointDataset(images_dir, path, category, images, tuple(instances), coco_json)
