"""The API's settings table: the same config as `posestream run` gets from its flags, the same
default models, and --conf/--device as settings (the CLI maps its flags through these)."""

import argparse

import pytest

from posestream import cli
from posestream.api import SHORTCUTS, make_config, resolve_models
from posestream.errors import ConfigError, InputError


def test_conf_and_device_set_every_key_they_stand_for():
    cfg = make_config("sports", conf=0.6, device="cuda:1")
    assert cfg.detector.conf == 0.6 and cfg.tracker.new_track_threshold == 0.6
    assert cfg.tracker.track_activation_threshold <= 0.6 and cfg.detector.score_threshold <= 0.6
    assert cfg.pose.device == "cuda:1" and list(cfg.pose.providers) == list(cfg.detector.providers) == ["cuda", "cpu"]
    with pytest.raises(InputError, match=r"--conf 1.5: expected a detector score in \[0, 1\]"):
        make_config(conf=1.5)
    with pytest.raises(InputError, match="--device tpu: expected cpu, cuda or cuda:N"):
        make_config(device="tpu")
    with pytest.raises(ConfigError, match=r"unknown setting 'confidence' \(known: .*conf, detector, device"):
        make_config(confidence=0.5)


def test_cli_flags_and_api_settings_give_the_same_config():
    argv = ["run", "clip.mp4", "--config", "webcam", "--conf", "0.4", "--device", "cpu", "--smooth", "kalman",
            "--max-frames", "7", "--set", "tracker.lost_track_buffer=12"]  # fmt: skip
    args = cli._build_parser().parse_args(argv)
    from_flags = cli.config_from_args(args, out_json="a.jsonl", exercise="squat", serve="127.0.0.1:0")
    from_api = make_config("webcam", ["tracker.lost_track_buffer=12"], conf=0.4, device="cpu", smooth="kalman",
                           max_frames=7, out_json="a.jsonl", exercise="squat", serve="127.0.0.1:0")  # fmt: skip
    assert from_flags == from_api
    assert from_api.output.serve == "127.0.0.1:0" and from_api.exercise.name == "squat"
    assert set(SHORTCUTS.values()) <= {f"{s}.{k}" for s, sec in _sections(from_api) for k in sec}


def _sections(cfg):
    import dataclasses

    return [(f.name, {g.name for g in dataclasses.fields(getattr(cfg, f.name))}) for f in dataclasses.fields(cfg)]


def test_pose_and_detector_take_a_model_or_their_whole_section():
    cfg = make_config(pose="p.onnx", detector={"model": "d.onnx", "conf": 0.7})
    assert (cfg.pose.model, cfg.detector.model, cfg.detector.conf) == ("p.onnx", "d.onnx", 0.7)


def test_default_models_are_those_of_run_and_a_replay_names_none():
    cfg = resolve_models(make_config())
    assert (cfg.pose.model, cfg.detector.model) == ("vitpose-s-coco", "yolox-nano")
    replay = resolve_models(make_config(keypoints_from="earlier.jsonl"))
    assert (replay.pose.model, replay.detector.model) == (None, None)
    named = resolve_models(make_config(pose="p.onnx"))
    assert (named.pose.model, named.detector.model) == ("p.onnx", None)


def test_config_from_args_takes_no_unknown_setting():
    args = argparse.Namespace(config=None, overrides=[], detector=None, pose_model=None, variant=None, weights=None,
                              precision=None, calibration=None, smooth=None, max_frames=None, conf=None, device=None)
    with pytest.raises(ConfigError, match="unknown setting 'out_movie'"):
        cli.config_from_args(args, out_movie="a.mp4")
