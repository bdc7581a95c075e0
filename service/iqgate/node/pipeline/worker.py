"""The assessment worker: spool -> decode -> route -> batch -> classify -> explain -> results.

Batches form by size and deadline (``batch_max`` jobs or ``batch_wait_ms``, whichever
comes first). The worker thread runs three stages in a pipeline: while it assesses one
batch, a second thread claims and decodes the next (the decode processes work while the
model runs) and a third writes the previous batch's results (SC, SR, report, fsync);
one batch is in flight in each stage at most. Each file is decoded once: on a CUDA node with nvImageCodec, JPEG 2000
and JPEG frames are decoded on the GPU and stay there (:mod:`iqgate.node.pipeline.gpu_decode`);
everything else is decoded by the CPU decoder and resized on the model's device. A job
that fails (bad codec data, an exception) is marked failed with its reason and the
worker goes on. MR images wait in ``assessed`` until their series is complete
(:mod:`iqgate.node.pipeline.series`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import torch
from pydicom import dcmread

from iqgate.config import Settings
from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.logs import get_logger
from iqgate.node.outputs.assessment import FrameAssessment
from iqgate.node.pipeline.assess import assess_frames
from iqgate.node.pipeline.build import Pipeline
from iqgate.node.pipeline.decode import DecodedImage
from iqgate.node.pipeline.gpu_decode import DeviceImage
from iqgate.node.pipeline.routing import LoadedModel
from iqgate.node.pipeline.series import SeriesCompletion, groups_by_series
from iqgate.node.store.records import Job, OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobVerdict
from iqgate.routing_rules import HeaderFacts

log = get_logger("worker")
ERROR_PAUSE_S = 1.0
IDLE_POLL_S = 0.05
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class RoutedJob:
    """A decoded job and the model it goes to."""

    job: Job
    image: DecodedImage | DeviceImage
    model: LoadedModel


@dataclass
class PreparedBatch:
    """Claimed jobs, routed from their headers and decoded, grouped by model."""

    groups: list[list[RoutedJob]]
    decode_ms: float


@dataclass
class AssessedImage:
    """One job's image with the assessment of each of its frames."""

    routed: RoutedJob
    assessments: list[FrameAssessment]


class AssessmentWorker:
    """One thread that assesses spooled jobs until stopped."""

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        pipeline: Pipeline,
        metrics: StageEvents,
        *,
        name: str = "worker-1",
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.pipeline = pipeline
        self.registry = pipeline.registry
        self.decoder = pipeline.decoder
        self.metrics = metrics
        self.writer = pipeline.writer
        self.name = name
        self.policy = pipeline.policy
        self.rules = settings.rules
        self.series = SeriesCompletion(
            spool, pipeline.writer, self.rules, settings.series_quiet_s, self._fail
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in hand, then stop."""
        self._stop.set()
        self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        torch.set_num_threads(self.settings.torch_threads)
        with (
            ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-prepare") as preparing,
            ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-write") as writing,
        ):
            upcoming = preparing.submit(self._guarded, self.prepare_batch)
            written: Future[object] | None = None
            while True:
                batch = upcoming.result()
                stopping = self._stop.is_set()
                if not stopping:  # decode the next batch while this one is assessed
                    upcoming = preparing.submit(self._guarded, self.prepare_batch)
                assessed = self._guarded(self.assess_batch, batch) if batch else None
                if written is not None:  # at most one batch of results in flight
                    written.result()
                if batch is not None and assessed is not None:
                    writing.submit(self._guarded, self.write_batch, assessed, batch.decode_ms)
                written = writing.submit(self._guarded, self.flush_quiet_series)
                if stopping:
                    written.result()
                    break
                if batch is None:
                    self._stop.wait(IDLE_POLL_S)
        self.spool.close()

    def _guarded(self, stage: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
        """Run one stage; an unexpected error is logged and the pipeline goes on."""
        try:
            return stage(*args, **kwargs)
        except Exception:
            log.exception("worker_error", worker=self.name, stage=stage.__name__)
            self._stop.wait(ERROR_PAUSE_S)
            return None

    # -- one batch ---------------------------------------------------------------------
    def _claim_batch(self) -> list[Job]:
        s = self.settings
        jobs = self.spool.jobs.claim_received(self.name, s.batch_max, s.lease_s)
        if not jobs:
            return jobs
        deadline = time.monotonic() + s.batch_wait_ms / 1000
        while len(jobs) < s.batch_max and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
            jobs += self.spool.jobs.claim_received(self.name, s.batch_max - len(jobs), s.lease_s)
        return jobs

    def run_once(self) -> bool:
        """Assess and write one batch in this thread; returns whether there was work."""
        batch = self.prepare_batch()
        if batch is None:
            return False
        self.write_batch(self.assess_batch(batch), batch.decode_ms)
        return True

    def prepare_batch(self) -> PreparedBatch | None:
        """Claim a batch, route it from the headers and decode it; None when idle."""
        jobs = self._claim_batch()
        if not jobs:
            return None
        routed = [(job, model) for job in jobs if (model := self._route(job)) is not None]
        started = time.perf_counter()
        decoded = self.decoder.decode_many([job.path for job, _ in routed])
        decode_ms = (time.perf_counter() - started) * 1000 / max(1, len(routed))
        by_model: dict[str, list[RoutedJob]] = {}
        for (job, model), image in zip(routed, decoded, strict=True):
            self.metrics.stage_time("decode", decode_ms / 1000)
            if isinstance(image, BaseException):
                self._fail(job, "decode", f"cannot decode pixel data: {image}")
                continue
            by_model.setdefault(model.card.name, []).append(RoutedJob(job, image, model))
        return PreparedBatch(list(by_model.values()), decode_ms)

    def assess_batch(self, batch: PreparedBatch) -> list[AssessedImage]:
        """Classify (and explain where needed) every group of a batch, one model each."""
        return [image for group in batch.groups for image in self._assess_group(group)]

    def write_batch(self, assessed: Sequence[AssessedImage], decode_ms: float) -> None:
        """Write every image's results and move its job on."""
        for image in assessed:
            self._write(image.routed, image.assessments, decode_ms)

    def _route(self, job: Job) -> LoadedModel | None:
        """The model for a job, from the header facts stored at receipt (read from the
        file for a job stored without them); records why when there is none."""
        if job.header_facts is not None:
            facts = HeaderFacts.from_json(job.header_facts)
        else:
            try:
                facts = HeaderFacts.from_dataset(dcmread(job.path, stop_before_pixels=True))
            except Exception as exc:  # noqa: BLE001 - any parse failure fails this job only
                self._fail(job, "decode", f"cannot read the dataset: {exc}")
                return None
        model, decision = self.registry.route(facts)
        if model is None:
            self._not_assessed(job, decision.label, decision.reason)
        return model

    def _originals(self, job: Job) -> list[OutputFile]:
        if not self.settings.forward_originals:
            return []
        return [OutputFile("original", job.path, job.sop_instance_uid)]

    def _plan(
        self, job: Job, verdict: JobVerdict, outputs: Sequence[OutputFile]
    ) -> list[tuple[OutputFile, str]]:
        """Where the delivery rules send an image's outputs; an image no rule takes is counted."""
        if self.rules.unrouted(verdict.value, job.modality, job.calling_ae):
            self.metrics.image_unrouted(verdict.value)
        return self.rules.plan(outputs, verdict.value, job.modality, job.calling_ae)

    def _not_assessed(self, job: Job, label: str, reason: str) -> None:
        """Record a job as not assessed: counted by ``label``, logged and kept with ``reason``."""
        self.metrics.image_not_assessed(label)
        log.info(
            "not_assessed",
            sop_instance_uid=job.sop_instance_uid,
            calling_ae=job.calling_ae,
            reason=reason,
        )
        self.spool.jobs.finish_assessment(
            job.id,
            verdict=JobVerdict.NOT_ASSESSED,
            report_path=None,
            deliveries=self._plan(job, JobVerdict.NOT_ASSESSED, self._originals(job)),
            reason=reason,
        )

    def _fail(self, job: Job, stage: str, reason: str) -> None:
        self.metrics.job_failed(stage)
        log.warning(
            "job_failed",
            sop_instance_uid=job.sop_instance_uid,
            stage=stage,
            reason=reason,
            calling_ae=job.calling_ae,
        )
        self.spool.jobs.fail(job.id, f"{stage}: {reason}")

    def _assess_group(self, group: Sequence[RoutedJob]) -> list[AssessedImage]:
        loaded = group[0].model
        frames = [frame for routed in group for frame in routed.image.frames]
        try:
            assessments = assess_frames(loaded, frames, self.policy, self.registry.device)
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the node
            for routed in group:
                self._fail(routed.job, "inference", f"{type(exc).__name__}: {exc}")
            return []
        self.metrics.batch_assessed(len(frames))
        assessed, offset = [], 0
        for routed in group:
            count = routed.image.frames.shape[0]
            assessed.append(AssessedImage(routed, assessments[offset : offset + count]))
            offset += count
        return assessed

    def _write(
        self, routed: RoutedJob, assessments: list[FrameAssessment], decode_ms: float
    ) -> None:
        job, loaded = routed.job, routed.model
        image = routed.image.to_host() if isinstance(routed.image, DeviceImage) else routed.image
        for a in assessments:
            self.metrics.stage_time("inference", a.timings_ms["inference"] / 1000)
            if "explain" in a.timings_ms:
                self.metrics.stage_time("explain", a.timings_ms["explain"] / 1000)
        per_series = groups_by_series(job.modality)
        started = time.perf_counter()
        try:
            results = self.writer.write_image(
                image.header,
                image.frames,
                loaded.card,
                assessments,
                sr_per_series=per_series,
                timings_ms={"decode": decode_ms},
            )
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the node
            self._fail(job, "encode", f"{type(exc).__name__}: {exc}")
            return
        self.metrics.stage_time("encode", time.perf_counter() - started)
        verdict = JobVerdict.FLAGGED if results.flagged else JobVerdict.PASS
        self.spool.jobs.finish_assessment(
            job.id,
            verdict=verdict,
            report_path=str(results.report_path),
            deliveries=self._plan(
                job,
                verdict,
                [
                    *results.outputs,
                    OutputFile("report", results.report_path, job.sop_instance_uid),
                    *self._originals(job),
                ],
            ),
            series_group=job.series_uid if per_series else None,
        )
        self.metrics.image_assessed(
            loaded.card.name, verdict.value, max(0.0, time.time() - job.received_at)
        )
        best = max(assessments, key=lambda a: a.probability)
        log.info(
            "assessed",
            sop_instance_uid=job.sop_instance_uid,
            calling_ae=job.calling_ae,
            model=loaded.card.name,
            verdict=verdict,
            probability=round(best.probability, 4),
            frames=len(assessments),
        )

    def flush_quiet_series(self) -> bool:
        """Write the SR of every series that is complete (see :class:`SeriesCompletion`)."""
        return self.series.flush()
