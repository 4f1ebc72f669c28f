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


# --------------------------------------------------------------------------- schema and ranges (issue 10)
import dataclasses  # noqa: E402
import time  # noqa: E402
import typing  # noqa: E402

from posestream.config import ConfigRow, Range, config_rows  # noqa: E402


def _numeric(tp) -> bool:
    args = typing.get_args(tp)
    return tp in (int, float) or any(_numeric(a) for a in args if a is not type(None) and a is not Ellipsis)


def test_every_key_has_help_and_every_numeric_key_a_range_that_holds_its_default():
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{section.name}.{f.name}"
            assert len(f.metadata.get("help", "")) > 10, f"{key} has no help text"
            rng = f.metadata.get("range")
            if _numeric(hints[f.name]):
                assert isinstance(rng, Range), f"{key} is numeric but states no range"
                default = getattr(cls(), f.name)
                for v in default if isinstance(default, tuple) else (default,):
                    assert v is None or v in rng, f"{key}: default {v} outside {rng.text}"


def test_presets_are_within_the_ranges():
    for name in preset_names():
        load_config(name)  # each value is checked on load


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("detector.detect_every=0", ["detector.detect_every = 0", "1 <= x <= 1000"]),
        ("detector.detect_every=-3", ["detector.detect_every = -3"]),
        ("tracker.lost_track_buffer=-1", ["tracker.lost_track_buffer = -1", "0 <= x"]),
        ("pipeline.queue_size=0", ["pipeline.queue_size = 0", "1 <= x <= 1024"]),
        ("pipeline.queue_size=-1", ["pipeline.queue_size = -1"]),
        ("source.image_fps=0", ["source.image_fps = 0.0", "0 < x"]),
        ("source.image_fps=-30", ["source.image_fps = -30.0"]),
        ("pose.threads=-2", ["pose.threads = -2", "0 <= x"]),
        ("pipeline.shutdown_timeout_s=-1", ["pipeline.shutdown_timeout_s = -1.0", "0 < x"]),
        ("output.crf=999", ["output.crf = 999", "0 <= x <= 51"]),
        ("render.keypoint_threshold=.nan", ["render.keypoint_threshold = nan", "0 <= x <= 1"]),
        ("smooth.score_threshold=.inf", ["smooth.score_threshold = inf"]),
        ("source.max_frames=0", ["source.max_frames = 0", "x >= 1"]),
        ("source.max_frames=-5", ["source.max_frames = -5"]),
        ("pose.batch_buckets=[1,0]", ["pose.batch_buckets = 0"]),
        ("output.preset=superslow", ["output.preset: expected one of", "veryslow"]),
    ],
)
def test_out_of_range_values_are_one_line_errors_naming_key_value_and_range(override, fragments):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    for fragment in fragments:
        assert fragment in message


def _alias_bomb(levels: int, width: int) -> list[str]:
    """Entries 'a: &a [l,l,...]', 'b: &b [*a,*a,...]', ...: width**levels values once expanded."""
    names = "abcdefghijklmnop"
    entries = [f"a: &a [{','.join(['l'] * width)}]"]
    for i in range(1, levels):
        entries.append(f"{names[i]}: &{names[i]} [{','.join([f'*{names[i - 1]}'] * width)}]")
    return entries


@pytest.mark.parametrize("levels, width", [(9, 9), (10, 9)])
def test_yaml_alias_bomb_is_refused_at_once_with_a_short_message(tmp_path, levels, width):
    entries = _alias_bomb(levels, width)
    text = "\n".join(entries) + "\n"
    assert len(text) < 450  # the 366- and 409-byte files were of this kind
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    for source, overrides in ((str(path), []), (None, ["pose.providers={" + ", ".join(entries) + "}"])):
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match="expands to more than") as info:
            load_config(source, overrides)
        assert time.monotonic() - t0 < 1.0 and len(str(info.value)) < 300


def test_shared_anchors_within_the_bound_still_work(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("detector:\n  providers: &p [cuda, cpu]\npose:\n  providers: *p\n")
    cfg = load_config(str(path))
    assert cfg.pose.providers == cfg.detector.providers == ("cuda", "cpu")
    path.write_text("pose: &a\n  threads: *a\n")
    with pytest.raises(ConfigError, match="contains itself"):
        load_config(str(path))


@pytest.mark.parametrize(
    "override",
    ["tracker.frame_rate=" + "x" * 5000, "pipeline.queue_size=" + "9" * 5000, "a" * 3000 + "=1",
     "pose.providers=" + "[" * 3000 + "]" * 3000],  # fmt: skip
)
def test_echoed_values_are_capped(override):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert len(str(info.value)) < 400


def test_config_rows_list_every_key_with_type_default_range_help_and_value():
    rows = config_rows()
    keys = [r.key for r in rows]
    expected = [f"{s.name}.{f.name}" for s in dataclasses.fields(Config)
                for f in dataclasses.fields(typing.get_type_hints(Config)[s.name])]  # fmt: skip
    assert keys == expected and all(isinstance(r, ConfigRow) for r in rows)
    by_key = {r.key: r for r in rows}
    assert by_key["detector.detect_every"] == ConfigRow(
        "detector.detect_every", "int", "1", "1 <= x <= 1000",
        "run the detector every N frames; the tracker predicts boxes in between", "1")  # fmt: skip
    assert by_key["source.max_frames"].type == "int | null" and by_key["source.max_frames"].default == "null"
    assert by_key["smooth.filter"].type == "one of: none, one_euro, kalman"
    assert by_key["pose.providers"].default == "[cpu]"
    shown = {r.key: r.value for r in config_rows(load_config("sports", ["detector.detect_every=3"]))}
    assert shown["detector.detect_every"] == "3" and shown["smooth.filter"] == "kalman"


def test_config_show_prints_every_key_of_a_section_with_value_range_and_help(capsys):
    from posestream import cli

    assert cli.main(["config", "show", "--config", "sports", "--set", "detector.detect_every=3", "detector"]) == 0
    out = capsys.readouterr().out
    assert "detector.detect_every = 3" in out and "1 <= x <= 1000; default 1" in out
    assert "run the detector every N frames" in out and "tracker." not in out
    assert cli.main(["config", "show", "nosuchsection"]) == 2
    assert "no config key starts with 'nosuchsection'" in capsys.readouterr().err
