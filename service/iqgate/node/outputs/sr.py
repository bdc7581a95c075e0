"""The TID 1500 Measurement Report (Comprehensive 3D SR) that carries the node's findings.

One SR document covers the images of one source series assessed by one model: one
image for a radiograph, every assessed image for an MR series (so a cine does not
flood PACS). For each assessed image (each frame of a multi-frame image) the
Imaging Measurements container (PS3.16 TID 1500) holds

- an image-level group, TID 1501 *Measurement and Qualitative Evaluation Group*: the
  defect as the finding type, the verdict as a qualitative evaluation, the defect
  probability and the decision threshold as measurements (unit UCUM ``1``), the
  algorithm identification (TID 4019: model name and version, manufacturer, saliency
  method as a parameter) and the source image;
- when the image was explained, a TID 1410 *Planar ROI Measurements and Qualitative
  Evaluations* group whose Image Region is the hot-spot box as a closed POLYLINE, or
  the peak as a POINT when there is no box, on the source image (frame).

The document is in the source's study (patient and study modules and the Specific
Character Set are copied from the first source) and in a series of its own; the
Current Requested Procedure Evidence Sequence references every source. Spatial
coordinates are DICOM image coordinates (PS3.3 C.18.6.1.1), i.e. the report's pixel-
centre coordinates plus 0.5 (:func:`iqgate.node.outputs.findings.to_dicom_image_coordinates`).

Codes
-----
Standard codes are used wherever they exist: DCM 126000 "Imaging Measurement Report",
DCM 125007 "Measurement Group", DCM 111001 "Algorithm Name", DCM 111003 "Algorithm
Version", DCM 111002 "Algorithm Parameters", DCM 122405 "Algorithm Manufacturer", DCM
121071 "Finding", SCT 370129005 "Measurement Method", DCM 121049 "Language of Content
Item and Descendants", DCM 121012 "Device Observer UID", SCT 363679005 "Imaging
procedure", UCUM ``1`` "no units". The concepts below have no standard equivalent and
use the private coding scheme designator ``99IQGATE`` (private designators begin with
"99", PS3.3 8.2; declared in the Coding Scheme Identification Sequence):

======  ================================  ===================================
code    meaning                           used as
======  ================================  ===================================
IQG001  Foreign object present            finding type (class "foreign object")
IQG002  LVOT visible                      finding type (class "lvot")
IQG003  Image quality gate verdict        concept name of the verdict
IQG004  Defect probability                concept name of a measurement
IQG005  Decision threshold                concept name of a measurement
IQG006  Local image quality defect        finding type of any other defect class
IQG007  Flagged                           verdict value
IQG008  Pass                              verdict value
IQG009  Saliency map localization         measurement method of the ROI group
======  ================================  ===================================

Class names are matched case-insensitively with runs of other characters than
letters and digits read as ``_`` ("Foreign object", "foreign-object" and
"foreign_object_present" all give IQG001).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import Comprehensive3DSRStorage, ExplicitVRLittleEndian

from iqgate import __version__
from iqgate.node.outputs.equipment import iqgate_equipment
from iqgate.node.outputs.findings import to_dicom_image_coordinates
from iqgate.node.outputs.report import AssessmentReport, ModelRef, Verdict
from iqgate.node.outputs.uids import IQGATE_MANUFACTURER, IQGATE_UID_ROOT, OutputUids, derive_uid

IQGATE_SCHEME = "99IQGATE"
FOREIGN_OBJECT_PRESENT = Code("IQG001", IQGATE_SCHEME, "Foreign object present")
LVOT_VISIBLE = Code("IQG002", IQGATE_SCHEME, "LVOT visible")
GATE_VERDICT = Code("IQG003", IQGATE_SCHEME, "Image quality gate verdict")
DEFECT_PROBABILITY = Code("IQG004", IQGATE_SCHEME, "Defect probability")
DECISION_THRESHOLD = Code("IQG005", IQGATE_SCHEME, "Decision threshold")
LOCAL_QUALITY_DEFECT = Code("IQG006", IQGATE_SCHEME, "Local image quality defect")
FLAGGED = Code("IQG007", IQGATE_SCHEME, "Flagged")
PASSED = Code("IQG008", IQGATE_SCHEME, "Pass")
SALIENCY_LOCALIZATION = Code("IQG009", IQGATE_SCHEME, "Saliency map localization")

VERDICT_CODES: dict[Verdict, Code] = {Verdict.FLAGGED: FLAGGED, Verdict.PASS: PASSED}
DEFECT_FINDINGS: dict[str, Code] = {
    "foreign_object": FOREIGN_OBJECT_PRESENT,
    "foreign_object_present": FOREIGN_OBJECT_PRESENT,
    "lvot": LVOT_VISIBLE,
    "lvot_visible": LVOT_VISIBLE,
}
MeasurementGroup: TypeAlias = (
    hd.sr.MeasurementsAndQualitativeEvaluations
    | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
)
"""A TID 1501 (image) or TID 1410 (planar ROI) group in the Imaging Measurements."""

SR_SERIES_NUMBER = 9902
"""Series Number of the SR series (high, so viewers list it after the acquired series)."""

IQGATE_CODING_SCHEME = CodingSchemeIdentificationItem(
    designator=IQGATE_SCHEME,
    name="iqgate image quality gate codes",
    responsible_organization="iqgate project",
)


def finding_code(defect_class: str) -> Code:
    """The finding-type code of a defect class name (see the table above)."""
    key = re.sub(r"[^a-z0-9]+", "_", defect_class.lower()).strip("_")
    return DEFECT_FINDINGS.get(key, LOCAL_QUALITY_DEFECT)


def build_sr(
    sources: Sequence[Dataset],
    reports: Sequence[AssessmentReport],
    *,
    uids: OutputUids,
    device_name: str = IQGATE_MANUFACTURER,
    series_number: int = SR_SERIES_NUMBER,
    uid_root: str = IQGATE_UID_ROOT,
) -> hd.SOPClass:
    """Build the TID 1500 Measurement Report for images of one series and one model.

    Parameters
    ----------
    sources
        Headers of the assessed images (pixel data is not read); the first one gives
        the patient and study attributes. Every report's source must be among them.
    reports
        One :class:`~iqgate.node.outputs.report.AssessmentReport` per assessed image or
        frame, all from the same model and study, in the order the groups appear.
    uids
        Output UIDs; ``sr_series`` and ``sr_instance`` are used.
    device_name
        Name of the observing device (TID 1004), e.g. the node's AE title.
    series_number
        Series Number of the SR.
    uid_root
        Root of the device observer and tracking UIDs (see :mod:`iqgate.node.outputs.uids`).

    Returns
    -------
    highdicom.SOPClass
        The Comprehensive 3D SR document: complete, unverified, preliminary (machine-
        made, not for diagnosis). The content tree is built with highdicom's TID 1500
        classes; the document around it is assembled here (highdicom's
        ``Comprehensive3DSR`` constructor copies and re-parses the whole tree, about
        half of the cost of writing a radiograph's SR), with the same attributes.
    """
    evidence = _evidence(sources, reports)
    groups: list[MeasurementGroup] = []
    for report in reports:
        groups.extend(_groups_of(report, uid_root))
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derive_uid("device observer", device_name, root=uid_root),
        name=device_name,
        manufacturer_name=IQGATE_MANUFACTURER,
        model_name=IQGATE_MANUFACTURER,
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Device, observer_identifying_attributes=device
            )
        ),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    created = max(datetime.fromisoformat(report.created_at) for report in reports)
    return _document(evidence, content[0], uids, reports[0].model, created, series_number)


def _document(
    evidence: Sequence[Dataset],
    root: Dataset,
    uids: OutputUids,
    model: ModelRef,
    created: datetime,
    series_number: int,
) -> hd.SOPClass:
    """The SR document around the content tree ``root``, in the study of ``evidence[0]``.

    The attributes highdicom's ``Comprehensive3DSR`` gives it (SOP common, patient and
    study copied from the first source, SR document general, evidence, contributing
    equipment), without its deep copy and re-parse of the tree.
    """
    first = evidence[0]
    document = hd.SOPClass(
        study_instance_uid=first.StudyInstanceUID,
        series_instance_uid=uids.sr_series,
        series_number=series_number,
        sop_instance_uid=uids.sr_instance,
        sop_class_uid=Comprehensive3DSRStorage,
        instance_number=1,
        modality="SR",
        manufacturer=IQGATE_MANUFACTURER,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        patient_id=first.PatientID,
        patient_name=first.PatientName,
        patient_birth_date=first.PatientBirthDate,
        patient_sex=first.PatientSex,
        accession_number=first.AccessionNumber,
        study_id=first.StudyID,
        study_date=first.StudyDate,
        study_time=first.StudyTime,
        referring_physician_name=first.get("ReferringPhysicianName"),
        coding_schemes=[IQGATE_CODING_SCHEME],
        series_description=f"iqgate {model.name} findings (not for diagnosis)"[:64],
        manufacturer_model_name=IQGATE_MANUFACTURER,
        software_versions=__version__,
        content_date=created.date(),
        content_time=created.time().replace(tzinfo=None),
        specific_character_set=first.get("SpecificCharacterSet"),
    )
    document.CompletionFlag = "COMPLETE"
    document.VerificationFlag = "UNVERIFIED"
    document.PreliminaryFlag = "PRELIMINARY"
    for element in root:
        document.add(element)
    document.CurrentRequestedProcedureEvidenceSequence = _evidence_references(evidence)
    document.PerformedProcedureCodeSequence = []
    document.ReferencedPerformedProcedureStepSequence = []
    document.copy_patient_and_study_information(first)
    document.ContributingEquipmentSequence = [
        *_acquisition_equipment(first),
        iqgate_equipment(model, f"image quality assessment: {model.task}"),
        hd.ContributingEquipment.for_highdicom(),
    ]
    return document


def _evidence_references(sources: Sequence[Dataset]) -> list[Dataset]:
    """Current Requested Procedure Evidence items (PS3.3 C.17.2.3) for unique ``sources``.

    One item per study, one Referenced Series item per series, in the order of ``sources``.
    """
    studies: dict[str, dict[str, list[Dataset]]] = {}
    for ds in sources:
        instance = Dataset()
        instance.ReferencedSOPClassUID = ds.SOPClassUID
        instance.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        series = studies.setdefault(str(ds.StudyInstanceUID), {})
        series.setdefault(str(ds.SeriesInstanceUID), []).append(instance)
    items = []
    for study_uid, series in studies.items():
        study = Dataset()
        study.StudyInstanceUID = study_uid
        study.ReferencedSeriesSequence = []
        for series_uid, instances in series.items():
            item = Dataset()
            item.SeriesInstanceUID = series_uid
            item.ReferencedSOPSequence = instances
            study.ReferencedSeriesSequence.append(item)
        items.append(study)
    return items


def _acquisition_equipment(source: Dataset) -> list[hd.ContributingEquipment]:
    """The source's acquisition equipment, when its header names it."""
    try:
        return [hd.ContributingEquipment.for_image_acquisition(source)]
    except (AttributeError, TypeError, ValueError):
        return []


def _evidence(sources: Sequence[Dataset], reports: Sequence[AssessmentReport]) -> list[Dataset]:
    """Unique sources in order, after checking that the reports fit one SR."""
    if not reports:
        raise ValueError("build_sr needs at least one report; got none")
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    models = {(r.model.name, r.model.version) for r in reports}
    if len(models) > 1:
        raise ValueError(f"one SR covers one model; reports come from {sorted(models)}")
    for report in reports:
        ref = report.source
        if ref.sop_instance_uid not in by_uid:
            raise ValueError(
                f"report for SOP Instance UID {ref.sop_instance_uid} has no source "
                "dataset; pass its header in sources"
            )
        if str(by_uid[ref.sop_instance_uid].StudyInstanceUID) != ref.study_instance_uid:
            raise ValueError(
                f"report for {ref.sop_instance_uid} names study {ref.study_instance_uid} "
                f"but its source is in {by_uid[ref.sop_instance_uid].StudyInstanceUID}"
            )
    studies = {str(ds.StudyInstanceUID) for ds in by_uid.values()}
    if len(studies) > 1:
        raise ValueError(f"one SR covers one study; sources come from {sorted(studies)}")
    return list(by_uid.values())


def _groups_of(report: AssessmentReport, uid_root: str) -> list[MeasurementGroup]:
    """The TID 1501 group of one assessed image, and its TID 1410 group when explained."""
    ref = report.source
    model = report.model
    frames = None if ref.frame_number is None else [ref.frame_number]
    frame = "" if ref.frame_number is None else str(ref.frame_number)
    where = f"{ref.sop_instance_uid} frame {ref.frame_number}" if frames else ref.sop_instance_uid
    finding = finding_code(report.defect_class)
    algorithm = hd.sr.AlgorithmIdentification(
        name=model.name,
        version=model.version,
        parameters=[f"saliency method: {report.saliency.method}"],
        manufacturer=IQGATE_MANUFACTURER,
    )

    def tracking(kind: str) -> hd.sr.TrackingIdentifier:
        return hd.sr.TrackingIdentifier(
            uid=derive_uid(
                ref.sop_instance_uid, frame, model.name, model.version, kind, root=uid_root
            ),
            identifier=f"iqgate {kind} {where}",
        )

    unit = codes.UCUM.NoUnits
    groups: list[MeasurementGroup] = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking("image assessment"),
            finding_type=finding,
            algorithm_id=algorithm,
            measurements=[
                hd.sr.Measurement(name=DEFECT_PROBABILITY, value=report.probability, unit=unit),
                hd.sr.Measurement(name=DECISION_THRESHOLD, value=report.threshold, unit=unit),
            ],
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(name=GATE_VERDICT, value=VERDICT_CODES[report.verdict])
            ],
            source_images=[
                hd.sr.SourceImageForMeasurementGroup(
                    ref.sop_class_uid, ref.sop_instance_uid, frames
                )
            ],
        )
    ]
    peak, box = report.saliency.peak_xy, report.saliency.hotspot_box
    if peak is None:
        return groups
    if box is None:
        graphic_type, points = hd.sr.GraphicTypeValues.POINT, np.array([peak])
    else:
        x1, y1, x2, y2 = box
        graphic_type = hd.sr.GraphicTypeValues.POLYLINE
        points = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]])
    region = hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=to_dicom_image_coordinates(points),
        source_image=hd.sr.SourceImageForRegion(ref.sop_class_uid, ref.sop_instance_uid, frames),
    )
    groups.append(
        hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking("saliency hot spot"),
            referenced_region=region,
            finding_type=finding,
            method=SALIENCY_LOCALIZATION,
            algorithm_id=algorithm,
        )
    )
    return groups
