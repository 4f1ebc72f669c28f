"""Which models a run gets when the user names none, some, or 'none'."""

import pytest

from posestream.app import with_default_models
from posestream.config import load_config


@pytest.mark.parametrize(
    "overrides, pose, detector",
    [
        ([], "vitpose-s-coco", "yolox-nano"),  # nothing named: both defaults
        (["detector.model=d.onnx"], None, "d.onnx"),  # a detector alone: a tracking-only run
        (["detector.model=none"], "vitpose-s-coco", "none"),  # whole frame, posed by the default
        (["pose.model=p.onnx"], "p.onnx", None),  # a pose model alone: the whole frame (as documented)
        (["pose.model=none"], "none", None),  # decode (and write) only
        (["pose.variant=s"], None, None),  # PyTorch with --weights
    ],
)
def test_defaults_fill_only_what_is_not_named(overrides, pose, detector):
    config, note = with_default_models(load_config(None, overrides))
    assert (config.pose.model, config.detector.model) == (pose, detector)
    assert (note is not None) == (pose == "vitpose-s-coco")
