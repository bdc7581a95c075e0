"""The node's outputs for each assessed image: UIDs, findings, JSON report, SR and SC."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import torch
import torch.nn.functional as F
from node_results_helpers import (
    CREATED_AT,
    MODEL,
    dciodvfy_messages,
    make_report,
    make_source,
)
from pydantic import ValidationError

from iqgate.errors import SaliencyError
from iqgate.node.outputs.equipment import iqgate_equipment
from iqgate.node.outputs.findings import locate_finding
from iqgate.node.outputs.overlay import blend_heatmap, build_overlay
from iqgate.node.outputs.report import AssessmentReport, SaliencyResult, Verdict, schema_text
from iqgate.node.outputs.sr import (
    FLAGGED,
    IQGATE_CODING_SCHEME,
    IQGATE_SCHEME,
    PASSED,
    build_sr,
    finding_code,
)
from iqgate.node.outputs.uids import IQGATE_UID_ROOT, OutputUids, derive_uid, is_own_output

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None,
    reason="dciodvfy (Debian package dicom3tools) is not installed; .ci/run installs it",
)


def presentation_frame(rows: int = 200, columns: int = 160) -> np.ndarray:
    """A windowed grey ramp [rows, columns] in [0, 1]."""
    return np.linspace(0.0, 1.0, rows * columns, dtype=np.float32).reshape(rows, columns)


def blob(rows: int, columns: int, centre_xy: tuple[float, float], sigma: float) -> np.ndarray:
    """A Gaussian saliency blob in [0, 1] with its peak at ``centre_xy`` = (x, y)."""
    y, x = np.mgrid[:rows, :columns]
    cx, cy = centre_xy
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def write_and_read(dataset: pydicom.Dataset, path: Path) -> pydicom.Dataset:
    dataset.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


# --- UIDs -------------------------------------------------------------------------------


def uids_for(sop: str = "1.2.3.4", series: str = "1.2.3", **changes: object) -> OutputUids:
    arguments: dict[str, object] = {
        "series_instance_uid": series,
        "sop_instance_uid": sop,
        "model_name": "m",
        "model_version": "1",
    }
    arguments.update(changes)
    return OutputUids.for_image(**arguments)  # type: ignore[arg-type]


def test_output_uids_are_the_same_when_the_same_source_is_assessed_again() -> None:
    assert uids_for() == uids_for()
    assert all(
        uid.startswith(IQGATE_UID_ROOT) and len(uid) <= 64 for uid in vars(uids_for()).values()
    )


def test_output_uids_differ_per_kind_source_frame_and_model_version() -> None:
    uids = uids_for()
    assert len(set(vars(uids).values())) == 4
    assert uids_for(sop="1.2.3.5").sc_instance != uids.sc_instance
    assert uids_for(frame_number=2).sc_instance != uids_for(frame_number=3).sc_instance
    assert uids_for(model_version="2").sr_instance != uids.sr_instance
    assert uids_for(sop="1.2.3.5").sc_series == uids.sc_series


def test_one_sr_per_series_gives_every_image_of_the_series_the_same_sr_uid() -> None:
    first = uids_for(sop="1.2.3.4", sr_per_series=True)
    second = uids_for(sop="1.2.3.5", sr_per_series=True)
    assert first.sr_instance == second.sr_instance
    assert first.sr_instance != uids_for(sop="1.2.3.4").sr_instance


def test_derive_uid_separates_its_parts_and_checks_the_root() -> None:
    assert derive_uid("ab", "c") != derive_uid("a", "bc")
    assert derive_uid("x", root="1.2.3.").startswith("1.2.3.")
    with pytest.raises(ValueError, match=r"root must end with '\.'"):
        derive_uid("x", root="1.2.3")


def test_own_outputs_are_recognised_by_root_and_equipment_but_sources_are_not() -> None:
    source = make_source()
    report, uids = make_report(source)
    sr = build_sr([source], [report], uids=uids)
    assert is_own_output(sr)
    assert not is_own_output(source)
    stranger = make_source()
    stranger.SOPInstanceUID = derive_uid("someone else's image")
    assert not is_own_output(stranger)


# --- findings ---------------------------------------------------------------------------


def test_peak_and_box_map_back_to_source_pixels_without_swapping_x_and_y() -> None:
    saliency = np.zeros((32, 32), dtype=np.float32)
    saliency[4:8, 20:26] = 0.6  # hot spot: input rows 4..7, columns 20..25
    saliency[5, 22] = 1.0  # peak: row 5, column 22
    saliency[20:24, 2:4] = 0.9  # a second, separate region is not part of the box
    finding = locate_finding(saliency, (200, 160))  # H = 200 rows, W = 160 columns
    assert finding.peak_xy == pytest.approx((22.5 * 5 - 0.5, 5.5 * 6.25 - 0.5))
    assert finding.hotspot_box == pytest.approx((99.5, 24.5, 129.5, 49.5))


def test_the_first_maximum_in_row_major_order_is_the_peak() -> None:
    saliency = np.zeros((8, 8), dtype=np.float32)
    saliency[6, 1] = saliency[2, 5] = 1.0
    assert locate_finding(saliency, (8, 8)).peak_xy == (5.0, 2.0)


def test_a_map_without_a_positive_peak_points_nowhere() -> None:
    with pytest.raises(SaliencyError, match="peaks at 0.0"):
        locate_finding(np.zeros((8, 8), dtype=np.float32), (64, 64))


# --- JSON report ------------------------------------------------------------------------


def test_report_round_trips_through_json_without_patient_identifiers() -> None:
    report, _ = make_report(make_source())
    text = report.model_dump_json(indent=2)
    assert AssessmentReport.model_validate_json(text) == report
    assert "Müller" not in text and "PID-0001" not in text and "ACC-42" not in text
    assert json.loads(text)["verdict"] == "flagged"


def test_report_refuses_a_verdict_that_contradicts_the_probability() -> None:
    report, _ = make_report(make_source())
    fields = report.model_dump()
    fields["verdict"] = Verdict.PASS
    with pytest.raises(ValidationError, match="expected 'flagged'"):
        AssessmentReport.model_validate(fields)


def test_report_needs_created_at_with_a_utc_offset() -> None:
    fields = make_report(make_source())[0].model_dump()
    fields["created_at"] = "2024-05-06T07:08:09"
    with pytest.raises(ValidationError, match="UTC offset"):
        AssessmentReport.model_validate(fields)


def test_committed_schema_equals_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "docs/report.schema.json is stale: run "
        "`python -m iqgate.node.outputs.report docs/report.schema.json`"
    )


# --- SR ---------------------------------------------------------------------------------


@needs_dciodvfy
def test_sr_of_a_radiograph_is_valid_in_the_source_study_and_references_it(tmp_path: Path) -> None:
    source = make_source()
    report, uids = make_report(source)
    sr = write_and_read(build_sr([source], [report], uids=uids), tmp_path / "sr.dcm")

    assert sr.SpecificCharacterSet == "ISO_IR 100"
    assert str(sr.PatientName) == "Müller^Jürgen"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.SeriesInstanceUID == uids.sr_series != source.SeriesInstanceUID
    assert sr.SOPInstanceUID == uids.sr_instance
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    scheme = sr.CodingSchemeIdentificationSequence[0]
    assert scheme.CodingSchemeDesignator == IQGATE_SCHEME

    parsed = hd.sr.Comprehensive3DSR.from_dataset(sr)
    (image_group,) = parsed.content.get_image_measurement_groups()
    assert image_group.get_measurements()[0].value == pytest.approx(0.9)
    assert image_group.get_qualitative_evaluations()[0].value == FLAGGED
    assert image_group.finding_type == finding_code("Foreign object")
    (roi_group,) = parsed.content.get_planar_roi_measurement_groups()
    assert roi_group.roi.GraphicType == "POLYLINE"
    np.testing.assert_allclose(  # DICOM image coordinates: pixel-centre ones + 0.5
        roi_group.roi.value, [[100, 25], [130, 25], [130, 50], [100, 50], [100, 25]]
    )
    selected_from = roi_group.roi.ContentSequence[0].ReferencedSOPSequence[0]
    assert selected_from.ReferencedSOPInstanceUID == source.SOPInstanceUID

    errors, _ = dciodvfy_messages(tmp_path / "sr.dcm")
    assert errors == []


@needs_dciodvfy
def test_one_sr_carries_a_group_per_image_of_an_mr_series(tmp_path: Path) -> None:
    first = make_source(modality="MR", charset="ISO_IR 192", patient_name="Ødegård^Åse")
    second = make_source(
        modality="MR",
        charset="ISO_IR 192",
        patient_name="Ødegård^Åse",
        study_uid=first.StudyInstanceUID,
        series_uid=first.SeriesInstanceUID,
        instance_number=2,
    )
    flagged, uids = make_report(first, hotspot_box=None, sr_per_series=True)
    passed, same_uids = make_report(
        second, probability=0.1, peak_xy=None, hotspot_box=None, sr_per_series=True
    )
    assert same_uids.sr_instance == uids.sr_instance
    sr = write_and_read(
        build_sr([first, second], [flagged, passed], uids=uids), tmp_path / "sr.dcm"
    )

    assert str(sr.PatientName) == "Ødegård^Åse"
    parsed = hd.sr.Comprehensive3DSR.from_dataset(sr)
    groups = parsed.content.get_image_measurement_groups()
    assert [g.get_qualitative_evaluations()[0].value for g in groups] == [FLAGGED, PASSED]
    (roi_group,) = parsed.content.get_planar_roi_measurement_groups()  # only the explained one
    assert roi_group.roi.GraphicType == "POINT"
    np.testing.assert_allclose(roi_group.roi.value, [[112.5, 34.375]])
    errors, _ = dciodvfy_messages(tmp_path / "sr.dcm")
    assert errors == []


@needs_dciodvfy
def test_frames_of_a_multi_frame_image_get_their_own_groups_in_one_sr(tmp_path: Path) -> None:
    source = make_source(modality="OT", frames=2)
    first, uids = make_report(source, frame_number=1)
    second, _ = make_report(source, frame_number=2, peak_xy=(3.0, 4.0), hotspot_box=None)
    sr = write_and_read(build_sr([source], [first, second], uids=uids), tmp_path / "sr.dcm")

    parsed = hd.sr.Comprehensive3DSR.from_dataset(sr)
    rois = parsed.content.get_planar_roi_measurement_groups()
    frames = [
        roi.roi.ContentSequence[0].ReferencedSOPSequence[0].ReferencedFrameNumber for roi in rois
    ]
    assert frames == [1, 2]
    errors, _ = dciodvfy_messages(tmp_path / "sr.dcm")
    assert errors == []


CREATION_TIMES = frozenset({"InstanceCreationDate", "InstanceCreationTime", "ContributionDateTime"})
ROOT_CONTENT = (
    "ValueType",
    "ConceptNameCodeSequence",
    "ContinuityOfContent",
    "ContentTemplateSequence",
    "ContentSequence",
)


def without_creation_times(ds: pydicom.Dataset) -> pydicom.Dataset:
    """A copy of ``ds`` with the instance-creation time stamps removed at every level."""
    copy = pydicom.dcmread(_encoded(ds))

    def strip(item: pydicom.Dataset, element: pydicom.DataElement) -> None:
        if element.keyword in CREATION_TIMES:
            del item[element.tag]

    copy.walk(strip)
    return copy


def _encoded(ds: pydicom.Dataset) -> pydicom.filebase.DicomBytesIO:
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def test_sr_document_has_exactly_the_attributes_highdicom_gives_it() -> None:
    """build_sr assembles the document around highdicom's content tree itself (for speed);
    it must equal what highdicom's Comprehensive3DSR makes of the same tree and sources."""
    first = make_source(modality="MR", charset="ISO_IR 192", patient_name="Ødegård^Åse")
    first.PatientAge, first.PatientWeight, first.StudyDescription = "061Y", 71.5, "Heart"
    second = make_source(
        modality="MR",
        study_uid=first.StudyInstanceUID,
        charset="ISO_IR 192",
        instance_number=2,
    )
    third = make_source(
        modality="MR",
        study_uid=first.StudyInstanceUID,
        series_uid=second.SeriesInstanceUID,
        instance_number=3,
    )
    del third.Manufacturer
    sources = [first, second, third]
    reports = [make_report(s, sr_per_series=True)[0] for s in sources[:2]]
    reports.append(make_report(third, peak_xy=None, hotspot_box=None, probability=0.2)[0])
    uids = make_report(first, sr_per_series=True)[1]
    ours = build_sr(sources, reports, uids=uids)

    content = pydicom.Dataset()
    for keyword in ROOT_CONTENT:
        setattr(content, keyword, ours[keyword].value)
    reference = hd.sr.Comprehensive3DSR(
        evidence=sources,
        content=content,
        series_instance_uid=uids.sr_series,
        series_number=ours.SeriesNumber,
        sop_instance_uid=uids.sr_instance,
        instance_number=1,
        manufacturer=ours.Manufacturer,
        is_complete=True,
        series_description=ours.SeriesDescription,
        manufacturer_model_name=ours.ManufacturerModelName,
        software_versions=ours.SoftwareVersions,
        content_date=ours.ContentDate,
        content_time=ours.ContentTime,
        coding_schemes=[IQGATE_CODING_SCHEME],
        contributing_equipment=[iqgate_equipment(MODEL, f"image quality assessment: {MODEL.task}")],
    )

    expected, actual = without_creation_times(reference), without_creation_times(ours)
    assert [e.keyword for e in actual] == [e.keyword for e in expected]
    assert actual == expected
    assert actual.file_meta == expected.file_meta
    studies = actual.CurrentRequestedProcedureEvidenceSequence
    assert [len(s.ReferencedSOPSequence) for s in studies[0].ReferencedSeriesSequence] == [1, 2]
    assert [e.Manufacturer for e in actual.ContributingEquipmentSequence][:2] == [
        "ScannerCo",
        "iqgate",
    ]


def test_sr_refuses_reports_without_their_source_dataset() -> None:
    source = make_source()
    report, uids = make_report(source)
    with pytest.raises(ValueError, match="has no source dataset"):
        build_sr([make_source()], [report], uids=uids)


def test_unknown_defect_classes_get_the_generic_private_finding() -> None:
    assert finding_code("LVOT visible").value == "IQG002"
    assert finding_code("streak artefact").value == "IQG006"


# --- SC overlay -------------------------------------------------------------------------


@needs_dciodvfy
@pytest.mark.parametrize(
    ("charset", "name"), [("ISO_IR 100", "Müller^Jürgen"), ("ISO_IR 192", "Ødegård^Åse")]
)
def test_overlay_is_a_valid_burned_in_secondary_capture_in_the_source_study(
    tmp_path: Path, charset: str, name: str
) -> None:
    source = make_source(charset=charset, patient_name=name)
    report, uids = make_report(source)
    saliency = blob(200, 160, report.saliency.peak_xy or (0, 0), sigma=12.0)
    sc = write_and_read(
        build_overlay(source, presentation_frame(), saliency, report, uids), tmp_path / "sc.dcm"
    )

    assert sc.SpecificCharacterSet == charset
    assert str(sc.PatientName) == name
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.SeriesInstanceUID == uids.sc_series != source.SeriesInstanceUID
    assert sc.SOPInstanceUID == uids.sc_instance
    assert sc.BurnedInAnnotation == "YES"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.ContributingEquipmentSequence[0].Manufacturer == "iqgate"
    assert sc.ContributingEquipmentSequence[0].ManufacturerModelName == MODEL.name
    assert "DerivationDescription" in sc and "Laterality" in sc
    assert is_own_output(sc)

    pixels = sc.pixel_array
    assert sc.PhotometricInterpretation == "RGB" and pixels.dtype == np.uint8
    assert max(pixels.shape[:2]) >= 512  # a small source is enlarged so the banner reads
    banner_rows = pixels.shape[0] - round(200 * 512 / 200)
    banner = pixels[:banner_rows]
    assert (banner[..., 0] > 200).any() and banner.mean() < 60  # red verdict text on black
    image = pixels[banner_rows:].astype(int)
    hot = image[round(33.875 * 2.56), round(112 * 2.56) + 20]
    assert hot[0] > hot[2] + 50  # red heat near the peak on a grey image
    assert abs(image[-1, 5, 0] - image[-1, 5, 2]) < 8  # grey far from it

    errors, _ = dciodvfy_messages(tmp_path / "sc.dcm")
    assert errors == []


def test_overlay_of_a_large_source_is_shrunk_and_of_an_unexplained_image_has_no_heat() -> None:
    source = make_source(rows=2400, columns=1800)
    report, uids = make_report(source, probability=0.2, peak_xy=None, hotspot_box=None)
    sc = build_overlay(source, presentation_frame(2400, 1800), None, report, uids)
    pixels = sc.pixel_array
    assert pixels.shape[1] == 768
    image = pixels[pixels.shape[0] - 1024 :].astype(int)
    assert np.abs(image[..., 0] - image[..., 2]).max() <= 1


def test_heat_blend_is_within_one_grey_level_of_the_exact_colour_map() -> None:
    rng = np.random.default_rng(5)
    grey, heat = rng.random((64, 48)), rng.random((64, 48))
    stops = [0.0, 0.125, 0.375, 0.625, 0.875, 1.0]
    rgb = [[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]]
    exact_jet = np.stack([np.interp(heat, stops, [c[i] for c in rgb]) for i in range(3)], -1)
    alpha = 0.6 * heat[..., None]
    exact = np.round(255 * ((1 - alpha) * grey[..., None] + alpha * exact_jet))

    blended = blend_heatmap(grey, heat)
    assert blended.dtype == np.uint8 and blended.shape == (64, 48, 3)
    assert np.abs(blended.astype(int) - exact).max() <= 1
    np.testing.assert_array_equal(
        blend_heatmap(grey, np.zeros_like(heat))[..., 0], np.round(255 * grey)
    )


def test_overlay_takes_the_model_map_as_if_it_were_resized_to_the_source_first() -> None:
    source = make_source()
    report, uids = make_report(source)
    frame = presentation_frame()
    model_map = blob(64, 64, (40.0, 12.0), sigma=4.0)
    at_source = F.interpolate(
        torch.from_numpy(model_map)[None, None], size=frame.shape, mode="bilinear"
    )[0, 0].numpy()

    direct = build_overlay(source, frame, model_map, report, uids).pixel_array.astype(int)
    via_source = build_overlay(source, frame, at_source, report, uids).pixel_array.astype(int)

    assert direct.shape == via_source.shape
    assert np.abs(direct - via_source).max() <= 4  # of 255; the two resamplings differ

    def most_coloured(overlay: np.ndarray) -> np.ndarray:
        image = overlay[overlay.shape[0] - 512 :]  # below the banner; 200 rows -> 512
        colour = np.abs(image - image.mean(axis=-1, keepdims=True)).sum(axis=-1)
        return np.array(np.unravel_index(np.argmax(colour), colour.shape))

    assert np.abs(most_coloured(direct) - most_coloured(via_source)).max() <= 2
    with pytest.raises(ValueError, match="2-D map"):
        build_overlay(source, frame, np.zeros(32), report, uids)


def test_saliency_result_needs_a_peak_for_a_box() -> None:
    with pytest.raises(ValidationError, match="without a peak_xy"):
        SaliencyResult(method="m", peak_xy=None, hotspot_box=(0, 0, 1, 1))


def test_created_at_fixes_the_content_date_and_time() -> None:
    source = make_source()
    report, uids = make_report(source)
    sr = build_sr([source], [report], uids=uids)
    assert CREATED_AT == "2024-05-06T07:08:09.123456+00:00"
    assert (str(sr.ContentDate), str(sr.ContentTime)) == ("20240506", "070809.123456")
