"""The spool loses nothing acknowledged: failed writes leave nothing, lost rows come back.

A power cut cannot be staged in a test; what it can leave behind can: a complete file
under ``objects/`` whose job row never reached the disk, a half-written temporary file,
a file that no longer parses.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import threading
from io import BytesIO

import pytest

from iqgate.node.ingest.recovery import recover_files
from iqgate.node.store import files as files_module
from iqgate.node.store.records import InstanceInfo
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobState, JobVerdict
from iqgate_testkit.dicom_factory import make_image


def encoded_image(seed: int, calling: str = "CT7") -> tuple[bytes, InstanceInfo]:
    ds = make_image(seed=seed, rows=16, columns=16)
    ds.file_meta.SourceApplicationEntityTitle = calling
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    info = InstanceInfo(
        str(ds.SOPInstanceUID),
        str(ds.SOPClassUID),
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        "DX",
        calling,
    )
    return buffer.getvalue(), info


def files_in(spool: Spool) -> list[str]:
    return sorted(
        str(p.relative_to(spool.root))
        for folder in ("objects", "tmp")
        for p in (spool.root / folder).rglob("*")
        if p.is_file()
    )


@pytest.fixture()
def spool(tmp_path) -> Spool:
    return Spool(tmp_path / "spool", max_bytes=10**9)


def test_a_job_row_lost_to_a_power_cut_is_recreated_from_its_file(spool):
    data, info = encoded_image(1)
    job_id = spool.accept(data, info).job_id
    path = spool.query.job(job_id).path
    with spool.db.transaction() as db:
        db.execute("DELETE FROM jobs")  # the commit a power cut undid
    assert spool.query.used_bytes == 0
    recovery = recover_files(spool)
    assert (recovery.recorded, recovery.removed) == (1, 0)
    [job] = spool.query.jobs()
    assert job.sop_instance_uid == info.sop_instance_uid and job.state is JobState.RECEIVED
    assert job.calling_ae == "CT7" and job.path == path and job.path.read_bytes() == data
    assert spool.query.used_bytes == len(data)
    assert recover_files(spool).recorded == 0  # idempotent


def test_recovery_removes_half_written_duplicate_and_unreadable_files(spool):
    data, info = encoded_image(2)
    job = spool.query.job(spool.accept(data, info).job_id)
    (spool.root / "tmp" / "dead.part").write_bytes(data[:100])
    copy = job.path.with_name(f"{info.sop_instance_uid}.aaaaaaaaaaaa.dcm")
    copy.write_bytes(data)  # a second copy whose row lost the race
    (job.path.parent / "garbage.dcm").write_bytes(b"not dicom at all")
    recovery = recover_files(spool)
    assert (recovery.recorded, recovery.removed) == (0, 3)
    assert files_in(spool) == [str(job.path.relative_to(spool.root))]
    assert [j.state for j in spool.query.jobs()] == [JobState.RECEIVED]


def test_a_copy_of_a_failed_job_found_on_start_replaces_it(spool):
    data, info = encoded_image(3)
    job_id = spool.accept(data, info).job_id
    old = spool.query.job(job_id).path
    spool.jobs.claim_received("w", 1, 60)
    spool.jobs.fail(job_id, "decode: bad codec data")
    newer = old.with_name(f"{info.sop_instance_uid}.bbbbbbbbbbbb.dcm")
    newer.write_bytes(data)
    assert recover_files(spool).recorded == 1
    job = spool.query.job(job_id)
    assert job.state is JobState.RECEIVED and job.path == newer and not old.exists()


def test_a_write_that_fails_leaves_nothing_behind(spool, monkeypatch):
    data, info = encoded_image(4)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        spool.accept(data, info)
    assert files_in(spool) == [] and spool.query.jobs() == [] and spool.query.used_bytes == 0


def test_a_commit_that_fails_removes_the_written_file(spool, monkeypatch):
    data, info = encoded_image(5)

    def database_full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(spool, "_record", database_full)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        spool.accept(data, info)
    assert files_in(spool) == [] and spool.query.used_bytes == 0


def test_spool_files_and_database_are_readable_by_the_service_user_only(tmp_path):
    os.umask(0o022)
    spool = Spool(tmp_path / "private", max_bytes=10**9)
    data, info = encoded_image(6)
    spool.accept(data, info)
    private = {
        p: stat.S_IMODE(p.stat().st_mode)
        for p in [spool.root, *spool.root.rglob("*")]
        if p.is_file() or p.is_dir()
    }
    names = {p.name for p in private}
    assert {"jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"} <= names
    wrong = {str(p): oct(m) for p, m in private.items() if m & 0o077}
    assert wrong == {}


def test_concurrent_copies_of_one_instance_make_one_job_and_one_file(spool):
    data, info = encoded_image(7)
    results = []

    def store() -> None:
        results.append(spool.accept(data, info))

    threads = [threading.Thread(target=store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.job_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(files_in(spool)) == 1 and spool.query.used_bytes == len(data)


def test_purging_works_in_small_transactions(spool):
    ids = []
    for seed in range(5):
        data, info = encoded_image(10 + seed)
        ids.append(spool.accept(data, info).job_id)
    for job in spool.jobs.claim_received("w", 10, 60):
        spool.jobs.finish_assessment(
            job.id, verdict=JobVerdict.PASS, report_path=None, deliveries=[]
        )
    assert spool.jobs.purge(0, chunk=2) == 5
    assert spool.query.jobs() == [] and files_in(spool) == [] and spool.query.used_bytes == 0


def test_the_hand_written_file_meta_is_what_pydicom_writes():
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    from iqgate.node.ingest.header import file_meta_header

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.123"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    meta.SourceApplicationEntityTitle = "CT1"
    expected = DicomBytesIO()
    write_file_meta_info(expected, meta, enforce_standard=True)
    written = file_meta_header(
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID, "CT1"
    )
    assert written == b"\x00" * 128 + b"DICM" + expected.getvalue()
