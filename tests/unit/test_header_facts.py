"""The header is read once, at receipt: routing and series SRs work from what the job keeps."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian

from iqgate.config import Settings
from iqgate.node.ingest.header import instance_info, read_header
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.outputs.uids import IQGATE_UID_ROOT
from iqgate.node.pipeline.build import build_pipeline
from iqgate.node.pipeline.routing import route_facts, route_header
from iqgate.node.pipeline.worker import AssessmentWorker
from iqgate.node.store.queries import SpoolQueries
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import JobState, JobVerdict
from iqgate.routing_rules import HeaderFacts, Routing
from iqgate_testkit.dicom_factory import make_image
from iqgate_testkit.package_factory import tiny_package


def _encoded(ds) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_header_facts_survive_their_json_form() -> None:
    ds = make_image(modality="DX")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Manufacturer = "ScannerCo"
    ds.SeriesDescription = "Thorax pa"
    facts = HeaderFacts.from_dataset(ds)
    assert facts.image_type == ("ORIGINAL", "PRIMARY") and facts.manufacturers == ("ScannerCo",)
    assert HeaderFacts.from_json(facts.to_json()) == facts


def test_the_receiving_header_read_sees_every_fact_routing_needs() -> None:
    """The SCP reads only chosen attributes before the pixel data: those must include
    every one :class:`HeaderFacts` takes, or a received image routes unlike its file."""
    ds = make_image(modality="DX", seed=4)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesDescription = "Thorax pa"
    ds.StudyDescription = "Chest"
    ds.ProtocolName = "CXR PA"
    ds.Manufacturer = "ScannerCo"
    region = Dataset()
    region.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = [region]
    equipment = Dataset()
    equipment.Manufacturer = "iqgate"
    ds.ContributingEquipmentSequence = [equipment]
    stream = DicomBytesIO()
    stream.is_little_endian, stream.is_implicit_VR = True, False
    write_dataset(stream, ds)
    header = read_header(BytesIO(stream.getvalue()), ExplicitVRLittleEndian)
    stored = HeaderFacts.from_json(instance_info(header.dataset, "SCANNER").header_facts)
    assert stored == HeaderFacts.from_dataset(ds)
    assert stored.photometric == "MONOCHROME2" and stored.body_part == "CHEST"
    assert stored.anatomic_regions == ("Chest",) and stored.manufacturers == ("ScannerCo", "iqgate")


def test_a_received_instance_keeps_its_header_facts_with_its_job(tmp_path: Path) -> None:
    ds = make_image(modality="DX", seed=3)
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    result = spool.accept(_encoded(ds), instance_info(ds, "SCANNER"))
    job = spool.query.job(result.job_id)
    assert job.header_facts is not None
    assert HeaderFacts.from_json(job.header_facts) == HeaderFacts.from_dataset(ds)
    assert "PHANTOM" not in job.header_facts and "FAKE-" not in job.header_facts


def test_routing_a_stored_summary_decides_as_routing_the_header() -> None:
    rules = {"tiny-cxr": Routing(modalities=["DX"])}
    for ds in (make_image(modality="DX"), make_image(modality="MR"), _own_sr_like()):
        stored = HeaderFacts.from_json(HeaderFacts.from_dataset(ds).to_json())
        assert route_facts(rules, stored) == route_header(rules, ds)
    assert route_facts(rules, HeaderFacts.from_dataset(_own_sr_like())).label == "own output"


def _own_sr_like():
    ds = make_image(modality="DX", sop_uid=IQGATE_UID_ROOT + "9.9")
    ds.Manufacturer = "iqgate"
    return ds


@contextmanager
def assessing_worker(
    tmp_path: Path, model: str, modality: str
) -> Iterator[tuple[AssessmentWorker, Spool]]:
    """A worker in this thread over a fresh spool, with one tiny package for ``modality``
    (series are quiet at once), and its spool."""
    models = tmp_path / "models"
    tiny_package(models, model, modalities=[modality])
    settings = Settings(
        spool_dir=tmp_path / "spool",
        results_dir=tmp_path / "results",
        models_dir=models,
        decode_processes=0,
        classifier="torch",
        device="cpu",
        series_quiet_s=0.0,
    )
    spool = Spool(settings.spool_dir, max_bytes=10_000_000)
    pipeline = build_pipeline(settings)
    try:
        yield AssessmentWorker(settings, spool, pipeline, NodeMetrics(spool.query)), spool
    finally:
        pipeline.close()


@pytest.fixture()
def worker(tmp_path: Path) -> Iterator[tuple[AssessmentWorker, Spool]]:
    with assessing_worker(tmp_path, "tiny-cxr", "DX") as pair:
        yield pair


def test_the_worker_routes_by_the_facts_stored_at_receipt(worker) -> None:
    """The file says DX (a model applies); the stored facts say MR: the facts decide, so
    the header is not read again."""
    assess, spool = worker
    ds = make_image(modality="DX", seed=5)
    info = instance_info(ds, "SCANNER")
    as_mr = replace(HeaderFacts.from_json(info.header_facts), modality="MR")
    job_id = spool.accept(_encoded(ds), replace(info, header_facts=as_mr.to_json())).job_id
    assert assess.run_once()
    job = spool.query.job(job_id)
    assert job.verdict is JobVerdict.NOT_ASSESSED and "modality" in (job.reason or "")


def test_a_job_stored_without_facts_is_routed_from_its_file(worker) -> None:
    """Jobs a spool took before it kept header facts (a table of the earlier schema)."""
    assess, spool = worker
    ds = make_image(modality="DX", seed=6)
    job_id = spool.accept(
        _encoded(ds), replace(instance_info(ds, "SCANNER"), header_facts="")
    ).job_id
    assert spool.query.job(job_id).header_facts is None
    assert assess.run_once()
    job = spool.query.job(job_id)
    assert job.state in (JobState.ASSESSED, JobState.RESULTS_READY, JobState.DELIVERED)
    assert job.verdict in (JobVerdict.PASS, JobVerdict.FLAGGED)


def test_a_job_table_of_the_earlier_schema_gains_the_facts_column(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    Spool(root, max_bytes=1).close()
    database = root / "jobs.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE jobs DROP COLUMN header_facts")
        db.execute(
            "INSERT INTO jobs (sop_instance_uid, sop_class_uid, study_uid, series_uid, modality,"
            " calling_ae, path, size_bytes, state, received_at, updated_at)"
            " VALUES ('1.2.3', '1.2.840.10008.5.1.4.1.1.1.1', '1.2', '1.2.4', 'DX', 'S',"
            " 'objects/x.dcm', 10, 'received', 1.0, 1.0)"
        )
    reader = SpoolQueries.open(root)  # read-only, as the CLI and the soak harness open it
    (job,) = reader.jobs()
    reader.close()
    assert job.sop_instance_uid == "1.2.3" and job.header_facts is None
    reopened = Spool(root, max_bytes=1)
    (job,) = reopened.query.jobs()
    assert job.sop_instance_uid == "1.2.3" and job.header_facts is None
    columns = {row[1] for row in reopened.db.connection().execute("PRAGMA table_info(jobs)")}
    assert "header_facts" in columns


def test_a_series_sr_reads_only_its_first_header_and_references_every_image(
    tmp_path: Path,
) -> None:
    with assessing_worker(tmp_path, "tiny-cmr", "MR") as (assess, spool):
        series = "1.2.826.0.1.3680043.8.498.7.7"
        images = [
            make_image(modality="MR", seed=20 + i, study_uid=series + ".1", series_uid=series)
            for i in range(3)
        ]
        ids = [spool.accept(_encoded(ds), instance_info(ds, "MRI")).job_id for ds in images]
        while assess.run_once():
            pass
        for job_id in ids[1:]:
            spool.query.job(job_id).path.unlink()  # only the first image's header is read
        assert assess.series.flush()
        (sr_path,) = (tmp_path / "results").rglob("*.sr.dcm")
        sr = dcmread(sr_path)
        (study,) = sr.CurrentRequestedProcedureEvidenceSequence
        referenced = {
            item.ReferencedSOPInstanceUID
            for series_item in study.ReferencedSeriesSequence
            for item in series_item.ReferencedSOPSequence
        }
        assert referenced == {str(ds.SOPInstanceUID) for ds in images}
        assert str(sr.PatientName) == str(images[0].PatientName)
