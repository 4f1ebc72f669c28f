"""``KeypointSet``: the vocabulary a pose model speaks (names, skeleton, flip pairs, OKS sigmas, angles).

A set travels with the model (``backend.info.keypoint_set``, the ONNX metadata, training
checkpoints) so render, sinks, smoothing, analytics, evaluation and training stay generic: none of
them knows a keypoint name. Everything is indices into ``keypoints`` (0-based) once built; angle
definitions name keypoints and are resolved (and checked) when the set is made.

Serialised form (``to_json`` / ``from_json``), written into ONNX metadata as
``posestream.keypoint_set`` and into ``posestream train`` checkpoints::

    {"name": "coco", "keypoints": [...K names...], "skeleton": [[a, b], ...],
     "limb_colors": [[b, g, r], ...], "flip_pairs": [[left, right], ...], "sigmas": [...K...] | null,
     "angles": [{"name": "left_knee", "kind": "joint", "points": ["left_hip", "left_knee", "left_ankle"]},
                {"name": "trunk_lean", "kind": "segment", "start": [...], "end": [...]}],
     "source": "..."}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "KeypointSet",
    "JointAngle",
    "SegmentAngle",
    "flip_pairs_by_name",
    "side_of",
    "side_colors",
    "SIDE_COLORS_BGR",
]

# Limb colours by body side (BGR): left green, right orange, centre blue, as most pose viewers do.
SIDE_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "left": (0, 200, 0),
    "right": (0, 128, 255),
    "center": (255, 153, 51),
}
_LEFT_PREFIXES = ("left_", "l_")
_RIGHT_PREFIXES = ("right_", "r_")


def side_of(name: str) -> str:
    """'left' | 'right' | 'center' from a keypoint name (``left_knee``, ``L_Eye`` ...)."""
    lower = name.lower()
    if lower.startswith(_LEFT_PREFIXES):
        return "left"
    if lower.startswith(_RIGHT_PREFIXES):
        return "right"
    return "center"


def _mirror_name(name: str) -> str | None:
    """The name of the mirrored keypoint by naming convention (``left_x`` <-> ``right_x``), or None."""
    for left, right in zip(_LEFT_PREFIXES, _RIGHT_PREFIXES):
        for a, b in ((left, right), (right, left)):
            if name.lower().startswith(a):
                head = name[: len(a)]
                swapped = b if head.islower() else b.upper() if head.isupper() else b.capitalize()
                return swapped + name[len(a) :]
    return None


def flip_pairs_by_name(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """``(left, right)`` index pairs of keypoints whose names mirror each other.

    ``left_x`` / ``right_x`` and ``L_x`` / ``R_x`` (any case of the prefix, the rest identical). A
    keypoint without its mirror stays in place under a horizontal flip.
    """
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        if side_of(name) != "left":
            continue
        mirror = _mirror_name(name)
        if mirror is not None and mirror in index:
            pairs.append((i, index[mirror]))
    return tuple(pairs)


def side_colors(
    names: Sequence[str], skeleton: Iterable[tuple[int, int]]
) -> tuple[tuple[int, int, int], ...]:
    """One BGR colour per skeleton edge: left if both ends are left, right if both right, else centre."""
    colors = []
    for a, b in skeleton:
        sides = {side_of(names[a]), side_of(names[b])}
        colors.append(SIDE_COLORS_BGR[sides.pop() if len(sides) == 1 else "center"])
    return tuple(colors)


@dataclass(frozen=True, slots=True)
class JointAngle:
    """Interior angle at ``points[1]`` between ``points[0]`` and ``points[2]``, degrees in [0, 180].

    180 = the three keypoints in a line (a straight knee), smaller = more flexed. Unsigned, so it does
    not depend on facing or mirroring.
    """

    name: str
    points: tuple[str, str, str]
    kind: str = field(default="joint", init=False)


@dataclass(frozen=True, slots=True)
class SegmentAngle:
    """Signed angle of the segment from mean(``start``) to mean(``end``), from the image's upward vertical.

    Degrees in (-180, 180]: 0 = pointing up, +90 = pointing to the image's +x. Used for trunk lean
    (hip midpoint -> shoulder midpoint).
    """

    name: str
    start: tuple[str, ...]
    end: tuple[str, ...]
    kind: str = field(default="segment", init=False)


Angle = JointAngle | SegmentAngle


@dataclass(frozen=True, slots=True)
class KeypointSet:
    """One keypoint vocabulary. Validated on construction (a ValueError names the set and the field).

    name: registry name ('coco', 'wholebody', ...) or a free name for a custom set.
    keypoints: K names, in the order of the model's heatmap channels.
    skeleton: (a, b) index pairs drawn as limbs; limb_colors: one BGR triple per skeleton edge
        (default: by body side, see ``side_colors``).
    flip_pairs: (left, right) index pairs swapped by a horizontal flip (training, flip test).
    sigmas: K OKS sigmas (the per-keypoint falloff of the COCO keypoint metric), None when unknown.
    angles: joint / segment angle definitions over keypoint names (analytics); () = none.
    source: where the definition comes from (a paper or the dataset's page).
    """

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] | None = None
    limb_colors: tuple[tuple[int, int, int], ...] | None = None
    angles: tuple[Angle, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        set_attr = object.__setattr__  # frozen: normalise the containers once, here
        set_attr(self, "keypoints", tuple(str(n) for n in self.keypoints))
        set_attr(self, "skeleton", tuple((int(a), int(b)) for a, b in self.skeleton))
        set_attr(self, "flip_pairs", tuple((int(a), int(b)) for a, b in self.flip_pairs))
        if self.sigmas is not None:
            set_attr(self, "sigmas", tuple(float(s) for s in self.sigmas))
        self._validate_pairs()
        colors = side_colors(self.keypoints, self.skeleton) if self.limb_colors is None else self.limb_colors
        set_attr(self, "limb_colors", tuple(tuple(int(c) for c in color) for color in colors))
        set_attr(self, "angles", tuple(self.angles))
        self._validate()

    def _validate_pairs(self) -> None:
        where = f"keypoint set {self.name!r}"
        k = len(self.keypoints)
        if not self.name:
            raise ValueError("keypoint set: name is empty")
        if k == 0:
            raise ValueError(f"{where}: no keypoints")
        if len(set(self.keypoints)) != k:
            dup = sorted({n for n in self.keypoints if self.keypoints.count(n) > 1})
            raise ValueError(f"{where}: duplicate keypoint names {dup}")
        for field_name, pairs in (("skeleton", self.skeleton), ("flip_pairs", self.flip_pairs)):
            for a, b in pairs:
                if not (0 <= a < k and 0 <= b < k) or a == b:
                    raise ValueError(
                        f"{where}: {field_name} pair ({a}, {b}) is not two distinct indices in 0..{k - 1}"
                    )

    def _validate(self) -> None:
        where = f"keypoint set {self.name!r}"
        k = len(self.keypoints)
        flipped = [i for pair in self.flip_pairs for i in pair]
        if len(set(flipped)) != len(flipped):
            raise ValueError(f"{where}: a keypoint appears in more than one flip pair")
        if len(self.limb_colors) != len(self.skeleton) or any(
            len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.limb_colors
        ):
            raise ValueError(f"{where}: limb_colors must be one BGR triple (0-255) per skeleton edge")
        if self.sigmas is not None and (
            len(self.sigmas) != k or not all(math.isfinite(s) and s > 0 for s in self.sigmas)
        ):
            raise ValueError(f"{where}: sigmas must be {k} positive numbers, got {len(self.sigmas)}")
        index = set(self.keypoints)
        for angle in self.angles:
            names = angle.points if isinstance(angle, JointAngle) else angle.start + angle.end
            if isinstance(angle, SegmentAngle) and not (angle.start and angle.end):
                raise ValueError(f"{where}: segment angle {angle.name!r} needs start and end keypoints")
            unknown = [n for n in names if n not in index]
            if unknown:
                raise ValueError(f"{where}: angle {angle.name!r} uses unknown keypoints {unknown}")
        angle_names = [a.name for a in self.angles]
        if len(set(angle_names)) != len(angle_names):
            raise ValueError(f"{where}: duplicate angle names")

    # ------------------------------------------------------------------------------- derived views

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, name: str) -> int:
        """0-based index of keypoint ``name`` (ValueError naming the set when absent)."""
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise ValueError(f"keypoint set {self.name!r} has no keypoint {name!r}") from None

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) int64 permutation: keypoint ``k`` of a mirrored person is keypoint ``flip_index[k]``."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    @property
    def sigma_array(self) -> np.ndarray | None:
        """(K,) float64 OKS sigmas, or None when the set has none."""
        return None if self.sigmas is None else np.asarray(self.sigmas, np.float64)

    @property
    def angle_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.angles)

    def describe(self) -> str:
        """'wholebody (133 keypoints)'."""
        return f"{self.name} ({self.num_keypoints} keypoints)"

    # ------------------------------------------------------------------------------- serialisation

    def to_json(self) -> dict:
        """Plain JSON-able dict (see the module docstring)."""
        angles = []
        for a in self.angles:
            if isinstance(a, JointAngle):
                angles.append({"name": a.name, "kind": "joint", "points": list(a.points)})
            else:
                angles.append({"name": a.name, "kind": "segment", "start": list(a.start), "end": list(a.end)})
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "skeleton": [list(p) for p in self.skeleton],
            "limb_colors": [list(c) for c in self.limb_colors],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "sigmas": None if self.sigmas is None else list(self.sigmas),
            "angles": angles,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping, source: str = "keypoint set") -> KeypointSet:
        """Inverse of ``to_json``. ValueError naming ``source`` for anything malformed."""
        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            angles: list[Angle] = []
            for a in data.get("angles") or ():
                if a["kind"] == "joint":
                    points = tuple(str(p) for p in a["points"])
                    angles.append(JointAngle(str(a["name"]), points))  # type: ignore[arg-type]
                elif a["kind"] == "segment":
                    angles.append(SegmentAngle(str(a["name"]), tuple(a["start"]), tuple(a["end"])))
                else:
                    raise ValueError(f"angle {a.get('name')!r}: unknown kind {a['kind']!r}")
            colors = data.get("limb_colors")
            return cls(
                name=str(data["name"]),
                keypoints=tuple(data["keypoints"]),
                skeleton=tuple(tuple(p) for p in data.get("skeleton") or ()),
                flip_pairs=tuple(tuple(p) for p in data.get("flip_pairs") or ()),
                sigmas=None if data.get("sigmas") is None else tuple(data["sigmas"]),
                limb_colors=None if colors is None else tuple(tuple(c) for c in colors),
                angles=tuple(angles),
                source=str(data.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: not a valid keypoint set ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        name: str = "custom",
        skeleton: Sequence[tuple[int, int]] = (),
        sigmas: Sequence[float] | None = None,
    ) -> KeypointSet:
        """A set for names nobody registered: flip pairs by naming convention, no angles."""
        return cls(
            name=name,
            keypoints=tuple(names),
            skeleton=tuple(skeleton),
            flip_pairs=flip_pairs_by_name(names),
            sigmas=None if sigmas is None else tuple(sigmas),
        )

    @classmethod
    def generic(cls, num_keypoints: int) -> KeypointSet:
        """``keypoint_0 .. keypoint_{K-1}``: what a model of unknown K speaks (no skeleton, no sigmas)."""
        return cls(
            name=f"generic-{num_keypoints}", keypoints=tuple(f"keypoint_{i}" for i in range(num_keypoints))
        )
