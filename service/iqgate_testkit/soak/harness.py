"""Shared plumbing of the hardening campaign: peers, images, pushes, metrics, memory.

The campaign drives the same real peers as the integration tests (:mod:`iqgate_testkit.peers`:
the node as an ``iqgate serve`` process, DCMTK ``storescu``/``storescp``) and builds its
inputs with the test suite's factories, so a figure here and a test there exercise the
same thing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from iqgate.node.app import RECEIVER_PROCESS_NAME
from iqgate_testkit.dicom_factory import make_image
from iqgate_testkit.package_factory import tiny_package
from iqgate_testkit.peers import NODE_AE, NodeProcess, free_port, http_get, wait_for

__all__ = ["NODE_AE", "free_port", "http_get", "wait_for"]

SUCCESS_LINE = re.compile(r"Received Store Response \(Success\)")
SENDING_LINE = re.compile(r"Sending file: (\S+)")


def build_models(folder: Path, input_size: int = 64) -> Path:
    """Two small random packages (DX/CR and MR) like the integration tests use."""
    for name, modalities, seed in (("soak-cxr", ("DX", "CR"), 0), ("soak-cmr", ("MR",), 1)):
        if not (folder / name / "model.json").is_file():
            tiny_package(
                folder, name, modalities=modalities, threshold=0.5, seed=seed, input_size=input_size
            )
    return folder


def write_corpus(
    folder: Path, clients: int, images: int, rows: int, columns: int, tag: str
) -> list[list[Path]]:
    """``clients`` lists of ``images`` distinct DX files (unique UIDs per ``tag``)."""
    batches: list[list[Path]] = []
    template = make_image(rows=rows, columns=columns, seed=0)
    root = f"1.2.826.0.1.3680043.8.498.77.{zlib.crc32(tag.encode())}"
    for client in range(clients):
        paths = []
        for index in range(images):
            path = folder / f"c{client:02d}" / f"{index:05d}.dcm"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                ds = template.copy()
                uid = f"{root}.{client + 1}.{index + 1}"
                ds.SOPInstanceUID = uid
                ds.file_meta = template.file_meta.copy()
                ds.file_meta.MediaStorageSOPInstanceUID = uid
                ds.StudyInstanceUID = f"{root}.{client + 1}"
                ds.SeriesInstanceUID = f"{root}.{client + 1}.0"
                ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        batches.append(paths)
    return batches


@dataclass
class PushResult:
    """What the scanners saw."""

    wall_s: float
    succeeded: int
    acknowledged: list[Path] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


def acknowledged_files(log: str) -> list[Path]:
    """Files whose C-STORE got a success response, from ``storescu -v`` output."""
    acked: list[Path] = []
    current: Path | None = None
    for line in log.splitlines():
        if match := SENDING_LINE.search(line):
            current = Path(match.group(1))
        elif SUCCESS_LINE.search(line) and current is not None:
            acked.append(current)
            current = None
    return acked


def start_push(
    batches: Sequence[Sequence[Path]],
    port: int,
    *,
    called: str = NODE_AE,
    calling: str = "SCANNER",
    options: Sequence[str] = (),
) -> list[subprocess.Popen[str]]:
    """One ``storescu`` process per batch, all at once (one association each)."""
    return [
        subprocess.Popen(
            ["storescu", "-v", "-aet", calling, "-aec", called, *options, "127.0.0.1", str(port)]
            + [str(p) for p in batch],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for batch in batches
    ]


def finish_push(processes: Sequence[subprocess.Popen[str]], started: float) -> PushResult:
    """Wait for every ``storescu`` and count acknowledged files."""
    logs = [p.communicate(timeout=3600)[0] for p in processes]
    wall = time.perf_counter() - started
    acked = [path for log in logs for path in acknowledged_files(log)]
    return PushResult(wall, len(acked), acked, logs)


def push(batches: Sequence[Sequence[Path]], port: int, **kwargs: object) -> PushResult:
    """Push every batch concurrently; the wall time runs from the first start to the last exit."""
    started = time.perf_counter()
    return finish_push(start_push(batches, port, **kwargs), started)  # type: ignore[arg-type]


# -- metrics --------------------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to ``{'name{labels}': value}``."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if match := _SAMPLE.match(line):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def histogram_quantile(samples: dict[str, float], name: str, q: float) -> float | None:
    """Quantile of a label-less histogram by linear interpolation in its buckets (as PromQL)."""
    buckets = []
    for key, value in samples.items():
        if key.startswith(f"{name}_bucket{{"):
            bound = re.search(r'le="([^"]+)"', key)
            if bound:
                buckets.append((float(bound.group(1)), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * (
                (rank - lower_count) / width if width else 1
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def quantile(values: Sequence[float], q: float) -> float:
    """Empirical quantile (nearest rank) of raw values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- memory ---------------------------------------------------------------------------------
def child_pids(pid: int) -> list[int]:
    """Direct children of a process, started by any of its threads (from /proc)."""
    children: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(c) for c in listing.read_text().split()]
        except OSError:
            continue
    return children


def descendant_pids(pid: int) -> list[int]:
    """Children, grandchildren... of a process (pipeline, decode pool, trackers)."""
    found: list[int] = []
    pending = child_pids(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending += child_pids(child)
    return found


def _vm_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kill_node(node: NodeProcess) -> None:
    """SIGKILL the node, then whatever it started that outlives it (older versions left
    their decode processes running), so that one run never slows the next.

    Python's multiprocessing resource tracker is spared, as the OOM killer would spare
    it: once the node is gone it unlinks the semaphores the node left and exits (killed
    with the rest, it left them in /dev/shm, about 200 per hardening test run).
    """
    family = [pid for pid in descendant_pids(node.process.pid) if not _is_resource_tracker(pid)]
    if node.process.poll() is None:
        node.kill()
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def receive_metrics(node: NodeProcess, instances: int, timeout_s: float = 10.0) -> dict[str, float]:
    """The node's metrics once its C-STORE counters show ``instances`` requests.

    Extra receiving processes relay their updates every 0.25 s, so ``/metrics`` can lag
    the C-STORE responses by that much.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        metrics = parse_metrics(node.metrics())
        counted = sum(v for k, v in metrics.items() if k.startswith("iqgate_instances_total{"))
        if counted >= instances or time.monotonic() > deadline:
            return metrics
        time.sleep(0.05)


def receiving_cpu_seconds(pid: int) -> float:
    """CPU time of a node's receiving processes: the main one and any extra receivers."""
    receivers = [child for child in descendant_pids(pid) if _comm(child) == RECEIVER_PROCESS_NAME]
    return sum(cpu_seconds(each) for each in [pid, *receivers])


def _proc_file(pid: int, name: str) -> bytes:
    """``/proc/PID/NAME``; empty once the process is gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _is_resource_tracker(pid: int) -> bool:
    return b"multiprocessing.resource_tracker" in _proc_file(pid, "cmdline")


def _comm(pid: int) -> str:
    return _proc_file(pid, "comm").decode(errors="replace").strip()


def rss_bytes(pid: int) -> int:
    """Resident set of a process and all its descendants, from /proc."""
    return sum(_vm_rss(each) for each in [pid, *descendant_pids(pid)])


class BackgroundSampler(ABC):
    """A daemon thread running ``_run`` for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    def _run(self) -> None:
        """Sample until ``self._stop`` is set."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class RssSampler(BackgroundSampler):
    """Sample a process tree's RSS in the background: ``[(seconds, bytes), ...]``."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        super().__init__()
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self.own: list[int] = []
        """The first process alone (the receiving process of the node)."""
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._started, rss_bytes(self.pid)))
            self.own.append(_vm_rss(self.pid))
            self._stop.wait(self.interval_s)


class ForeignLoad(BackgroundSampler):
    """CPU used by processes outside this campaign (not it, not its descendants).

    Figures taken while something else runs say little: each case reports the mean
    and the peak of this, in cores, so a contended figure is visible as such.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.cores: list[float] = []

    @staticmethod
    def _cpu_by_pid() -> dict[int, float]:
        usage = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                usage[int(entry.name)] = cpu_seconds(int(entry.name))
        return usage

    def _run(self) -> None:
        before, then = self._cpu_by_pid(), time.monotonic()
        while not self._stop.wait(self.interval_s):
            ours = {os.getpid(), *descendant_pids(os.getpid())}
            now, at = self._cpu_by_pid(), time.monotonic()
            foreign = sum(
                max(0.0, used - before.get(pid, used))
                for pid, used in now.items()
                if pid not in ours
            )
            self.cores.append(foreign / max(1e-6, at - then))
            before, then = now, at

    @property
    def summary(self) -> dict[str, float]:
        if not self.cores:
            return {"foreign_cpu_cores_mean": 0.0, "foreign_cpu_cores_max": 0.0}
        return {
            "foreign_cpu_cores_mean": round(sum(self.cores) / len(self.cores), 2),
            "foreign_cpu_cores_max": round(max(self.cores), 2),
        }


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run ``iqgate ARGS`` with the node's environment; its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "iqgate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
