# One-command set-up: every target creates .venv and installs what it needs first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SHARED  ?= $(or $(POSESTREAM_SHARED),$(abspath ../shared))
OUT     ?= out
export POSESTREAM_SHARED := $(SHARED)

.PHONY: install install-test demo test bench clean bench-cpu bench-model bench-precision bench-peers \
        bench-detection bench-start bench-live soak

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install -q -e .

install-test: $(BIN)/activate
	$(BIN)/pip install -q -e ".[test,ray]"

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

# The CPU figures in README.md, one command each (all: `make bench-cpu`); results land in
# benchmarks/results/cpu-2core/. Run them on a quiet machine: each report records the load average.
CPU_RESULTS := benchmarks/results/cpu-2core
bench-cpu: bench-model bench-precision bench-peers bench-detection bench-start bench-live

bench-model: install  # model-only crops/s, S and B, every CPU engine/precision; graph vs stages alone
	$(BIN)/posestream bench --variants s b --backends ort-cpu ov-cpu-fp32 ov-cpu-bf16 ov-cpu-int8 --batch-sizes 1 4 8 \
	    --frames 60 --out-dir reports/bench-cpu  # its export cache stays out of the repository
	mkdir -p $(CPU_RESULTS)/bench && cp reports/bench-cpu/bench.md reports/bench-cpu/bench.json \
	    reports/bench-cpu/bench.png $(CPU_RESULTS)/bench/

bench-precision: install  # bf16 / int8 against fp32 on a ViTPose with fitted (peaked) heatmaps
	$(BIN)/python benchmarks/precision_check.py --variants s b --out $(CPU_RESULTS)/precision

bench-peers: install  # rtmlib: --no-deps, its requirements name opencv-python (would shadow headless)
	$(BIN)/pip install -q --no-deps rtmlib==0.0.16
	$(BIN)/python benchmarks/peers.py --rounds 3 --out $(CPU_RESULTS)/peers

bench-detection: install  # keypoint-driven boxes vs detect-every-frame: boxes lost/gained, detector calls
	$(BIN)/python benchmarks/cheaper_detection.py --out $(CPU_RESULTS)/detection

bench-start: install  # launch -> first processed frame, cold and with the compiled-model cache
	$(BIN)/python benchmarks/first_frame.py --out $(CPU_RESULTS)/start

bench-live: install  # sports2d at its native 30 fps as a live source, webcam preset, ViTPose-S
	$(BIN)/python benchmarks/live_check.py --out $(CPU_RESULTS)/live

# 20 minutes of the whole pipeline on a looping clip: RSS and fps every 10 s (run it on a quiet machine).
soak: install
	$(BIN)/python benchmarks/soak.py --minutes 20 --out-dir $(CPU_RESULTS)/soak

clean:
	rm -rf $(VENV) $(OUT) reports .pytest_cache
