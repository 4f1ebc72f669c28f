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

The category's vocabulary becomes a ``KeypointSet`` (``category.keypoint_set``): the registered set
with the same names, else one built from the category's names and skeleton. OKS sigmas: the
category's own ``sigmas`` list, else those of the registered set with the same names, else each
name's sigma in a registered set (the COCO names of a custom subset), else none; a model evaluated
on the data brings its own (``KeypointDataset.for_model``).

Both ``evaluation`` (scoring) and ``training`` (samples) read datasets through this module, which
is why it lives below both.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posestream.errors import InputError
from posestream.keypoints import KEYPOINT_SETS, KeypointSet, keypoint_set_for

__all__ = [
    "BOX_TOLERANCE_PX",
    "KeypointCategory",
    "ImageRecord",
    "PersonInstance",
    "KeypointDataset",
    "load_keypoint_dataset",
    "load_image",
]

log = logging.getLogger(__name__)

# COCO boxes are floats rounded to 2 decimals; allow this much overhang before calling a box "outside".
BOX_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class KeypointCategory:
    """The keypoint definition of one category.

    keypoint_set: names (the file's), skeleton, flip pairs, sigmas (see the module docstring).
    sigmas_from: where the sigmas came from ('annotations file', "keypoint set 'ap10k'", ...; '' = none).
    """

    id: int
    name: str
    keypoint_set: KeypointSet
    sigmas_from: str = ""

    @property
    def keypoints(self) -> tuple[str, ...]:
        return self.keypoint_set.keypoints

    @property
    def skeleton(self) -> tuple[tuple[int, int], ...]:
        return self.keypoint_set.skeleton

    @property
    def sigmas(self) -> np.ndarray | None:
        """(K,) float64 OKS sigmas, or None when nobody defined them."""
        return self.keypoint_set.sigma_array

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        return self.keypoint_set.flip_pairs

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) int64 permutation: joint ``k`` of a mirrored person is joint ``flip_index[k]``."""
        return self.keypoint_set.flip_index

    def to_json(self) -> dict:
        """The category as COCO JSON (1-based skeleton; sigmas when known)."""
        out = {
            "id": self.id,
            "name": self.name,
            "supercategory": self.name,
            "keypoints": list(self.keypoints),
            "skeleton": [[a + 1, b + 1] for a, b in self.skeleton],
        }
        if self.sigmas is not None:
            out["sigmas"] = [float(s) for s in self.sigmas]
        return out


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

    def for_model(self, keypoint_set: KeypointSet) -> KeypointDataset:
        """This dataset as seen by a model speaking ``keypoint_set`` (evaluation of that model).

        The model's set must have the category's K (InputError naming both otherwise); its names,
        flip pairs and sigmas replace the category's, except sigmas the annotations file gives
        itself (the benchmark's own definition). Differing names are logged, not refused (the same
        joints are often spelled differently, e.g. AP-10K's 'left_eye' and 'L_Eye').
        """
        cat = self.category
        if keypoint_set.num_keypoints != cat.num_keypoints:
            raise InputError(
                f"the pose model speaks keypoint set {keypoint_set.describe()}, {self.annotations_path} "
                f"defines {cat.num_keypoints} keypoints ({cat.name!r})"
            )
        if keypoint_set.keypoints != cat.keypoints:
            log.info("%s: keypoint names differ from the model's set %r; matched by position",
                     self.annotations_path, keypoint_set.name)  # fmt: skip
        sigmas, sigmas_from = keypoint_set.sigmas, f"keypoint set {keypoint_set.name!r}"
        if cat.sigmas_from == "annotations file" or sigmas is None:
            sigmas, sigmas_from = cat.keypoint_set.sigmas, cat.sigmas_from
        kset = KeypointSet(
            name=keypoint_set.name, keypoints=keypoint_set.keypoints, skeleton=keypoint_set.skeleton,
            flip_pairs=keypoint_set.flip_pairs, sigmas=sigmas, limb_colors=keypoint_set.limb_colors,
            angles=keypoint_set.angles, source=keypoint_set.source,
        )  # fmt: skip
        category = KeypointCategory(cat.id, cat.name, kset, sigmas_from)
        coco_json = {**self.coco_json, "categories": [category.to_json()]}
        return dataclasses.replace(self, category=category, coco_json=coco_json)


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
    registered = keypoint_set_for(names=names)
    sigmas, sigmas_from = None, ""
    if "sigmas" in cat:
        sigmas, sigmas_from = np.asarray(cat["sigmas"], np.float64), "annotations file"
        if sigmas.shape != (k,):
            raise InputError(
                f"annotations file {path}: category {cat['id']} has {sigmas.size} sigmas for {k} keypoints"
            )
    elif registered.name in KEYPOINT_SETS and registered.sigmas is not None:
        sigmas, sigmas_from = registered.sigma_array, f"keypoint set {registered.name!r}"
    else:
        sigmas = _sigmas_by_name(names)
        sigmas_from = "" if sigmas is None else "registered keypoint sets, by name"
    try:
        kset = KeypointSet(
            name=registered.name if registered.name in KEYPOINT_SETS else str(cat.get("name") or "custom"),
            keypoints=names,
            skeleton=tuple(skeleton),
            flip_pairs=registered.flip_pairs,
            sigmas=None if sigmas is None else tuple(sigmas),
            angles=registered.angles,
        )
    except ValueError as exc:
        raise InputError(f"annotations file {path}: category {cat['id']}: {exc}") from None
    return KeypointCategory(int(cat["id"]), str(cat.get("name", "")), kset, sigmas_from)


def _sigmas_by_name(names: tuple[str, ...]) -> np.ndarray | None:
    """Each name's OKS sigma in the first registered set that has it, or None if any name has none."""
    known: dict[str, float] = {}
    for kset in reversed(KEYPOINT_SETS.values()):  # earlier registrations win
        if kset.sigmas is not None:
            known.update(zip(kset.keypoints, kset.sigmas))
    if not all(n in known for n in names):
        return None
    return np.array([known[n] for n in names], np.float64)


def load_image(path) -> np.ndarray:
    """(H, W, 3) uint8 BGR, or InputError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"image {path} cannot be read (missing or not an image)")
    return image


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
