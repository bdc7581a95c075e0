"""MR series completion: the images of a series wait until it is quiet, then share one SR."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from iqgate.delivery_rules import DeliveryRules
from iqgate.node.ops.logs import get_logger
from iqgate.node.outputs.results import ResultWriter, read_reports
from iqgate.node.store.records import Job
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobState, JobVerdict

log = get_logger("series")

SERIES_MODALITIES = frozenset({"MR"})
"""Modalities whose images are reported per series (one SR for the whole series)."""


def groups_by_series(modality: str) -> bool:
    """Whether images of ``modality`` wait for their series and share its SR."""
    return modality.upper() in SERIES_MODALITIES


class SeriesCompletion:
    """One SR per series once no image of it has arrived for ``quiet_s`` seconds.

    An image of the series that arrives after its SR was written gets a late SR of its
    own group. ``fail(job, stage, reason)`` records a job that cannot be completed.
    """

    def __init__(
        self,
        spool: Spool,
        writer: ResultWriter,
        rules: DeliveryRules,
        quiet_s: float,
        fail: Callable[[Job, str, str], None],
    ) -> None:
        self.spool = spool
        self.writer = writer
        self.rules = rules
        self.quiet_s = quiet_s
        self.fail = fail

    def flush(self) -> bool:
        """Write one SR for each series that has been quiet long enough."""
        groups = self.spool.jobs.quiet_series(self.quiet_s)
        for group in groups:
            jobs = self.spool.jobs.in_group(group, JobState.ASSESSED)
            if not jobs:
                continue
            earlier = self.spool.jobs.in_group(
                group, JobState.RESULTS_READY
            ) or self.spool.jobs.in_group(group, JobState.DELIVERED)
            try:
                headers = [dcmread(jobs[0].path, stop_before_pixels=True)]
                headers += [reference_dataset(job) for job in jobs[1:]]
                reports = [r for job in jobs for r in read_reports(Path(str(job.report_path)))]
                output = self.writer.write_series_sr(headers, reports, late=bool(earlier))
            except Exception as exc:  # noqa: BLE001 - one bad series must not stop the node
                for job in jobs:
                    self.fail(job, "encode", f"series SR: {type(exc).__name__}: {exc}")
                continue
            flagged = any(job.verdict is JobVerdict.FLAGGED for job in jobs)
            verdict = (JobVerdict.FLAGGED if flagged else JobVerdict.PASS).value
            deliveries = self.rules.plan([output], verdict, jobs[0].modality, jobs[0].calling_ae)
            self.spool.jobs.finish_group([job.id for job in jobs], deliveries)
            log.info("series_reported", series_uid=group, images=len(jobs))
        return bool(groups)


def reference_dataset(job: Job) -> Dataset:
    """The identifying UIDs of a job's instance, all a series SR needs of every image but
    the first (whose header gives the patient and study)."""
    reference = Dataset()
    reference.StudyInstanceUID = job.study_uid
    reference.SeriesInstanceUID = job.series_uid
    reference.SOPClassUID = job.sop_class_uid
    reference.SOPInstanceUID = job.sop_instance_uid
    return reference
