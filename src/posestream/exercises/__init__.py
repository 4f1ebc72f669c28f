"""Exercises: rep counting and form cues from joint angles (definitions in YAML, see ``definition``)."""

from posestream.exercises.counter import ExerciseAnalyzer, RepCounter, compute_measures
from posestream.exercises.definition import Exercise, FormRule, Zone, builtin_names, load_exercise, parse_exercise

__all__ = ["Exercise", "FormRule", "Zone", "ExerciseAnalyzer", "RepCounter", "compute_measures",
           "builtin_names", "load_exercise", "parse_exercise"]
