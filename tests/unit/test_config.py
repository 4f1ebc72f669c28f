import pytest

from posestream.config import Config, apply_overrides, load_config, preset_names
from posestream.errors import ConfigError


def test_defaults_and_presets_load():
    assert load_config() == Config()
    assert {"webcam", "sports", "bench"} <= set(preset_names())
    for name in preset_names():
        load_config(name)
    assert load_config("webcam").source.live == "true"
    assert load_config("sports").smooth.filter == "kalman"


def test_yaml_file_and_set_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tracker:\n  lost_track_buffer: 45\npose:\n  providers: [cuda, cpu]\n")
    cfg = load_config(str(path), ["tracker.frame_rate=60", "smooth.filter=kalman", "source.max_frames=7"])
    assert cfg.tracker.lost_track_buffer == 45 and cfg.tracker.frame_rate == 60.0
    assert cfg.pose.providers == ("cuda", "cpu")
    assert cfg.smooth.filter == "kalman" and cfg.source.max_frames == 7


@pytest.mark.parametrize(
    "text, message",
    [
        ("tracker:\n  lost_trak_buffer: 3\n", "unknown config key 'tracker.lost_trak_buffer'"),
        ("nonsense:\n  a: 1\n", "unknown config key 'nonsense'"),
        ("tracker:\n  lost_track_buffer: abc\n", "tracker.lost_track_buffer: expected an integer"),
        ("render:\n  hud: 3\n", "render.hud: expected true or false"),
        ("smooth:\n  filter: median\n", "smooth.filter: expected one of"),
        ("pose:\n  batch_buckets: [1, x]\n", r"pose.batch_buckets\[1\]: expected an integer"),
        ("tracker: 5\n", "tracker: expected a mapping"),
        ("- a\n- b\n", "expected a mapping of sections"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="unknown config 'nosuch'.*webcam"):
        load_config("nosuch")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("missing.yaml")


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["tracker.frame_rate"])
    with pytest.raises(ConfigError, match="unknown config key 'tracker.nope'"):
        load_config(None, ["tracker.nope=1"])


def test_apply_overrides_type_checks():
    cfg = apply_overrides(Config(), {"detector.model": "x.onnx", "source.realtime": True})
    assert cfg.detector.model == "x.onnx" and cfg.source.realtime is True
    with pytest.raises(ConfigError, match="source.max_frames"):
        apply_overrides(Config(), {"source.max_frames": "ten"})


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        Config().tracker.frame_rate = 5  # type: ignore[misc]
