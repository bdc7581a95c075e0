"""The node as a whole: a receiving process, a pipeline process, optional extra receivers.

Python threads share one interpreter lock, so a worker thread building SR and SC
objects would make every C-STORE handler wait for the lock (receiving would wait for
inference). The node therefore runs as separate processes:

- the main, receiving process (``Node``): the SCP writing into the spool, the
  operations endpoint (``/metrics``, ``/healthz``, ``/readyz``) and the spool's own
  metrics;
- the pipeline process (:func:`run_pipeline`, spawned as a :class:`ChildProcess`, at a
  lower CPU priority): the decode processes, the assessment worker, the forwarders and
  the housekeeping (purge, expired leases);
- with ``IQGATE_RECEIVE_PROCESSES`` > 1, that many minus one extra receiving processes
  (:func:`run_receiver`), each an SCP on the same port (``SO_REUSEPORT``: the kernel
  spreads the associations), so receiving is not limited to one core.

They share nothing but the spool (SQLite in WAL mode serves all of them); the child
processes send their metric updates back over a queue, so ``/metrics`` shows the whole
node. ``Node.start`` recovers the spool (files without a job, jobs a dead process was
assessing), starts the pipeline, which loads the model packages, and then starts
receiving; ``Node.stop`` stops receiving first, lets the pipeline finish the batch in
hand and stop forwarding. ``run_until_signal`` maps SIGTERM/SIGINT to a graceful stop
and a second signal to an immediate exit; the node stops when one of its processes
ends. The child processes die with the main process, even when that one is killed with
SIGKILL.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as ProcessEvent
from types import FrameType

from iqgate.config import Settings
from iqgate.errors import IqgateError
from iqgate.node.console.index import INDEX_NAME
from iqgate.node.console.metrics import FeedbackCollector, read_feedback_counts
from iqgate.node.delivery.retention import purge_results
from iqgate.node.ingest.recovery import recover_files
from iqgate.node.ingest.scp import StorageScp, ensure_port_free
from iqgate.node.ingest.stowrs import stow_server
from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.http import OperationsServer, operations_routes
from iqgate.node.ops.logs import configure_logging, get_logger
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.ops.relay import RelayedEvent, RelayedEvents, apply_relayed
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobState

log = get_logger("node")
PIPELINE_NICE = 10
"""Niceness of the pipeline process: on a small host the C-STORE handlers win the CPU."""
PIPELINE_PROCESS_NAME = "iqgate-pipeline"
RECEIVER_PROCESS_NAME = "iqgate-receiver"
CONSOLE_PROCESS_NAME = "iqgate-console"
"""Process names (``ps``, /proc/PID/comm) of the pipeline and of extra receivers."""
START_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 60.0
PARENT_CHECK_S = 1.0
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


class NodeProcessError(IqgateError):
    """A process of the node (the pipeline, a receiver) could not start."""


def name_process(name: str) -> None:
    """Show ``name`` (15 bytes at most) for this process in ``ps``, ``top`` and /proc/PID/comm."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends, even by SIGKILL.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``);
    elsewhere, and as a backstop, a thread polls the parent id.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class ChildProcess:
    """A process of the node (the pipeline, an extra receiver), seen from the main one.

    ``target(settings, stop, ready, events, parent_pid)`` runs in a spawned process: it
    sets ``ready`` once it serves, returns when ``stop`` is set, and sends its metric
    stage events over ``events`` (:class:`~iqgate.node.ops.relay.RelayedEvents`), which a
    thread here applies to the node's metrics.
    """

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        settings: Settings,
        metrics: NodeMetrics,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._stop: ProcessEvent = context.Event()
        self._ready: ProcessEvent = context.Event()
        self._events: Queue[list[RelayedEvent] | None] = context.Queue()
        self._metrics = metrics
        self._process = context.Process(
            target=target,
            args=(settings, self._stop, self._ready, self._events, os.getpid()),
            name=f"iqgate-{name}",
        )
        self._relay = threading.Thread(target=self._relay_metrics, name="metrics", daemon=True)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the process and wait until it serves."""
        self._process.start()
        self._relay.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.1):
            if not self._process.is_alive():
                raise NodeProcessError(
                    f"the {self.name} process exited with code {self._process.exitcode} while "
                    "starting (its log lines above say why: a model package, the device, the port...)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise NodeProcessError(f"the {self.name} process was not ready after {timeout_s} s")

    def is_alive(self) -> bool:
        """Whether the process runs."""
        return self._process.is_alive()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Ask the process to finish its work in hand and stop; force it after ``timeout_s``."""
        self._stop.set()
        if self._process.pid is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                log.warning("forced_stop", process=self.name, timeout_s=timeout_s)
                self._process.kill()
                self._process.join(5)
        self._events.put(None)

    def _relay_metrics(self) -> None:
        while (events := self._events.get()) is not None:
            try:
                apply_relayed(self._metrics, events)
            except (AttributeError, TypeError, ValueError):
                log.exception("metric_relay_error")


def open_spool(settings: Settings) -> Spool:
    """The spool with the limits of ``settings`` (every process of the node opens its own)."""
    return Spool(
        settings.spool_dir,
        max_bytes=settings.spool_max_bytes,
        min_free_bytes=settings.spool_min_free_bytes,
    )


def lower_priority() -> None:
    """Run this process at :data:`PIPELINE_NICE` (the receiving process wins the CPU)."""
    try:
        os.nice(PIPELINE_NICE)
    except OSError:
        pass


def _enter_child(settings: Settings, parent_pid: int, name: str) -> None:
    """What every child process does first: die with the node, take its name, log, and
    leave Ctrl-C to the main process (which stops the children through their events)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    name_process(name)
    configure_logging(settings.log_level)


def run_receiver(
    settings: Settings,
    stop: ProcessEvent,
    ready: ProcessEvent,
    events: Queue[list[RelayedEvent] | None],
    parent_pid: int,
) -> None:
    """Entry point of an extra receiving process: an SCP on the shared port until stopped."""
    _enter_child(settings, parent_pid, RECEIVER_PROCESS_NAME)
    metrics = RelayedEvents(events)
    spool = open_spool(settings)
    scp = StorageScp(settings, spool, metrics)
    scp.start()
    ready.set()
    try:
        stop.wait()
    finally:
        scp.stop()
        metrics.flush()


def run_pipeline(
    settings: Settings,
    stop: ProcessEvent,
    ready: ProcessEvent,
    events: Queue[list[RelayedEvent] | None],
    parent_pid: int,
) -> None:
    """Entry point of the pipeline process: assess, deliver and purge until stopped."""
    _enter_child(settings, parent_pid, PIPELINE_PROCESS_NAME)
    lower_priority()
    metrics = RelayedEvents(events)
    try:
        _serve_pipeline(settings, stop, ready, metrics)
    except (IqgateError, RuntimeError, OSError) as exc:
        log.error("pipeline_failed", error=f"{type(exc).__name__}: {exc}")
        sys.exit(2)
    finally:
        metrics.flush()


def run_console(
    settings: Settings,
    stop: ProcessEvent,
    ready: ProcessEvent,
    events: Queue[list[RelayedEvent] | None],
    parent_pid: int,
) -> None:
    """Entry point of the console process (``IQGATE_CONSOLE_PORT``), at the pipeline's
    CPU priority: its web server and spool follower (:mod:`iqgate.node.console`)."""
    from iqgate.node.console.server import serve_console

    _enter_child(settings, parent_pid, CONSOLE_PROCESS_NAME)
    lower_priority()
    serve_console(settings, stop, ready)


def _serve_pipeline(
    settings: Settings, stop: ProcessEvent, ready: ProcessEvent, metrics: RelayedEvents
) -> None:
    from iqgate.node.delivery.build import delivery_loops
    from iqgate.node.pipeline.build import build_pipeline
    from iqgate.node.pipeline.worker import AssessmentWorker

    spool = open_spool(settings)
    pipeline = build_pipeline(settings)
    worker = AssessmentWorker(settings, spool, pipeline, metrics)
    forwarders = delivery_loops(settings, spool, metrics)
    finished = threading.Event()
    housekeeping = threading.Thread(
        target=_housekeep,
        args=(settings, spool, metrics, finished),
        name="housekeeping",
        daemon=True,
    )
    worker.start()
    for forwarder in forwarders:
        forwarder.start()
    housekeeping.start()
    ready.set()
    while not stop.wait(0.5):
        if not worker.is_alive():
            log.error("worker_stopped", consequence="the pipeline process exits")
            break
    worker.stop()
    for forwarder in forwarders:
        forwarder.stop()
    finished.set()
    pipeline.close()
    log.info("pipeline_stopped")


def _housekeep(
    settings: Settings, spool: Spool, metrics: StageEvents, finished: threading.Event
) -> None:
    while not finished.wait(settings.housekeeping_interval_s):
        try:
            spool.jobs.release_expired_leases()
            purged = spool.jobs.purge(settings.retention_s)
            if purged:
                log.info("purged", jobs=purged)
            if settings.results_retention_s is not None:
                results = purge_results(
                    spool.query, settings.results_dir, settings.results_retention_s
                )
                if results.files:
                    metrics.results_purged(results.files, results.size_bytes)
                    log.info("results_purged", files=results.files, size_bytes=results.size_bytes)
        except Exception:
            log.exception("housekeeping_error")


class Node:
    """Every part of the running node, started and stopped in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spool = open_spool(settings)
        self.metrics = NodeMetrics(self.spool.query)
        console_index = settings.console_dir / INDEX_NAME
        self.metrics.registry.register(
            FeedbackCollector(lambda: read_feedback_counts(console_index))
        )
        self.pipeline = ChildProcess("pipeline", run_pipeline, settings, self.metrics)
        self.scp = StorageScp(settings, self.spool, self.metrics)
        self.receivers = [
            ChildProcess(f"receiver-{index}", run_receiver, settings, self.metrics)
            for index in range(1, settings.receive_processes)
        ]
        self.console = (
            None
            if settings.console_port is None
            else ChildProcess("console", run_console, settings, self.metrics)
        )
        self.children = [self.pipeline, *self.receivers, *([self.console] if self.console else [])]
        self.http = OperationsServer(
            settings.http_host,
            settings.http_port,
            operations_routes(self.metrics, self.healthy, self.ready),
        )
        self.stow = stow_server(settings, self.spool, self.metrics)
        self._started = False
        self._stop = threading.Event()

    def start(self) -> None:
        """Recover the spool, start the pipeline (models load there), then receive."""
        ensure_port_free(self.settings.host, self.settings.port)
        recovery = recover_files(self.spool)
        if recovery.recorded or recovery.removed:
            log.warning(
                "spool_recovered",
                recorded=recovery.recorded,
                removed=recovery.removed,
                cause="files without a job row: the previous run was killed or lost power",
            )
        resumed = self.spool.jobs.resume()
        counts = self.spool.query.counts()
        log.info(
            "starting",
            resumed=resumed,
            unfinished=sum(
                counts[s] for s in (JobState.RECEIVED, JobState.ASSESSED, JobState.RESULTS_READY)
            ),
        )
        if not self.settings.allowed_calling_aes:
            log.warning(
                "open_allow_list",
                setting="IQGATE_ALLOWED_CALLING_AES",
                consequence="any calling AE may store images",
            )
        self.http.start()
        self.pipeline.start()
        self.scp.start()
        if self.stow is not None:
            self.stow.start()
            log.info("stow_listening", host=self.settings.stow_host, port=self.stow.port)
        for receiver in self.receivers:
            receiver.start()
        if self.console is not None:
            self.console.start()
        self._started = True
        self.metrics.ready.set(1)

    def healthy(self) -> bool:
        """Alive: the pipeline and every extra receiving process run."""
        return not self._started or self._children_alive()

    def ready(self) -> bool:
        """Ready: started, listening, and the pipeline and receiving processes run."""
        return self._started and self._children_alive()

    def _children_alive(self) -> bool:
        return all(child.is_alive() for child in self.children)

    def stop(self) -> None:
        """Stop receiving, let the pipeline finish its batch, then stop it."""
        self.metrics.ready.set(0)
        self._started = False
        self.scp.stop()
        if self.stow is not None:
            self.stow.stop()
        for receiver in self.receivers:
            receiver.stop()
        if self.console is not None:
            self.console.stop()
        self.pipeline.stop()
        self.http.stop()
        log.info("stopped")

    def run_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT; a second signal exits at once."""
        received: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            if len(received) > 1:
                log.warning("forced_exit", signal=signum)
                os._exit(1)
            log.info("stopping", signal=signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not self._stop.is_set():
            stopped = [c.name for c in self.children if not c.is_alive()]
            if stopped:
                log.error("process_stopped", processes=stopped, consequence="the node stops")
                break
            time.sleep(0.2)
        self.stop()
