"""``bench.json`` (every figure), ``bench.md`` (tables), ``bench.png`` (bar chart) from one report dict."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_reports", "render_markdown", "DEFINITIONS"]

DEFINITIONS = {
    "model_only": (
        "model-only: one backend call on a pre-made normalised batch (seeded N(0,1), (B, 3, 256, 192)); "
        "no decode, detection, warping or heatmap decoding. ONNX Runtime: session.run, numpy in/out. "
        "PyTorch: host->device copy, forward under inference_mode, copy back to float32 numpy "
        "(synchronises CUDA). Warm-up calls first, then timed calls for --seconds (at least 3). "
        "crops/s = B / mean seconds per call."
    ),
    "graph_fps": (
        "end-to-end graph fps: frames / wall seconds of Graph.run() over the first --frames frames of the "
        "clip "
        "(decode -> detect -> track -> pose (one batched call per frame) -> render -> video; lossless edges, "
        "every frame processed), from the first read to the video finalised. Detector and pose model warmed "
        "on frame 0 beforehand, untimed."
    ),
    "sequential_fps": (
        "sequential fps: the same stage objects called in turn on one thread (the peers' loop), with ONE "
        "model call per person (batch 1). Same decode, detector, tracker, pre/post-processing, renderer and "
        "encoder; only threading and batching differ."
    ),
    "stage_alone": (
        "stage alone: the graph's stages with the graph's batching, run one at a time in a loop; each "
        "stage's mean ms/frame is measured with nothing running beside it. 'sequential batched fps' is "
        "that loop's fps."
    ),
    "efficiency": (
        "graph efficiency = graph fps / (1000 / mean ms per frame of the slowest stage run alone). "
        "The stages alone run right after the graph (same block), built from the same config, so with the "
        "same threads (the run's CPU thread budget unless --threads is given). "
        "1.0 = the graph runs as fast as its slowest stage alone; below 1 = contention between stages "
        "(shared cores, GIL) or pipeline start/drain costs."
    ),
    "speedup": (
        "speed-up = graph fps / sequential fps; split into batching only (sequential batched / sequential) "
        "and threads only (graph / sequential batched)."
    ),
}


def write_reports(report: dict, out_dir: Path) -> tuple[Path, Path, Path | None]:
    """Write the three files; returns their paths (PNG None when there was nothing to plot)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "bench.json", out_dir / "bench.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    png_path = _plot(report, out_dir / "bench.png")
    return json_path, md_path, png_path


# ---------------------------------------------------------------------------------------- markdown
def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def render_markdown(report: dict) -> str:
    env, settings, weights = report["environment"], report["settings"], report["weights"]
    out = ["# posestream bench", ""]
    if weights["random"]:
        out += [
            "> **RANDOM WEIGHTS.** No trained ViTPose checkpoint was loaded: the timings are real, the "
            "keypoints are meaningless.",
            "",
        ]
    gpu = env["gpu"]["name"] if env.get("gpu") else "none"
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    load = report.get("load_average", {})
    out += [
        f"- machine: {env['cpu']}, {env['usable_cores']} usable cores, {env['ram_gib']} GiB RAM, GPU: {gpu}",
        f"- onnxruntime providers: {', '.join(env['onnxruntime_providers'])}",
        f"- versions: {versions}",
        f"- commit: {env.get('git_commit') or 'unknown'}"
        + (" (plus uncommitted changes)" if env.get("git_dirty") else ""),
        f"- load average (1/5/15 min) at start {load.get('start')}, at end {load.get('end')}"
        + (" (a shared machine: figures are noisy)" if _busy(load, env) else ""),
        f"- settings: threads {settings['threads']}, {settings['seconds']} s per model-only cell, "
        f"{settings['warmup']} warm-up call(s), {settings['frames']} frames of `{settings['clip']}`, "
        f"detector `{settings['detector']}`",
        f"- command: `{report['command']}`",
        "",
    ]

    cells = report["model_only"]["cells"]
    if cells:
        out += ["## Model-only (backend call on a pre-made normalised batch)", ""]
        out += [DEFINITIONS["model_only"], ""]
        rows = [
            [c["model"], c["backend"], (c.get("granted") or [""])[0], c["batch"], c["calls"], c["mean_ms"],
             c["p50_ms"], c["p95_ms"], c["crops_per_s"]]
            for c in cells if c["status"] == "ok"
        ]  # fmt: skip
        header = ["model", "backend", "granted", "batch", "calls", "mean ms", "p50 ms", "p95 ms", "crops/s"]
        out += _table(header, rows)
        out.append("")

    runs = report["end_to_end"]["runs"]
    if runs:
        out += ["## End-to-end on a real clip (graph)", "", DEFINITIONS["graph_fps"], ""]
        rows = [
            [r["model"], r["backend"], r["frames"], r["people_per_frame"], r["graph"]["fps"],
             r["graph"]["wall_s"], round(r["graph"]["model_calls"] / max(r["frames"], 1), 2)]
            for r in runs
        ]  # fmt: skip
        header = ["model", "backend", "frames", "people/frame", "graph fps", "wall s", "pose calls/frame"]
        out += _table(header, rows)
        out.append("")
        for r in runs:
            out += [f"### Per-stage latency: {r['model']} on {r['backend']} (ms per frame)", ""]
            alone = {s["name"]: s for s in r["stage_alone"]["stages"]}
            seq = {s["name"]: s for s in r["sequential"]["stages"]}
            rows = [
                [s["name"], s["p50_ms"], s["p95_ms"], f"{s['busy']:.0%}", alone[s["name"]]["mean_ms"],
                 alone[s["name"]]["p50_ms"], alone[s["name"]]["p95_ms"], seq[s["name"]]["mean_ms"]]
                for s in r["graph"]["stages"]
            ]  # fmt: skip
            header = ["stage", "graph p50", "graph p95", "graph busy", "alone mean", "alone p50", "alone p95",
                      "sequential (batch 1) mean"]  # fmt: skip
            out += _table(header, rows)
            out.append("")

        out += ["## Sequential baseline vs graph", "", DEFINITIONS["sequential_fps"], ""]
        out += [DEFINITIONS["speedup"], ""]
        rows = [
            [r["model"], r["backend"], r["sequential"]["fps"], r["stage_alone"]["fps"], r["graph"]["fps"],
             f"{r['speedup_vs_sequential']:.2f}x", f"{r['speedup_batching_only']:.2f}x",
             f"{r['speedup_threads_only']:.2f}x"]
            for r in runs
        ]  # fmt: skip
        out += _table(["model", "backend", "sequential fps (batch 1)", "sequential batched fps", "graph fps",
                       "speed-up", "from batching", "from threads"], rows)  # fmt: skip
        out.append("")

        out += ["## Graph efficiency", "", DEFINITIONS["stage_alone"], "", DEFINITIONS["efficiency"], ""]
        rows = [
            [r["model"], r["backend"], r["slowest_stage"]["name"], r["slowest_stage"]["mean_ms"],
             r["slowest_stage"]["fps"], r["graph"]["fps"], f"{r['efficiency']:.0%}", r.get("thread_budget") or ""]
            for r in runs
        ]  # fmt: skip
        out += _table(["model", "backend", "slowest stage alone", "its ms/frame", "its fps", "graph fps",
                       "efficiency", "thread budget (graph and stages alone)"], rows)  # fmt: skip
        out.append("")

    skipped = report["skipped"]
    if skipped:
        out += ["## Not measured", ""]
        out += [f"- {s['what']}: {s['reason']}" for s in skipped]
        out.append("")
    return "\n".join(out)


def _busy(load: dict, env: dict) -> bool:
    cores = env.get("usable_cores") or 1
    return any(values and values[0] > 0.75 * cores for values in (load.get("start"), load.get("end")))


# ---------------------------------------------------------------------------------------- chart
def _plot(report: dict, path: Path) -> Path | None:
    cells = [c for c in report["model_only"]["cells"] if c["status"] == "ok"]
    runs = report["end_to_end"]["runs"]
    if not cells and not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = int(bool(cells)) + int(bool(runs))
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    if cells:
        ax = axes.pop(0)
        batches = sorted({c["batch"] for c in cells})
        series = list(dict.fromkeys((c["model"], c["backend"]) for c in cells))
        width = 0.8 / len(series)
        for i, key in enumerate(series):
            values = {c["batch"]: c["crops_per_s"] for c in cells if (c["model"], c["backend"]) == key}
            xs = [j + i * width for j, b in enumerate(batches) if b in values]
            ax.bar(xs, [values[b] for b in batches if b in values], width, label=f"{key[0]} / {key[1]}")
        centres = [j + width * (len(series) - 1) / 2 for j in range(len(batches))]
        ax.set_xticks(centres, [str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_ylabel("crops/s")
        ax.set_title("model-only (pure model call)")
        ax.legend(fontsize=7)
    if runs:
        ax = axes.pop(0)
        labels = [f"{r['model']} / {r['backend']}" for r in runs]
        kinds = [("sequential (batch 1)", "sequential"), ("sequential batched", "stage_alone"),
                 ("graph", "graph")]  # fmt: skip
        width = 0.8 / len(kinds)
        for i, (name, key) in enumerate(kinds):
            xs = [j + i * width for j in range(len(runs))]
            ax.bar(xs, [r[key]["fps"] for r in runs], width, label=name)
        ax.set_xticks([j + width for j in range(len(runs))], labels, fontsize=8)
        ax.set_ylabel("frames/s")
        ax.set_title("end-to-end on the clip")
        ax.legend(fontsize=7)
    title = "posestream bench" + (" (RANDOM WEIGHTS)" if report["weights"]["random"] else "")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
