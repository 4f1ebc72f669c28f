"""Bad model files through the real CLI: exit code 2, one line naming the file and the mismatch."""

import pytest
import torch

from posestream import cli
from posestream.models.vitpose import build_vitpose


@pytest.fixture(scope="module")
def s_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "vitpose-s.pth"
    torch.save({"state_dict": build_vitpose("s").state_dict()}, path)
    return path


def _run(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_wrong_variant(s_checkpoint, tmp_path, capsys):
    code, err = _run(["export", "--variant", "b", "--weights", str(s_checkpoint), "--out", str(tmp_path / "x.onnx")],
                     capsys)  # fmt: skip
    assert code == 2 and str(s_checkpoint) in err and len(err.splitlines()) == 1
    assert "ViTPose-S" in err and "ViTPose-B" in err  # what the file is, what the model is
    assert not (tmp_path / "x.onnx").exists()


def test_truncated_checkpoint(s_checkpoint, tmp_path, capsys):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(s_checkpoint.read_bytes()[: 5_000_000])
    code, err = _run(["export", "--variant", "s", "--weights", str(cut), "--out", str(tmp_path / "x.onnx")], capsys)
    assert code == 2 and str(cut) in err and "Traceback" not in err


def test_text_file_as_weights_and_as_onnx(shared, tmp_path, capsys):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    clip = str(shared / "media" / "mmpose_demo.mp4")
    out = ["--out-json", str(tmp_path / "o.jsonl")]  # (a run that would write nothing stops before the models)
    code, err = _run(["run", clip, "--variant", "s", "--weights", str(text), *out], capsys)
    assert code == 2 and str(text) in err and len(err.splitlines()) == 1
    onnx_text = tmp_path / "model.onnx"
    onnx_text.write_text("not a model\n")
    code, err = _run(["run", clip, "--pose-model", str(onnx_text), *out], capsys)
    assert code == 2 and str(onnx_text) in err and len(err.splitlines()) == 1


def test_missing_known_weights_offline_is_instant_and_actionable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSESTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = _run(["export", "--weights", "vitpose-s-coco", "--out", str(tmp_path / "x.onnx")], capsys)
    assert code == 2 and "vitpose-s-coco" in err and str(tmp_path / "cache") in err
