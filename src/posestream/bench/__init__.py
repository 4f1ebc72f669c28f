"""``posestream bench``: honest frames per second per ViTPose variant and inference backend.

Three kinds of figure, each labelled where it is reported:

* **model-only** (``model_only.py``): crops/s of one backend call on a pre-made normalised batch;
* **end-to-end** (``end_to_end.py``): fps of a real clip through the real stage graph, beside a
  plain single-threaded loop (the peers' way: one model call per person) and the graph's stages
  run one at a time (to find the slowest stage alone, for the graph efficiency);
* the report (``report.py``): ``bench.json``, ``bench.md``, ``bench.png``.

The lead's ``posestream.cli`` registers this module and calls ``add_arguments`` and ``run``.
"""

from posestream.bench.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
