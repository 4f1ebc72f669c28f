"""``posestream models``: the known models, what the cache holds; ``posestream models pull NAME``.

    posestream models                          # table: name, kind, download size, cached files
    posestream models pull vitpose-s-coco yolox-nano   # fetch (and export) now, for offline runs

Pose models come from ``posestream.models.known_weights`` (every easy_ViTPose release and the
transformers repos), detectors from ``posestream.models.catalog.KNOWN_DETECTORS``.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_action", metavar="{list,pull}")
    sub.add_parser("list", help="known models and what the cache holds (the default)")
    pull = sub.add_parser("pull", help="download (and export) models now, for offline use")
    pull.add_argument("names", nargs="+", metavar="NAME", help="known model names (see `posestream models`)")
    pull.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8", "bf16"],
                      help="pose models: the precision to export for")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from posestream.export.on_demand import pull
    from posestream.models.catalog import cache_dir, model_rows
    from posestream.progress import format_size

    if getattr(args, "models_action", None) == "pull":
        for name in args.names:
            path = pull(name, args.precision)
            print(f"{name}: {path} ({format_size(path.stat().st_size)})")
        return 0
    rows = model_rows()
    print(f"cache: {cache_dir()}  ($POSESTREAM_CACHE)")
    width = max(len(r.name) for r in rows) + 2
    print(f"{'name':<{width}}{'kind':<10}{'download':>10}  cached")
    for r in rows:
        name = r.name + ("*" if r.default else "")
        cached = ", ".join(f"{p.name} {format_size(size)}" for p, size in r.cached) or "-"
        size = format_size(r.download_bytes) if r.download_bytes is not None else "(Hub)"
        print(f"{name:<{width}}{r.kind:<10}{size:>10}  {cached}")
        print(f"{'':<{width}}{r.title}")
    print("* the default of `posestream run` when no model is named", file=sys.stdout)
    return 0
