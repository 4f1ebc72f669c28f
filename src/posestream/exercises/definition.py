"""Exercise definitions: which angle drives a rep, its thresholds, and the form rules, from YAML.

A definition (built-ins in ``exercises/builtin/*.yaml``; any file of the same shape works)::

    name: squat
    description: Bodyweight or barbell squat, filmed from the side.
    drive: knee                 # the measure whose value defines the phases (a name from MEASURES)
    start: {above: 160}         # the rest position every rep starts from and returns to
    turn: {below: 110}          # the position a rep must reach to count
    hysteresis_deg: 8           # a zone is left only this far past its threshold
    phases: {waiting: get ready, start: standing, leaving: lowering, turn: bottom, returning: rising}
    rules:                      # evaluated on each completed rep, in this order
      - cue: go deeper          # the short text shown and written when the rule fires
        measure: knee
        stat: min               # min | max over the rep's valid frames, or at_turn (the frame
        above: 95               #   where the drive was most extreme); fires when above / below

Measures (degrees, per frame; conventions of ``posestream.analytics.angles``, where every joint
angle is the interior angle at the joint, 180 = straight):

* every angle of ``ANGLE_NAMES``: ``left_knee``, ``right_elbow``, ..., ``trunk_lean`` (signed);
* ``knee``, ``hip``, ``elbow``, ``shoulder``: the mean of left and right where both are valid,
  else the one side that is (a keypoint hidden on one side does not stop the count);
* ``<joint>_min`` / ``<joint>_max``: the more / less flexed side (the front knee of a lunge, the
  working arm of a curl);
* ``<joint>_asymmetry``: ``|left - right|``, valid only where both sides are;
* ``trunk_lean_abs``: ``|trunk_lean|`` (0 = upright, whichever way the person faces).

A measure is NaN where a keypoint it needs scores below the threshold; NaN never moves a phase,
so a keypoint below the threshold never completes a rep, and a rule whose measure has no valid
frame in the rep does not fire. Every error names the file and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from posestream.analytics.angles import ANGLE_NAMES
from posestream.errors import ConfigError

__all__ = ["Zone", "FormRule", "Exercise", "MEASURES", "PHASES", "STATS", "builtin_names", "load_exercise",
           "parse_exercise"]  # fmt: skip

SIDED_JOINTS: tuple[str, ...] = ("knee", "hip", "elbow", "shoulder")
MEASURES: tuple[str, ...] = (
    ANGLE_NAMES
    + SIDED_JOINTS
    + tuple(f"{j}_{kind}" for j in SIDED_JOINTS for kind in ("min", "max", "asymmetry"))
    + ("trunk_lean_abs",)
)
# The phases of a rep, in order: waiting (not yet seen in the start position), start, leaving
# (on the way to the turn), turn, returning (on the way back; reaching start completes the rep).
PHASES: tuple[str, ...] = ("waiting", "start", "leaving", "turn", "returning")
STATS: tuple[str, ...] = ("min", "max", "at_turn")


@dataclass(frozen=True, slots=True)
class Zone:
    """A range of the drive measure: ``value >= above`` or ``value <= below`` (exactly one is set)."""

    above: float | None = None
    below: float | None = None

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    def contains(self, value: float, margin: float = 0.0) -> bool:
        """In the zone, with the threshold moved ``margin`` degrees outwards (hysteresis when leaving)."""
        if self.above is not None:
            return value >= self.above - margin
        return value <= self.below + margin  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class FormRule:
    """A cue that fires when ``stat`` of ``measure`` over a rep is above / below a threshold."""

    cue: str
    measure: str
    stat: str
    above: float | None = None
    below: float | None = None

    def fires(self, value: float) -> bool:
        if not math.isfinite(value):
            return False  # no valid frame: no feedback from missing data
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class Exercise:
    name: str
    description: str
    drive: str
    start: Zone
    turn: Zone
    hysteresis_deg: float
    phases: dict[str, str]  # phase (PHASES) -> label shown to the user
    rules: tuple[FormRule, ...]

    @property
    def measures(self) -> tuple[str, ...]:
        """The drive and every rule's measure, each once, in that order."""
        return tuple(dict.fromkeys((self.drive, *(r.measure for r in self.rules))))


DEFAULT_PHASE_LABELS = {"waiting": "get ready", "start": "start", "leaving": "going", "turn": "turn",
                        "returning": "returning"}  # fmt: skip


def builtin_names() -> list[str]:
    folder = resources.files("posestream.exercises") / "builtin"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_exercise(name_or_path: str | Path) -> Exercise:
    """A built-in by name (``squat``, ``push_up``, ``lunge``, ``biceps_curl``; ``-`` and ``_`` alike)
    or a YAML file. Raises ConfigError naming the file and field on any problem."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"exercise file '{path}' does not exist")
        try:
            return parse_exercise(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise ConfigError(f"exercise file '{path}' cannot be read: {exc.strerror}") from None
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    builtin = resources.files("posestream.exercises") / "builtin" / f"{key}.yaml"
    if not builtin.is_file():
        raise ConfigError(f"unknown exercise '{text}': not a YAML file and not a built-in "
                          f"({', '.join(builtin_names())})")  # fmt: skip
    return parse_exercise(builtin.read_text(encoding="utf-8"), f"built-in exercise '{key}'")


def parse_exercise(text: str, where: str = "exercise") -> Exercise:
    """Parse and validate one definition (see the module docstring for the fields)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    top = _mapping(data, where, "",
                   required=("name", "drive", "start", "turn"),
                   optional=("description", "hysteresis_deg", "phases", "rules"))  # fmt: skip
    name = _text(top["name"], where, "name")
    drive = _measure(top["drive"], where, "drive")
    start = _zone(top["start"], where, "start")
    turn = _zone(top["turn"], where, "turn")
    hysteresis = _number(top.get("hysteresis_deg", 5.0), where, "hysteresis_deg")
    if hysteresis < 0:
        raise ConfigError(f"{where}: hysteresis_deg must be >= 0, got {hysteresis}")
    # The two zones lie on opposite sides and stay apart even with the hysteresis margins,
    # so a value can never be in both (or leave one straight into the other by noise).
    if (start.above is None) == (turn.above is None):
        raise ConfigError(f"{where}: start and turn must be opposite ('above' for one, 'below' for the other)")
    gap = (start.threshold - turn.threshold) if start.above is not None else (turn.threshold - start.threshold)
    if gap <= 2 * hysteresis:
        raise ConfigError(f"{where}: start ({start.threshold:g}) and turn ({turn.threshold:g}) must be more than "
                          f"2 x hysteresis_deg ({hysteresis:g}) apart, on the right sides")  # fmt: skip
    labels = dict(DEFAULT_PHASE_LABELS)
    if "phases" in top:
        phases = _mapping(top["phases"], where, "phases", optional=PHASES)
        labels.update({k: _text(v, where, f"phases.{k}") for k, v in phases.items()})
    rules_raw = top.get("rules") or []
    if not isinstance(rules_raw, list):
        raise ConfigError(f"{where}: rules: expected a list, got {type(rules_raw).__name__}")
    rules = tuple(_rule(r, where, f"rules[{i}]") for i, r in enumerate(rules_raw))
    description = _text(top.get("description", ""), where, "description", allow_empty=True)
    return Exercise(name, description, drive, start, turn, hysteresis, labels, rules)


# --------------------------------------------------------------------------- field checks
def _mapping(value: Any, where: str, key: str, required: tuple[str, ...] = (),
             optional: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    label = f"{where}: {key}" if key else where
    if not isinstance(value, dict):
        raise ConfigError(f"{label}: expected a mapping, got {type(value).__name__}")
    known = set(required) | set(optional)
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise ConfigError(f"{label}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    missing = [k for k in required if k not in value]
    if missing:
        raise ConfigError(f"{label}: missing key '{missing[0]}'")
    return value


def _text(value: Any, where: str, key: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ConfigError(f"{where}: {key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key}: expected a number, got {value!r}")
    return float(value)


def _measure(value: Any, where: str, key: str) -> str:
    if value not in MEASURES:
        raise ConfigError(f"{where}: {key}: unknown measure {value!r} (known: {', '.join(MEASURES)})")
    return str(value)


def _bound(data: dict[str, Any], where: str, key: str) -> tuple[float | None, float | None]:
    if ("above" in data) == ("below" in data):
        raise ConfigError(f"{where}: {key}: give exactly one of 'above' or 'below'")
    above = _number(data["above"], where, f"{key}.above") if "above" in data else None
    below = _number(data["below"], where, f"{key}.below") if "below" in data else None
    return above, below


def _zone(value: Any, where: str, key: str) -> Zone:
    data = _mapping(value, where, key, optional=("above", "below"))
    return Zone(*_bound(data, where, key))


def _rule(value: Any, where: str, key: str) -> FormRule:
    data = _mapping(value, where, key, required=("cue", "measure", "stat"), optional=("above", "below"))
    stat = data["stat"]
    if stat not in STATS:
        raise ConfigError(f"{where}: {key}.stat: expected one of {list(STATS)}, got {stat!r}")
    above, below = _bound(data, where, key)
    return FormRule(_text(data["cue"], where, f"{key}.cue"), _measure(data["measure"], where, f"{key}.measure"),
                    stat, above, below)  # fmt: skip
