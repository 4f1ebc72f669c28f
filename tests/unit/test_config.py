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


def test_presets_are_names_and_files_are_paths(tmp_path, monkeypatch):
    # A folder or file called like a preset in the working directory never replaces the preset.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sports").mkdir()
    (tmp_path / "webcam").write_text("")
    (tmp_path / "bench").write_text("smooth:\n  filter: kalman\n")
    assert load_config("sports").smooth.filter == "kalman" and load_config("sports").source.live == "false"
    assert load_config("webcam").source.live == "true"  # not the empty file
    assert load_config("bench").smooth.filter == "none"  # not ./bench
    # The same names as paths are files.
    assert load_config("./bench").smooth.filter == "kalman"
    with pytest.raises(ConfigError, match="'sports' is a folder"):
        load_config("./sports")
    (tmp_path / "mine.yml").write_text("tracker:\n  lost_track_buffer: 7\n")
    assert load_config("mine.yml").tracker.lost_track_buffer == 7  # a suffix alone makes it a path
    with pytest.raises(ConfigError, match=r"unknown config 'mine': presets are bench, sports, webcam.*\./mine\.yaml"):
        load_config("mine")


def test_verbosity_flags_are_taken_from_anywhere_on_the_line():
    from posestream.cli import split_verbosity

    assert split_verbosity(["-v", "run", "x.mp4"]) == (["run", "x.mp4"], 1, False)
    assert split_verbosity(["run", "x.mp4", "-vv", "--out-json", "o"]) == (["run", "x.mp4", "--out-json", "o"], 2, False)
    assert split_verbosity(["run", "-q", "x", "--verbose"]) == (["run", "x"], 1, True)
    assert split_verbosity(["run", "--", "-v"]) == (["run", "--", "-v"], 0, False)  # after -- it is an argument
