"""The node as a whole: spool, SCP, workers, forwarders and the operations endpoint.

``Node.start`` resumes every unfinished job, loads the model packages, and starts
receiving; ``Node.stop`` stops receiving first, lets the workers finish the batch in
hand, then stops forwarding. ``run_until_signal`` maps SIGTERM/SIGINT to a graceful
stop, and a second signal to an immediate exit.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

import torch

from iqgate.config import Settings
from iqgate.node.decode import Decoder
from iqgate.node.forward import Forwarder
from iqgate.node.http import OperationsServer
from iqgate.node.logs import get_logger
from iqgate.node.metrics import NodeMetrics
from iqgate.node.results import ResultWriter
from iqgate.node.routing import ModelRegistry
from iqgate.node.scp import StorageScp
from iqgate.node.spool import JobState, Spool
from iqgate.node.workers import AssessmentWorker

log = get_logger("node")
PURGE_INTERVAL_S = 60.0


def choose_device(setting: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("IQGATE_DEVICE=cuda but no CUDA device is available; use auto or cpu")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class Node:
    """Every part of the running node, started and stopped in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spool = Spool(
            settings.spool_dir,
            max_bytes=settings.spool_max_bytes,
            min_free_bytes=settings.spool_min_free_bytes,
        )
        self.metrics = NodeMetrics(self.spool)
        self.device = choose_device(settings.device)
        self.registry = ModelRegistry.from_directory(settings.models_dir, self.device)
        self.decoder = Decoder(settings.decode_processes)
        method = f"normgrad-{settings.normgrad_variant} {settings.normgrad_layers}"
        self.writer = ResultWriter(settings.results_dir, settings.overlays, method)
        self.worker = AssessmentWorker(
            settings, self.spool, self.registry, self.decoder, self.metrics, self.writer
        )
        self.forwarders = [
            Forwarder(d, settings, self.spool, self.metrics) for d in settings.destinations
        ]
        self.scp = StorageScp(settings, self.spool, self.metrics)
        self.http = OperationsServer(
            settings.http_host, settings.http_port, self.metrics, self.healthy, self.ready
        )
        self._started = False
        self._stop = threading.Event()
        self._housekeeping = threading.Thread(
            target=self._housekeep, name="housekeeping", daemon=True
        )

    def start(self) -> None:
        """Resume unfinished jobs and start every part."""
        resumed = self.spool.resume()
        counts = self.spool.counts()
        log.info(
            "starting",
            device=str(self.device),
            models=[m.card.name for m in self.registry.models],
            resumed=resumed,
            unfinished=sum(
                counts[s] for s in (JobState.RECEIVED, JobState.ASSESSED, JobState.RESULTS_READY)
            ),
        )
        if not self.registry.models:
            log.warning(
                "no_models",
                models_dir=str(self.settings.models_dir),
                consequence="every image is recorded as not assessed",
            )
        if not self.settings.allowed_calling_aes:
            log.warning(
                "open_allow_list",
                setting="IQGATE_ALLOWED_CALLING_AES",
                consequence="any calling AE may store images",
            )
        self.http.start()
        self.worker.start()
        for forwarder in self.forwarders:
            forwarder.start()
        self._housekeeping.start()
        self.scp.start()
        self._started = True
        self.metrics.ready.set(1)

    def healthy(self) -> bool:
        """Alive: the worker thread runs."""
        return not self._started or self.worker.is_alive()

    def ready(self) -> bool:
        """Ready: started, listening, and the worker runs."""
        return self._started and self.worker.is_alive()

    def _housekeep(self) -> None:
        while not self._stop.wait(PURGE_INTERVAL_S):
            try:
                self.spool.release_expired_leases()
                purged = self.spool.purge(self.settings.retention_s)
                if purged:
                    log.info("purged", jobs=purged)
            except Exception:
                log.exception("housekeeping_error")

    def stop(self) -> None:
        """Stop receiving, let the worker finish its batch, then stop forwarding."""
        self.metrics.ready.set(0)
        self._started = False
        self.scp.stop()
        self.worker.stop()
        for forwarder in self.forwarders:
            forwarder.stop()
        self._stop.set()
        self.decoder.close()
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
            time.sleep(0.2)
        self.stop()
