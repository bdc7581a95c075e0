"""The spool keeps every accepted instance, moves jobs only along allowed transitions,
resumes after a crash, backs off deliveries and purges what was delivered."""

from __future__ import annotations

import os
import stat

import pytest

from iqgate.node.spool import (
    TRANSITIONS,
    DeliveryState,
    InstanceInfo,
    JobState,
    OutputFile,
    Spool,
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
    job = spool.job(result.job_id)
    assert job.state is JobState.RECEIVED and job.path.read_bytes() == b"DICM" * 10
    assert stat.S_IMODE(os.stat(job.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool.root).st_mode) == 0o700
    assert spool.used_bytes == 40
    assert not list((spool.root / "tmp").iterdir())


def test_a_repeated_sop_instance_is_idempotent_unless_it_failed(spool):
    first = spool.accept(b"a" * 10, info(1))
    again = spool.accept(b"b" * 10, info(1))
    assert again.duplicate and again.job_id == first.job_id
    assert spool.job(first.job_id).path.read_bytes() == b"a" * 10
    spool.claim_received("w", 10, 60)
    spool.fail(first.job_id, "bad codec")
    retried = spool.accept(b"c" * 12, info(1))
    assert not retried.duplicate and spool.job(first.job_id).state is JobState.RECEIVED
    assert spool.used_bytes == 12


def test_room_follows_the_byte_limit(spool):
    assert spool.has_room_for(10_000)
    spool.accept(b"x" * 6000, info(1))
    assert not spool.has_room_for(5000)


def test_illegal_transitions_raise(spool):
    job_id = spool.accept(b"x", info(1)).job_id
    with pytest.raises(SpoolError, match="cannot move from received to delivered"):
        spool.move(job_id, JobState.DELIVERED)
    assert TRANSITIONS[JobState.DELIVERED] == frozenset()


def test_claimed_jobs_resume_after_a_crash(tmp_path):
    spool = Spool(tmp_path / "s", max_bytes=10_000)
    ids = [spool.accept(b"x", info(n)).job_id for n in range(3)]
    claimed = spool.claim_received("worker-1", 2, lease_s=60)
    assert [j.id for j in claimed] == ids[:2]
    restarted = Spool(tmp_path / "s", max_bytes=10_000)
    assert restarted.resume() == 2
    assert [j.id for j in restarted.jobs([JobState.RECEIVED])] == ids


def test_results_are_delivered_per_destination_with_backoff_and_dead_letters(spool, tmp_path):
    job_id = spool.accept(b"x", info(1)).job_id
    spool.claim_received("w", 1, 60)
    outputs = [
        OutputFile("sr", tmp_path / "sr.dcm", "9.1"),
        OutputFile("sc", tmp_path / "sc.dcm", "9.2"),
    ]
    spool.finish_assessment(
        job_id,
        verdict="flagged",
        report_path="r.json",
        outputs=outputs,
        destinations=["A@h:1", "B@h:2"],
    )
    assert spool.job(job_id).state is JobState.RESULTS_READY
    for d in spool.claim_deliveries("A@h:1", 10, 60):
        spool.delivery_succeeded(d.id)
    assert spool.job(job_id).state is JobState.RESULTS_READY
    first = spool.claim_deliveries("B@h:2", 1, 60)[0]
    assert not spool.delivery_failed(first.id, "refused", retry_limit=2, base_s=100, max_s=100)
    others = spool.claim_deliveries("B@h:2", 10, 60)
    assert [d.id for d in others] != [first.id]  # the failed one waits for its back-off
    for d in others:
        spool.delivery_succeeded(d.id)
    with spool.transaction() as db:
        db.execute("UPDATE deliveries SET next_attempt_at = 0")
    assert [d.id for d in spool.claim_deliveries("B@h:2", 10, 60)] == [first.id]
    assert spool.delivery_failed(first.id, "refused again", retry_limit=2, base_s=1, max_s=1)
    assert [d.id for d in spool.dead_letters()] == [first.id]
    assert spool.job(job_id).state is JobState.RESULTS_READY
    assert spool.retry(job_id) == 1
    with spool.transaction() as db:
        db.execute("UPDATE deliveries SET next_attempt_at = 0")
    for d in spool.claim_deliveries("B@h:2", 10, 60):
        spool.delivery_succeeded(d.id)
    assert spool.job(job_id).state is JobState.DELIVERED
    assert spool.deliveries_by_state()[("B@h:2", DeliveryState.DELIVERED.value)] == 2


def test_without_destinations_a_job_is_delivered_at_once_and_purged_later(spool):
    job_id = spool.accept(b"x" * 100, info(1)).job_id
    path = spool.job(job_id).path
    spool.claim_received("w", 1, 60)
    spool.finish_assessment(job_id, verdict="pass", report_path=None, outputs=[], destinations=[])
    assert spool.job(job_id).state is JobState.DELIVERED
    assert spool.purge(older_than_s=3600) == 0
    assert spool.purge(older_than_s=0) == 1
    assert not path.exists() and spool.used_bytes == 0


def test_series_groups_wait_until_quiet(spool, tmp_path):
    ids = [spool.accept(b"x", info(n, series="5.5", modality="MR")).job_id for n in range(3)]
    for job in spool.claim_received("w", 2, 60):
        spool.finish_assessment(
            job.id,
            verdict="pass",
            report_path=None,
            outputs=[],
            destinations=["A@h:1"],
            series_group="5.5",
        )
    assert spool.quiet_series(0) == []  # one image of the series still queued
    job = spool.claim_received("w", 1, 60)[0]
    spool.finish_assessment(
        job.id,
        verdict="pass",
        report_path=None,
        outputs=[],
        destinations=["A@h:1"],
        series_group="5.5",
    )
    assert spool.quiet_series(3600) == []
    assert spool.quiet_series(0) == ["5.5"]
    group = spool.jobs_in_group("5.5", JobState.ASSESSED)
    spool.finish_group(
        [j.id for j in group], [OutputFile("sr", tmp_path / "sr.dcm", "9.9")], ["A@h:1"]
    )
    assert spool.quiet_series(0) == []
    for d in spool.claim_deliveries("A@h:1", 10, 60):
        spool.delivery_succeeded(d.id)
    assert {spool.job(i).state for i in ids} == {JobState.DELIVERED}
