"""Results retention removes old result files only once every destination has them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from iqgate.node.delivery.policy import ExponentialBackoff
from iqgate.node.delivery.retention import PurgedResults, purge_results
from iqgate.node.store.records import InstanceInfo, OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobVerdict

DAY_S = 86400.0
DESTINATION = "PACS@pacs:104"


def assessed(spool: Spool, results: Path, n: int, *, age_s: float) -> tuple[int, Path]:
    """Job ``n`` (study 2.25.n, series 2.25.n.1) with an SR and a report of age ``age_s``,
    its SR due at :data:`DESTINATION`; returns the job id and its series folder."""
    info = InstanceInfo(
        f"2.25.{n}.1.1", "1.2.840.10008.5.1.4.1.1.1.1", f"2.25.{n}", f"2.25.{n}.1", "DX", "CT1"
    )
    job_id = spool.accept(b"image", info).job_id
    spool.jobs.claim_received("test", 1, 60)
    folder = results / info.study_uid / info.series_uid
    folder.mkdir(parents=True)
    sr, report = folder / "sr.dcm", folder / "image.report.json"
    for path in (sr, report):
        path.write_bytes(b"0123456789")
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    spool.jobs.finish_assessment(
        job_id,
        verdict=JobVerdict.PASS,
        report_path=str(report),
        deliveries=[(OutputFile("sr", sr, f"2.25.{n}.9"), DESTINATION)],
    )
    return job_id, folder


def deliver_all(spool: Spool) -> None:
    for delivery in spool.deliveries.claim(DESTINATION, 100, 60):
        spool.deliveries.succeeded(delivery.id)


def test_old_delivered_results_go_with_their_empty_folders(tmp_path):
    spool, results = Spool(tmp_path / "spool", max_bytes=10**6), tmp_path / "results"
    _, folder = assessed(spool, results, 1, age_s=2 * DAY_S)
    deliver_all(spool)
    assert purge_results(spool.query, results, DAY_S) == PurgedResults(files=2, size_bytes=20)
    assert not folder.exists() and not folder.parent.exists() and results.is_dir()


def test_results_a_destination_still_waits_for_are_kept_however_old(tmp_path):
    spool, results = Spool(tmp_path / "spool", max_bytes=10**6), tmp_path / "results"
    _, pending = assessed(spool, results, 1, age_s=2 * DAY_S)
    _, dead = assessed(spool, results, 2, age_s=2 * DAY_S)
    [_, delivery] = spool.deliveries.claim(DESTINATION, 100, 60)
    assert spool.deliveries.failed(delivery.id, "refused", ExponentialBackoff(1, 1.0, 1.0))
    assert purge_results(spool.query, results, DAY_S) == PurgedResults(0, 0)
    assert len(list(pending.iterdir())) == 2 and len(list(dead.iterdir())) == 2


def test_young_results_stay_until_the_retention_period_is_over(tmp_path):
    spool, results = Spool(tmp_path / "spool", max_bytes=10**6), tmp_path / "results"
    _, folder = assessed(spool, results, 1, age_s=60.0)
    deliver_all(spool)
    assert purge_results(spool.query, results, DAY_S) == PurgedResults(0, 0)
    assert purge_results(spool.query, results, DAY_S, now=time.time() + DAY_S).files == 2
    assert not folder.exists()


def test_results_of_jobs_the_spool_already_purged_are_removed(tmp_path):
    spool, results = Spool(tmp_path / "spool", max_bytes=10**6), tmp_path / "results"
    _, folder = assessed(spool, results, 1, age_s=2 * DAY_S)
    deliver_all(spool)
    assert spool.jobs.purge(0.0) == 1
    assert purge_results(spool.query, results, DAY_S).files == 2
    assert not folder.exists()


def test_a_missing_results_folder_is_nothing_to_purge(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    assert purge_results(spool.query, tmp_path / "none", DAY_S) == PurgedResults(0, 0)
