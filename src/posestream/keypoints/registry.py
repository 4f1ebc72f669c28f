"""The registry of known keypoint sets: adding a set is one entry in ``_SETS``.

Order matters once: ``keypoint_set_for(K)`` picks the first registered set with K keypoints when a
model says nothing but its channel count (17 -> coco, not an animal set).
"""

from __future__ import annotations

from collections.abc import Sequence

from posestream.keypoints.animal import AP10K, APT36K
from posestream.keypoints.body import AIC, COCO, COCO_25, MPII
from posestream.keypoints.keypoint_set import KeypointSet
from posestream.keypoints.wholebody import WHOLEBODY

__all__ = [
    "KEYPOINT_SETS",
    "DEFAULT_KEYPOINT_SET",
    "get_keypoint_set",
    "keypoint_set_names",
    "keypoint_set_for",
    "parse_keypoint_set",
]

_SETS: tuple[KeypointSet, ...] = (COCO, COCO_25, WHOLEBODY, MPII, AIC, AP10K, APT36K)

KEYPOINT_SETS: dict[str, KeypointSet] = {s.name: s for s in _SETS}
DEFAULT_KEYPOINT_SET = COCO


def keypoint_set_names() -> tuple[str, ...]:
    """Registered names, in registration order."""
    return tuple(KEYPOINT_SETS)


def get_keypoint_set(name: str) -> KeypointSet:
    """The registered set called ``name`` (case-insensitive); ValueError listing the known names."""
    key = str(name).strip().lower()
    if key not in KEYPOINT_SETS:
        raise ValueError(f"unknown keypoint set {name!r}: expected one of {', '.join(KEYPOINT_SETS)}")
    return KEYPOINT_SETS[key]


def keypoint_set_for(num_keypoints: int | None = None, names: Sequence[str] | None = None) -> KeypointSet:
    """The set a model most likely speaks, from its keypoint names or only its channel count.

    names: a registered set with exactly these names (in order) wins; otherwise a custom set of these
        names (``KeypointSet.from_names``: flip pairs by name, no skeleton or sigmas).
    num_keypoints: without names, the first registered set with that K, else ``KeypointSet.generic(K)``.
    """
    if names is not None:
        names = tuple(str(n) for n in names)
        for kset in KEYPOINT_SETS.values():
            if kset.keypoints == names:
                return kset
        return KeypointSet.from_names(names)
    if num_keypoints is None or num_keypoints < 1:
        raise ValueError(f"keypoint_set_for: need names or a positive keypoint count, got {num_keypoints}")
    for kset in KEYPOINT_SETS.values():
        if kset.num_keypoints == num_keypoints:
            return kset
    return KeypointSet.generic(num_keypoints)


def parse_keypoint_set(value: str | int) -> KeypointSet:
    """A ``--keypoints`` value: a registered name ('wholebody') or a keypoint count ('17' -> coco).

    A count no set has gives ``KeypointSet.generic(K)``. ValueError for anything else.
    """
    text = str(value).strip()
    if text.isdigit():
        return keypoint_set_for(int(text))
    return get_keypoint_set(text)
