# One-command set-up: every target creates .venv and installs what it needs first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SHARED  ?= $(or $(POSESTREAM_SHARED),$(abspath ../shared))
OUT     ?= out
export POSESTREAM_SHARED := $(SHARED)

.PHONY: install install-test demo test bench clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install -q -e .

install-test: $(BIN)/activate
	$(BIN)/pip install -q -e ".[test,ray]"

# The main job: detect, track and estimate every person of a real clip; annotated video + keypoints.
# No ViTPose weights can be downloaded here, so the demo exports ViTPose-S with random weights
# (say so loudly); with a real checkpoint use --weights vitpose-s-coco.pth instead of none.
demo: install
	$(BIN)/posestream export --variant s --weights none --out $(OUT)/vitpose-s-random.onnx
	$(BIN)/posestream run $(SHARED)/media/pose2sim_multiperson_cam01.mp4 \
	    --detector $(SHARED)/models/yolox_nano_coco.onnx --pose-model $(OUT)/vitpose-s-random.onnx \
	    --out-video $(OUT)/demo.mp4 --out-json $(OUT)/demo.jsonl --out-csv $(OUT)/demo.csv

test: install-test
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/posestream bench --variants s b --out-dir reports/bench

clean:
	rm -rf $(VENV) $(OUT) reports .pytest_cache
