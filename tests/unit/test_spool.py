"""The spool keeps every accepted instance, moves jobs only along allowed transitions,
resumes after a crash, backs off deliveries and purges what was delivered."""

from __future__ import annotations

import os
import stat

import pytest

from iqgate.node.delivery.policy import ExponentialBackoff
from iqgate.node.store.records import InstanceInfo, OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import (
    TRANSITIONS,
    DeliveryState,
    JobState,
    JobVerdict,
    SpoolError,
)


def info(n: int, series: str = "1.2.3.4", modality: str = "DX") -> InstanceInfo:
    return InstanceInfo(
        f"1.2.3.4.{n}", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.3", series, modality, "SCANNER"
    )


@pytest.fixture()
def spool(tmp_path) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=10_000)


def test_accepted_instances_are_on_disk_private_and_recorded(spool):
    result = spool.accept(b"DICM" * 10, info(1))
    job = spool.query.job(result.job_id)
    assert job.state is JobState.RECEIVED and job.path.read_bytes() == b"DICM" * 10
    assert stat.S_IMODE(os.stat(job.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool.root).st_mode) == 0o700
    assert spool.query.used_bytes == 40
    assert not list((spool.root / "tmp").iterdir())


def test_a_repeated_sop_instance_is_idempotent_unless_it_failed(spool):
    first = spool.accept(b"a" * 10, info(1))
    again = spool.accept(b"b" * 10, info(1))
    assert again.duplicate and again.job_id == first.job_id
    assert spool.query.job(first.job_id).path.read_bytes() == b"a" * 10
    spool.jobs.claim_received("w", 10, 60)
    spool.jobs.fail(first.job_id, "bad codec")
    retried = spool.accept(b"c" * 12, info(1))
    assert not retried.duplicate and spool.query.job(first.job_id).state is JobState.RECEIVED
    assert spool.query.used_bytes == 12


def test_room_follows_the_byte_limit(spool):
    assert spool.has_room_for(10_000)
    spool.accept(b"x" * 6000, info(1))
    assert not spool.has_room_for(5000)


def test_illegal_transitions_raise(spool):
    job_id = spool.accept(b"x", info(1)).job_id
    with pytest.raises(SpoolError, match="cannot move from received to delivered"):
        spool.jobs.move(job_id, JobState.DELIVERED)
    assert TRANSITIONS[JobState.DELIVERED] == frozenset()


def test_claimed_jobs_resume_after_a_crash(tmp_path):
    spool = Spool(tmp_path / "s", max_bytes=10_000)
    ids = [spool.accept(b"x", info(n)).job_id for n in range(3)]
    claimed = spool.jobs.claim_received("worker-1", 2, lease_s=60)
    assert [j.id for j in claimed] == ids[:2]
    restarted = Spool(tmp_path / "s", max_bytes=10_000)
    assert restarted.jobs.resume() == 2
    assert [j.id for j in restarted.query.jobs([JobState.RECEIVED])] == ids


def test_results_are_delivered_per_destination_with_backoff_and_dead_letters(spool, tmp_path):
    job_id = spool.accept(b"x", info(1)).job_id
    spool.jobs.claim_received("w", 1, 60)
    outputs = [
        OutputFile("sr", tmp_path / "sr.dcm", "9.1"),
        OutputFile("sc", tmp_path / "sc.dcm", "9.2"),
    ]
    spool.jobs.finish_assessment(
        job_id,
        verdict=JobVerdict.FLAGGED,
        report_path="r.json",
        deliveries=[(o, d) for o in outputs for d in ["A@h:1", "B@h:2"]],
    )
    assert spool.query.job(job_id).state is JobState.RESULTS_READY
    for d in spool.deliveries.claim("A@h:1", 10, 60):
        spool.deliveries.succeeded(d.id)
    assert spool.query.job(job_id).state is JobState.RESULTS_READY
    first = spool.deliveries.claim("B@h:2", 1, 60)[0]
    assert not spool.deliveries.failed(first.id, "refused", ExponentialBackoff(2, 100, 100))
    others = spool.deliveries.claim("B@h:2", 10, 60)
    assert [d.id for d in others] != [first.id]  # the failed one waits for its back-off
    for d in others:
        spool.deliveries.succeeded(d.id)
    with spool.db.transaction() as db:
        db.execute("UPDATE deliveries SET next_attempt_at = 0")
    assert [d.id for d in spool.deliveries.claim("B@h:2", 10, 60)] == [first.id]
    assert spool.deliveries.failed(first.id, "refused again", ExponentialBackoff(2, 1, 1))
    assert [d.id for d in spool.query.dead_letters()] == [first.id]
    assert spool.query.job(job_id).state is JobState.RESULTS_READY
    assert spool.jobs.retry(job_id) == 1
    with spool.db.transaction() as db:
        db.execute("UPDATE deliveries SET next_attempt_at = 0")
    for d in spool.deliveries.claim("B@h:2", 10, 60):
        spool.deliveries.succeeded(d.id)
    assert spool.query.job(job_id).state is JobState.DELIVERED
    assert spool.query.deliveries_by_state()[("B@h:2", DeliveryState.DELIVERED)] == 2


def test_without_destinations_a_job_is_delivered_at_once_and_purged_later(spool):
    job_id = spool.accept(b"x" * 100, info(1)).job_id
    path = spool.query.job(job_id).path
    spool.jobs.claim_received("w", 1, 60)
    spool.jobs.finish_assessment(job_id, verdict=JobVerdict.PASS, report_path=None, deliveries=[])
    assert spool.query.job(job_id).state is JobState.DELIVERED
    assert spool.jobs.purge(older_than_s=3600) == 0
    assert spool.jobs.purge(older_than_s=0) == 1
    assert not path.exists() and spool.query.used_bytes == 0


def test_series_groups_wait_until_quiet(spool, tmp_path):
    ids = [spool.accept(b"x", info(n, series="5.5", modality="MR")).job_id for n in range(3)]
    for job in spool.jobs.claim_received("w", 2, 60):
        spool.jobs.finish_assessment(
            job.id,
            verdict=JobVerdict.PASS,
            report_path=None,
            deliveries=[],
            series_group="5.5",
        )
    assert spool.jobs.quiet_series(0) == []  # one image of the series still queued
    job = spool.jobs.claim_received("w", 1, 60)[0]
    spool.jobs.finish_assessment(
        job.id,
        verdict=JobVerdict.PASS,
        report_path=None,
        deliveries=[],
        series_group="5.5",
    )
    assert spool.jobs.quiet_series(3600) == []
    assert spool.jobs.quiet_series(0) == ["5.5"]
    group = spool.jobs.in_group("5.5", JobState.ASSESSED)
    spool.jobs.finish_group(
        [j.id for j in group], [(OutputFile("sr", tmp_path / "sr.dcm", "9.9"), "A@h:1")]
    )
    assert spool.jobs.quiet_series(0) == []
    for d in spool.deliveries.claim("A@h:1", 10, 60):
        spool.deliveries.succeeded(d.id)
    assert {spool.query.job(i).state for i in ids} == {JobState.DELIVERED}
