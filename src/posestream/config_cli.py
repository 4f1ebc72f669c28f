"""``posestream config show``: every config key with its value, type, range, default and meaning.

    posestream config show                         # the built-in defaults
    posestream config show --config sports tracker # the sports preset's tracker.* keys
    posestream config show --set output.crf=28     # what a run with that override would use

The rows come from the schema in ``posestream.config`` (``config_rows``), so they are always the
keys, ranges and help texts that loading a config checks against.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_action", metavar="{show}")
    show = sub.add_parser("show", help="every key: value, type, range, default and what it does (the default)")
    for p in (parser, show):
        p.add_argument("--config", help="preset name or YAML file to show (default: built-in defaults)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override one value, as `run --set` does")  # fmt: skip
    show.add_argument("prefix", nargs="?", default="", help="only keys starting with this (e.g. tracker)")


def run(args: argparse.Namespace) -> int:
    from posestream.config import config_rows, load_config

    config = load_config(args.config, args.overrides)
    prefix = getattr(args, "prefix", "") or ""
    rows = [r for r in config_rows(config) if r.key.startswith(prefix)]
    if not rows:
        from posestream.errors import ConfigError

        raise ConfigError(f"no config key starts with '{prefix[:200]}'")
    width = max(len(f"{r.key} = {r.value}") for r in rows)
    out = sys.stdout
    for r in rows:
        facts = r.type + (f", {r.range}" if r.range else "")
        if r.value != r.default:
            facts += f"; default {r.default}"
        out.write(f"{f'{r.key} = {r.value}':<{width}}  ({facts})\n    {r.help}\n")
    return 0
