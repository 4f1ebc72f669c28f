#!/usr/bin/env bash
# The run behind benchmarks/results/cpu-2core/ (a shared 2-core CPU; why --threads 1: see that bench.md). Needs ../shared.
cd "$(dirname "$0")/.." && .venv/bin/posestream bench --variants s b --batch-sizes 1 4 8 --seconds 2 --frames 20 --threads 1 --out-dir reports/bench && cp reports/bench/bench.md reports/bench/bench.json reports/bench/bench.png benchmarks/results/cpu-2core/
