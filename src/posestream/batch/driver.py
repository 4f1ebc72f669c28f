"""The batch driver: plan (resume), spread the videos over Ray tasks, follow them, summarise.

Without an address, Ray starts on this machine (``workers`` x ``cpus_per_task`` CPUs) and stops at
the end; with one (``host:port`` of a running cluster, or ``ray://host:10001`` through Ray
Client) the tasks run on that cluster, which must see the inputs and OUT_DIR at the same paths (a
shared file system). Each video is one task declaring ``num_cpus`` / ``num_gpus``; its CPU share
becomes the run's thread budget (``pipeline.cores``: inference, decoder and encoder threads; OpenCV
and PyTorch too), so tasks do not oversubscribe the machine.
A task whose worker process dies is retried by Ray (``retries``); a video that fails is recorded
and the batch goes on. Ctrl-C cancels the running tasks (their hidden folders are removed) and
keeps the finished videos.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from posestream.batch.inputs import VideoJob
from posestream.batch.layout import OutputLayout
from posestream.batch.worker import TaskOptions, config_digest, run_video, video_config
from posestream.config import Config
from posestream.errors import ConfigError, InputError

__all__ = ["BatchOptions", "run_batch", "board_name", "start_local_ray", "NAMESPACE", "ProgressBoard"]

log = logging.getLogger(__name__)

NAMESPACE = "posestream"
POLL_S = 0.5
CANCEL_WAIT_S = 30.0


@dataclass(frozen=True)
class BatchOptions:
    out_dir: str
    address: str | None = None  # None: a local Ray on this machine
    workers: int | None = None  # local Ray only: tasks at once (default: CPUs // cpus_per_task)
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0  # fractional: 0.25 = four tasks share a GPU
    retries: int = 2  # re-runs of a task whose worker process died
    force: bool = False  # redo finished videos
    outputs: tuple[str, ...] = ("video", "json", "csv", "angles")
    progress: bool = False
    angle_threshold: float = 0.3
    zero_phase_hz: float | None = None


def board_name(out_dir: Any) -> str:
    """Name of the progress board actor of a batch writing into ``out_dir`` (namespace NAMESPACE)."""
    return f"posestream-batch:{OutputLayout(out_dir).out_dir}"


class ProgressBoard:
    """Per-video progress, reported by the tasks and read by the driver (and tests): a Ray actor.

    ``videos[name]``: attempts (task starts: 2 after one retry), pid of the worker running it,
    frames done and total frames (None until known).
    """

    def __init__(self) -> None:
        self.videos: dict[str, dict[str, Any]] = {}

    def started(self, name: str, pid: int) -> None:
        video = self.videos.setdefault(name, {"attempts": 0})
        video.update(attempts=video["attempts"] + 1, pid=pid, frames=0, total=None)

    def frames(self, name: str, frames: int, total: int | None) -> None:
        self.videos.setdefault(name, {"attempts": 0}).update(frames=frames, total=total)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self.videos


# --------------------------------------------------------------------------- plan
def run_batch(jobs: list[VideoJob], config: Config, options: BatchOptions) -> int:
    """Run the batch; print and write the summary. Returns 0 (all done), 1 (some failed), 130 (stopped)."""
    t0 = time.monotonic()
    layout = OutputLayout(options.out_dir)
    digests = {}
    for job in jobs:  # every manifest option is checked before anything is written
        try:
            digests[job.name] = config_digest(video_config(config, job, 1))
        except ConfigError as exc:
            raise ConfigError(f"{job.origin}: {exc}") from None  # only manifest rows add options
    foreign = [job.name for job in jobs if layout.foreign(job.name)]
    if foreign:
        raise InputError(f"'{layout.final(foreign[0])}' exists and is not a batch result: move it away or "
                         "choose another --out-dir")  # fmt: skip
    if options.address:
        _check_reachable(options.address)
    layout.open()
    rows: dict[str, dict[str, Any]] = {}
    interrupted = False
    try:
        todo = []
        for job in jobs:
            if layout.is_done(job.name) and not options.force:
                record = layout.read_record(job.name)
                if record.get("config") != digests[job.name]:
                    log.warning("'%s' was finished with other settings; --force redoes it", job.name)
                rows[job.name] = {**record, "status": "skipped"}
            else:
                todo.append(job)
        if todo:
            interrupted = _run_on_ray(todo, config, options, layout, rows)
    finally:
        layout.close()
    ordered = [rows.get(job.name) or _record(job, "cancelled", "not started") for job in jobs]
    totals = _totals(ordered, time.monotonic() - t0, interrupted)
    json_path, csv_path = layout.write_summary(ordered, totals)
    _print_summary(ordered, totals, json_path, csv_path)
    if interrupted:
        return 130
    return 0 if totals["failed"] == 0 and totals["cancelled"] == 0 else 1


def _record(job: VideoJob, status: str, error: str | None) -> dict[str, Any]:
    return {"name": job.name, "source": str(job.source), "status": status, "frames": 0, "fps": None,
            "people": None, "wall_s": None, "error": error}  # fmt: skip


def _totals(rows: list[dict[str, Any]], wall_s: float, interrupted: bool) -> dict[str, Any]:
    count = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed", "cancelled")}
    frames = sum(r["frames"] or 0 for r in rows if r["status"] == "done")
    return {"videos": len(rows), **count, "frames_processed": frames, "wall_s": round(wall_s, 3),
            "fps": round(frames / wall_s, 2) if wall_s > 0 else None, "interrupted": interrupted}  # fmt: skip


# --------------------------------------------------------------------------- Ray
def _run_on_ray(todo: list[VideoJob], config: Config, options: BatchOptions, layout: OutputLayout,
                rows: dict[str, dict[str, Any]]) -> bool:  # fmt: skip
    """Run ``todo`` as Ray tasks, filling ``rows``. Returns True when stopped by Ctrl-C."""
    try:
        import ray
    except ImportError:
        raise InputError("posestream batch needs Ray: pip install 'posestream[ray]'") from None
    owned = not ray.is_initialized()
    if owned:
        _init_ray(ray, options)
    board = None
    try:
        board = ray.remote(ProgressBoard).options(name=board_name(layout.out_dir), namespace=NAMESPACE,
                                                  num_cpus=0).remote()  # fmt: skip
        threads = max(1, int(options.cpus_per_task))
        task_options = TaskOptions(out_dir=str(layout.out_dir), threads=threads, outputs=options.outputs,
                                   angle_threshold=options.angle_threshold, zero_phase_hz=options.zero_phase_hz)  # fmt: skip
        # max_calls=0: the worker process stays for the next video (Ray's default for GPU tasks is
        # a fresh process per task, which would load the models once per video).
        remote = ray.remote(max_calls=0)(run_video)
        resources = {"num_cpus": options.cpus_per_task, "num_gpus": options.gpus_per_task,
                     "max_retries": options.retries, "retry_exceptions": False}  # fmt: skip
        config_ref = ray.put(config)
        refs = {}
        for job in todo:
            task = remote.options(name=f"posestream:{job.name}", **resources)
            refs[task.remote(job, config_ref, task_options, board)] = job
        return _follow(ray, refs, board, options, rows)
    finally:
        if board is not None:
            ray.kill(board)
        if owned:
            ray.shutdown()


def _init_ray(ray: Any, options: BatchOptions) -> None:
    if options.address:
        try:
            ray.init(address=options.address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level=logging.WARNING)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            message = " ".join(str(exc).split())
            raise InputError(f"--address '{options.address}': cannot join the Ray cluster ({message})") from None
        return
    import os

    workers = options.workers or max(1, int((os.cpu_count() or 1) // max(options.cpus_per_task, 1e-9)))
    start_local_ray(max(1, round(workers * options.cpus_per_task)))


def _check_reachable(address: str) -> None:
    """Fail in seconds on an address nobody listens at (Ray itself retries for minutes)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"--address '{address}': nothing answers there ({exc.strerror or exc})") from None


def start_local_ray(num_cpus: int, attempts: int = 3) -> None:
    """Start Ray on this machine with ``num_cpus`` CPUs (no dashboard; workers' output not echoed).

    Ray gives its raylet a fixed 30 s to register; on a heavily loaded machine (measured: load
    average 26 on 2 cores) that can pass, and Ray raises a bare Exception. Start again then.
    """
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=num_cpus, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)  # fmt: skip
            return
        except Exception as exc:  # noqa: BLE001 - Ray's start-up timeout has no class of its own
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise
            log.warning("Ray did not start within its 30 s (loaded machine?); starting again (%d/%d)",
                        attempt + 1, attempts)  # fmt: skip
            ray.shutdown()


def _follow(ray: Any, refs: dict[Any, VideoJob], board: Any, options: BatchOptions,
            rows: dict[str, dict[str, Any]]) -> bool:  # fmt: skip
    bar = _Bar(len(refs)) if options.progress else None
    pending = list(refs)
    snapshot: dict[str, dict[str, Any]] = {}
    # Ctrl-C cancels the batch as `run` stops its graph: also in a process that was started with
    # SIGINT ignored (a background job of a non-interactive shell passes the ignore on to Python).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            for ref in ready:
                job = refs[ref]
                rows[job.name] = _outcome(ray, ref, job)
            if bar is not None:
                snapshot = ray.get(board.snapshot.remote(), timeout=30)
                bar.show(snapshot, rows)
        return False
    except KeyboardInterrupt:
        print("posestream: interrupted: cancelling the running videos (finished ones are kept)", file=sys.stderr)
        for ref in pending:
            ray.cancel(ref, force=True)  # no-op for a task that finished before we looked
        ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S)  # their processes are gone
        for ref in pending:
            record = _outcome(ray, ref, refs[ref])
            if record["status"] != "done":  # a video completed just before Ctrl-C stays done
                record = _record(refs[ref], "cancelled", "cancelled by Ctrl-C")
            rows[refs[ref].name] = record
        return True
    finally:
        try:
            snapshot = ray.get(board.snapshot.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - the attempt counts are a nicety of the summary
            log.debug("progress board unavailable at the end", exc_info=True)
        for job in refs.values():
            if job.name in rows and job.name in snapshot:
                rows[job.name]["attempts"] = snapshot[job.name]["attempts"]
        if bar is not None:
            bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _outcome(ray: Any, ref: Any, job: VideoJob) -> dict[str, Any]:
    """The task's record, or a failure record when the task itself did not return (worker died)."""
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return _record(job, "cancelled", "cancelled")
    except ray.exceptions.RayTaskError as exc:  # a bug inside the task: its message, on one line
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return _record(job, "failed", " ".join(f"{type(cause).__name__}: {cause}".split()))
    except ray.exceptions.RayError as exc:  # worker died on every attempt, node lost, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _record(job, "failed", f"{type(exc).__name__}: {first}")


class _Bar:
    """One bar over all videos: frames done / frames known, videos finished in the postfix."""

    def __init__(self, videos: int) -> None:
        from tqdm import tqdm

        self.videos = videos
        self.bar = tqdm(total=None, unit="frame", desc="batch", dynamic_ncols=True, file=sys.stderr)

    def show(self, snapshot: dict[str, dict[str, Any]], rows: dict[str, dict[str, Any]]) -> None:
        done = sum(v.get("frames") or 0 for v in snapshot.values())
        totals = [v.get("total") for v in snapshot.values()]
        if totals and all(t is not None for t in totals):
            self.bar.total = sum(totals)
        finished = sum(1 for r in rows.values() if r["status"] != "skipped")
        failed = sum(1 for r in rows.values() if r["status"] == "failed")
        self.bar.set_postfix_str(f"videos {finished}/{self.videos}" + (f", {failed} failed" if failed else ""),
                                 refresh=False)  # fmt: skip
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _print_summary(rows: list[dict[str, Any]], totals: dict[str, Any], json_path: Any, csv_path: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"posestream batch: {totals['done']} done, {totals['skipped']} skipped, {totals['failed']} failed"
             + (f", {totals['cancelled']} cancelled" if totals["cancelled"] else "")
             + f" in {totals['wall_s']:.1f} s")  # fmt: skip
    table = Table(title=title)
    for col in ("video", "status", "frames", "fps", "people", "wall s", "error"):
        table.add_column(col, justify="left" if col in ("video", "status", "error") else "right")
    for r in rows:
        table.add_row(r["name"], r["status"], str(r["frames"] or 0), _fmt(r["fps"]), _fmt(r["people"]),
                      _fmt(r["wall_s"]), r["error"] or "")  # fmt: skip
    console = Console(stderr=True, width=max(120, Console(stderr=True).width))
    console.print(table)
    for r in rows:  # unwrapped, one line each, for logs and grep
        if r["status"] == "failed":
            print(f"posestream: failed: {r['name']} ({r['source']}): {r['error']}", file=sys.stderr)
    console.print(f"summary: {json_path} and {csv_path}", soft_wrap=True)


def _fmt(value: Any) -> str:
    return "" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))
