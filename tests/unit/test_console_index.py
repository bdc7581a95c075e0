"""The console's index: following the spool, filters and keyset pages."""

from __future__ import annotations

import time

import pytest

from iqgate.node.console.feedback import Box, FeedbackKind, parse_boxes, training_label
from iqgate.node.console.follower import SpoolFollower
from iqgate.node.console.index import ConsoleIndex, IndexedImage, WorklistFilter
from iqgate.node.ops.redaction import REDACTOR
from iqgate.node.store.spool import Spool
from iqgate_testkit.console import assessed_image


def _image(number: int, *, verdict: str = "pass", ae: str = "SCANNER") -> IndexedImage:
    return IndexedImage(
        id=0,
        sop_instance_uid=f"1.2.3.{number}",
        study_uid="1.2.3",
        series_uid="1.2.3.0",
        modality="DX",
        calling_ae=ae,
        station_name="",
        study_description="",
        patient_name="",
        patient_id="",
        model="tiny-cxr",
        model_version="0.0.1",
        probability=0.9 if verdict == "flagged" else 0.1,
        threshold=0.5,
        verdict=verdict,
        method="normgrad",
        peak=None,
        hotspot=None,
        rows=96,
        columns=80,
        report_path="",
        overlay_path=None,
        image_path=None,
        assessed_at=time.time(),
    )


@pytest.fixture()
def index(tmp_path):
    index = ConsoleIndex(tmp_path / "console.sqlite3")
    yield index
    index.close()


def test_the_follower_indexes_each_assessed_image_once_with_its_header(tmp_path, index):
    spool = Spool(tmp_path / "spool", max_bytes=2**30)
    flagged = assessed_image(spool, tmp_path / "results", probability=0.9, seed=1)
    passed = assessed_image(spool, tmp_path / "results", probability=0.2, seed=2)
    follower = SpoolFollower(tmp_path / "spool", index, tmp_path / "images", retention_s=3600)
    assert follower.run_once() == 2
    assert follower.run_once() == 0
    newest, oldest = index.page(WorklistFilter()).images
    assert (newest.sop_instance_uid, oldest.sop_instance_uid) == (passed, flagged)
    assert oldest.flagged and oldest.peak == (40.0, 30.0) and oldest.patient_name == "PHANTOM^TEST"
    assert (tmp_path / "images" / f"{flagged}.dcm").read_bytes()[128:132] == b"DICM"
    assert index.last_added == newest.id
    assert REDACTOR.redact("phantom seen") == "[redacted] seen"


def test_kept_copies_outlive_the_spool_and_expire_without_feedback(tmp_path, index):
    spool = Spool(tmp_path / "spool", max_bytes=2**30)
    uids = [assessed_image(spool, tmp_path / "results", probability=0.9, seed=s) for s in (1, 2)]
    SpoolFollower(tmp_path / "spool", index, tmp_path / "images", retention_s=3600).run_once()
    for job in spool.query.jobs():
        job.path.unlink()
    index.give_feedback(uids[0], FeedbackKind.AGREE, (), "ann")
    assert index.forget_kept_images(time.time() + 1) == [
        str(tmp_path / "images" / f"{uids[1]}.dcm")
    ]
    assert index.image(uids[0]).image_path is not None
    assert (tmp_path / "images" / f"{uids[0]}.dcm").exists()


def test_filters_select_by_scanner_verdict_and_model(index):
    for number in range(6):
        index.add(_image(number, verdict="flagged" if number % 2 else "pass", ae=f"AE{number % 3}"))
    assert len(index.page(WorklistFilter(verdict="flagged")).images) == 3
    assert [i.calling_ae for i in index.page(WorklistFilter(scanner="AE1")).images] == ["AE1"] * 2
    assert index.page(WorklistFilter(model="other")).images == []
    assert len(index.page(WorklistFilter(study="1.2.3")).images) == 6
    assert index.page(WorklistFilter(study="1.2.4")).images == []
    assert index.page(WorklistFilter(since=time.time() + 60)).images == []
    assert index.choices() == {"scanners": ["AE0", "AE1", "AE2"], "models": ["tiny-cxr"]}


def test_pages_of_ten_thousand_walk_every_image_once_through_the_index(index):
    for number in range(10_000):
        index.add(_image(number, verdict="flagged" if number % 4 == 0 else "pass"))
    seen, before = [], None
    while True:
        page = index.page(WorklistFilter(), before)
        seen += [i.id for i in page.images]
        if page.older is None:
            break
        before = page.older
    assert seen == list(range(10_000, 0, -1))
    where, values = WorklistFilter(verdict="flagged").where()
    plan = index._query(
        f"EXPLAIN QUERY PLAN SELECT * FROM images WHERE {where} AND id < ? ORDER BY id DESC "
        "LIMIT 51",
        [*values, 5000],
    )
    details = " ".join(row["detail"] for row in plan)
    assert "USING INDEX images_verdict" in details and "TEMP B-TREE" not in details


def test_feedback_is_changeable_and_counted_by_model_and_kind(index):
    index.add(_image(1, verdict="flagged"))
    index.give_feedback("1.2.3.1", FeedbackKind.AGREE, (), "ann")
    index.give_feedback("1.2.3.1", FeedbackKind.FALSE_ALARM, (), "bob")
    feedback = index.image("1.2.3.1").feedback
    assert (feedback.kind, feedback.user) == (FeedbackKind.FALSE_ALARM, "bob")
    assert index.feedback_counts() == {("tiny-cxr", "false_alarm"): 1}


def test_boxes_are_parsed_ordered_and_clipped_to_the_frame():
    assert parse_boxes("[[50, 40, 10.4, 5], [-3, 0, 200, 95]]", 80, 96) == (
        Box(10, 5, 50, 40),
        Box(0, 0, 79, 95),
    )
    assert parse_boxes("", 80, 96) == ()
    with pytest.raises(ValueError, match="box 1"):
        parse_boxes("[[1, 2, 3]]", 80, 96)


@pytest.mark.parametrize(
    ("kind", "flagged", "label"),
    [
        (FeedbackKind.AGREE, True, 1),
        (FeedbackKind.AGREE, False, 0),
        (FeedbackKind.FALSE_ALARM, True, 0),
        (FeedbackKind.MISSED_DEFECT, False, 1),
        (FeedbackKind.REACQUIRED, True, 1),
    ],
)
def test_feedback_gives_the_training_label(kind, flagged, label):
    assert training_label(kind, flagged) == label


def test_live_rows_from_memory_match_the_rows_read_from_the_file(tmp_path, index):
    for number in range(8):
        index.add(_image(number, verdict="flagged" if number % 3 else "pass", ae=f"AE{number % 2}"))
    reopened = ConsoleIndex(tmp_path / "console.sqlite3")
    try:
        for after, filters in (
            (0, WorklistFilter()),
            (3, WorklistFilter(verdict="flagged")),
            (2, WorklistFilter(scanner="AE1", verdict="pass")),
            (8, WorklistFilter()),
            (1, WorklistFilter(study="1.2.3", verdict="flagged")),
        ):
            from_memory = [i.sop_instance_uid for i in index.newer_than(after, filters)]
            from_file = [i.sop_instance_uid for i in reopened.newer_than(after, filters)]
            assert from_memory == from_file, (after, filters)
        assert len(index.newer_than(0, WorklistFilter(verdict="flagged"))) == 5
    finally:
        reopened.close()
