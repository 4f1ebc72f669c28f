"""OpenVINO and the process's locale: loads on two threads at once must leave it as it was."""

from __future__ import annotations

import locale
import threading

import pytest

from posestream.runtime.sessions import open_session

pytest.importorskip("openvino")


def test_models_opened_on_two_threads_at_once_leave_the_locale_alone(vitpose_s_onnx, shared, tmp_path):
    """OpenVINO sets the locale to "C" and back around a model load. Two loads at once (here ViTPose-S
    and YOLOX-Nano from the compile cache, as a run opens them) left it at "C" in 8 of 18 tries
    without the lock in ``posestream.runtime.openvino``; every text stream then decoded as ASCII."""
    models = ((vitpose_s_onnx, 2), (shared / "models" / "yolox_nano_coco.onnx", 1))
    for path, threads in models:  # compile once: the tries below import cached blobs
        open_session(path, engine="openvino", threads=threads, cache_dir=tmp_path)
    before = locale.setlocale(locale.LC_CTYPE)
    for attempt in range(8):
        loaders = [threading.Thread(target=open_session, args=(path,),
                                    kwargs={"engine": "openvino", "threads": threads, "cache_dir": tmp_path})
                   for path, threads in models]  # fmt: skip
        for t in loaders:
            t.start()
        for t in loaders:
            t.join()
        assert locale.setlocale(locale.LC_CTYPE) == before, f"try {attempt}"
