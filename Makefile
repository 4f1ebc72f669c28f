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
	$(BIN)/pip install -q -e ".[test]"

# The main job: detect, track and estimate every person of a real clip; annotated video + keypoints.
# With the Hub reachable: the real default models (ViTPose-S COCO + YOLOX-Nano, fetched once into the
# cache). Without it (as on the machines this was built on): ViTPose-S with random weights, said
# loudly in the video, the files and the terminal, and the shared YOLOX-Nano.
CLIP := $(SHARED)/media/pose2sim_multiperson_cam01.mp4
demo: install
	@if $(BIN)/posestream models pull vitpose-s-coco yolox-nano; then \
	    $(BIN)/posestream run $(CLIP) --out-video $(OUT)/demo.mp4 --out-json $(OUT)/demo.jsonl --out-csv $(OUT)/demo.csv; \
	else \
	    echo "posestream demo: the models cannot be downloaded here: falling back to RANDOM weights (keypoints are meaningless)" >&2; \
	    $(BIN)/posestream export --variant s --weights none --out $(OUT)/vitpose-s-random.onnx && \
	    $(BIN)/posestream run $(CLIP) --detector $(SHARED)/models/yolox_nano_coco.onnx \
	        --pose-model $(OUT)/vitpose-s-random.onnx \
	        --out-video $(OUT)/demo.mp4 --out-json $(OUT)/demo.jsonl --out-csv $(OUT)/demo.csv; \
	fi

test: install-test
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/posestream bench --variants s b --out-dir reports/bench

clean:
	rm -rf $(VENV) $(OUT) reports .pytest_cache
