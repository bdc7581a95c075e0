"""CPU cost per image of the node's receive path, part by part, against the minimal receivers.

``python -m iqgate_testkit.soak.profile_receive [--images 400] [--size 256] [--repeats 3]
[--scp-only] [--cprofile]`` pushes the same files with one ``storescu`` into the node run
in this process (:class:`~iqgate.node.app.Node`: its pipeline process assesses meanwhile,
with two small random models, settings of the load campaign, logs at info to a file), and
into the reference receiver (:mod:`iqgate_testkit.soak.receivers`) with and without
``--fsync``. It prints, per receiver, the median rate and CPU ms per image (the receiving
process only); then the CPU (``time.thread_time`` of the association thread) and wall time
per image of each part of the C-STORE handler; with ``--cprofile``, the top functions of
the association and DUL threads. ``--scp-only`` runs the
:class:`~iqgate.node.ingest.scp.StorageScp` alone (no pipeline process, no models). The
pipeline process logs to stderr: ``2>/dev/null``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider

from iqgate.config import Settings
from iqgate.node.app import Node
from iqgate.node.ingest import scp as scp_module
from iqgate.node.ops.logs import configure_logging
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.store.spool import Spool
from iqgate_testkit.peers import port_open
from iqgate_testkit.soak import receivers
from iqgate_testkit.soak.harness import (
    build_models,
    cpu_seconds,
    free_port,
    push,
    wait_for,
    write_corpus,
)


class PartTimes:
    """Thread CPU and wall seconds spent in named parts (nested parts included)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.order: list[str] = []

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, timing each call under ``name``."""
        if name not in self.order:
            self.order.append(name)

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu[name] += time.thread_time() - cpu
                self.wall[name] += time.perf_counter() - wall

        return timed


class TimedProxy:
    """Times every method call of an object (a logger)."""

    def __init__(self, target: Any, name: str, times: PartTimes) -> None:
        self._target, self._name, self._times = target, name, times

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._target, attribute)
        if not callable(value):
            return value
        return self._times.wrap(self._name, value)


@contextmanager
def instrumented(scp: scp_module.StorageScp, times: PartTimes) -> Iterator[None]:
    """Time the parts of the C-STORE path; enter before ``scp.start`` binds the handler."""
    module_parts = ("read_header", "instance_problem", "instance_info", "file_meta_header")
    saved = {name: getattr(scp_module, name) for name in (*module_parts, "log")}
    spool, metrics, disk_usage = scp.spool, scp.metrics, shutil.disk_usage
    try:
        scp._on_store = times.wrap("_on_store (whole handler)", scp._on_store)  # type: ignore[method-assign]
        for name in module_parts:
            setattr(scp_module, name, times.wrap(name, saved[name]))
        for name in ("has_room_for", "accept", "record_file"):
            setattr(spool, name, times.wrap(f"Spool.{name}", getattr(spool, name)))
        spool.files.write_durably = times.wrap(  # type: ignore[method-assign]
            "ObjectFiles.write_durably", spool.files.write_durably
        )
        shutil.disk_usage = times.wrap("shutil.disk_usage (statvfs)", disk_usage)
        scp_module.log = TimedProxy(saved["log"], "log", times)  # type: ignore[assignment]
        for name in ("c_store_answered", "instance_stored"):
            setattr(metrics, name, times.wrap("metrics", getattr(metrics, name)))
        yield
    finally:
        shutil.disk_usage = disk_usage
        for name, value in saved.items():
            setattr(scp_module, name, value)


@contextmanager
def thread_profiles(profiles: list[cProfile.Profile]) -> Iterator[None]:
    """cProfile every association and DUL thread started meanwhile, into ``profiles``."""
    originals = (Association.run, DULServiceProvider.run)

    def profiled(run: Callable[[Any], None]) -> Callable[[Any], None]:
        def wrapper(self: Any) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            profile.runcall(run, self)

        return wrapper

    Association.run = profiled(originals[0])  # type: ignore[method-assign]
    DULServiceProvider.run = profiled(originals[1])  # type: ignore[method-assign]
    try:
        yield
    finally:
        Association.run, DULServiceProvider.run = originals  # type: ignore[method-assign]


@contextmanager
def receiving(
    work: Path, models: Path | None, times: PartTimes | None, profile: bool
) -> Iterator[tuple[int, list[cProfile.Profile]]]:
    """The node (or, without models, its SCP alone) listening, instrumented as asked;
    yields its port and the thread profiles (filled as associations end)."""
    settings = Settings(
        host="127.0.0.1",
        port=free_port(),
        http_host="127.0.0.1",
        http_port=free_port(),
        spool_dir=work / "spool",
        results_dir=work / "results",
        models_dir=models or work,
        device="cpu",
        decode_processes=1,
        torch_threads=1,
        spool_min_free_bytes=0,
        receive_processes=1,  # the parts are timed in this process's SCP alone
    )
    node = Node(settings) if models else None
    if node is None:
        spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
        scp = scp_module.StorageScp(settings, spool, NodeMetrics(spool.query))
    else:
        scp = node.scp
    profiles: list[cProfile.Profile] = []
    with (
        instrumented(scp, times) if times else nullcontext(),
        thread_profiles(profiles) if profile else nullcontext(),
    ):
        (node or scp).start()  # binds the (instrumented) handlers
        try:
            yield scp.port, profiles
        finally:
            (node or scp).stop()


def run_iqgate(
    files: list[Path],
    work: Path,
    models: Path | None,
    *,
    times: PartTimes | None = None,
    profile: bool = False,
) -> tuple[float, float, list[cProfile.Profile]]:
    """Wall seconds and receiving-process CPU seconds of one push; the thread profiles."""
    work.mkdir(parents=True)
    with (work / "node.log").open("a") as log_file:
        configure_logging("info", log_file)
        try:
            with receiving(work, models, times, profile) as (port, profiles):
                cpu = time.process_time()
                result = push([files], port)
                cpu = time.process_time() - cpu
        finally:
            configure_logging("warning")
    if result.succeeded != len(files):
        raise RuntimeError(f"iqgate stored {result.succeeded} of {len(files)}\n{result.logs[0]}")
    return result.wall_s, cpu, profiles


def run_reference(files: list[Path], work: Path, *, fsync: bool) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one push into the reference receiver (its own process)."""
    port = free_port()
    process = subprocess.Popen(
        receivers.command(port, work / "rx", *(["--fsync"] if fsync else []))
    )
    try:
        wait_for(lambda: port_open(port), 60, "the reference receiver")
        cpu = cpu_seconds(process.pid)
        result = push([files], port, called="ANY-SCP")
        cpu = cpu_seconds(process.pid) - cpu
    finally:
        process.terminate()
        process.wait(10)
    if result.succeeded != len(files):
        raise RuntimeError(f"reference stored {result.succeeded} of {len(files)}")
    return result.wall_s, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=256, help="rows = columns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scp-only", action="store_true", help="no pipeline process, no models")
    parser.add_argument("--cprofile", action="store_true", help="top functions of the threads")
    args = parser.parse_args()
    n = args.images
    with tempfile.TemporaryDirectory(prefix="profile-receive-") as tmp:
        root = Path(tmp)
        files = write_corpus(root / "corpus", 1, n, args.size, args.size, "profile")[0]
        models = None if args.scp_only else build_models(root / "models")
        runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for repeat in range(args.repeats):
            wall, cpu, _ = run_iqgate(files, root / f"iq-{repeat}", models)
            runs["iqgate"].append((wall, cpu))
            runs["pynetdicom"].append(run_reference(files, root / f"p-{repeat}", fsync=False))
            runs["pynetdicom+fsync"].append(run_reference(files, root / f"f-{repeat}", fsync=True))
        print(f"{n} images of {args.size} px, 1 client, median of {args.repeats}")
        rates = {}
        for kind, values in runs.items():
            rates[kind] = n / statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            print(f"  {kind:18s} {rates[kind]:7.1f} img/s  {cpu * 1000 / n:6.2f} ms CPU/img")
        print(f"  iqgate / pynetdicom {rates['iqgate'] / rates['pynetdicom']:.2f}")
        times = PartTimes()
        _, cpu, profiles = run_iqgate(
            files, root / "iq-parts", models, times=times, profile=args.cprofile
        )
        print(f"iqgate parts, ms/img (process CPU {cpu * 1000 / n:.2f} with the timers)")
        print(f"  {'part':28s} {'CPU':>6s} {'wall':>6s}")
        for name in times.order:
            print(
                f"  {name:28s} {times.cpu[name] * 1000 / n:6.3f} {times.wall[name] * 1000 / n:6.3f}"
            )
        for profile in profiles:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            if stats.total_tt > 0.05:  # type: ignore[attr-defined]
                stats.sort_stats("cumulative").print_stats(45)
                print(out.getvalue())


if __name__ == "__main__":
    main()
