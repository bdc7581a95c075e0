"""The IOD-specific modules of the phantom files (PS3.3 A.26 DX, A.2 CR, A.4 MR).

Each function adds to a dataset that already holds the common Patient, General
Study, General Series, General Equipment, General Image, Image Pixel and SOP Common
modules, and includes the Type 2 and 2C attributes ``dciodvfy`` checks for.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DigitalXRayImageStorageForPresentation

from iqgate.data.phantoms.dicom_encoding import Photometric, PixelEncoding, display_window
from iqgate.data.phantoms.sample import Sample

CHEST_REGION = ("51185008", "SCT", "Chest")
"""SNOMED CT code of the anatomic region of a chest radiograph (CID 4031)."""

PA_VIEW = ("399348003", "SCT", "postero-anterior")
"""SNOMED CT code of the PA projection (CID 4010, DX View)."""

PA_CHEST_PATIENT_ORIENTATION = ["L", "F"]
"""Rows run towards the patient's left, columns towards the feet (PA view, PS3.3 C.7.6.1.1.1)."""

CARDIAC_PLANE_ROW = (0.80044, 0.500275, -0.330182)
CARDIAC_PLANE_COLUMN = (0.172494, 0.335294, 0.926188)
"""Direction cosines of an oblique 4-chamber plane (orthonormal to 1e-6)."""


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _decimal(value: float) -> str:
    """A DS value of at most 16 characters."""
    return f"{value:.6g}"


def add_voi_lut_module(ds: Dataset, sample: Sample, encoding: PixelEncoding) -> None:
    """VOI LUT (C.11.2): a window over the image's 1st to 99.5th percentile."""
    centre, width = display_window(sample.image)
    ds.WindowCenter = _decimal(encoding.modality_value(centre))
    ds.WindowWidth = _decimal(width)
    ds.VOILUTFunction = "LINEAR"


def add_modality_lut_module(ds: Dataset, encoding: PixelEncoding) -> None:
    """Modality LUT (C.11.1) as rescale slope and intercept, unitless (``US``)."""
    ds.RescaleIntercept = _decimal(encoding.rescale_intercept)
    ds.RescaleSlope = _decimal(encoding.rescale_slope)
    ds.RescaleType = "US"


def add_dx_modules(ds: Dataset, sample: Sample, encoding: PixelEncoding) -> None:
    """DX Series, DX Anatomy Imaged, DX Image, DX Detector, DX Positioning (C.8.11),
    Acquisition Context (C.7.6.14) modules of a PA chest radiograph, and the VOI LUT
    module, which DX allows in images for presentation only."""
    for_presentation = encoding.sop_class == DigitalXRayImageStorageForPresentation
    ds.Modality = "DX"
    ds.PresentationIntentType = "FOR PRESENTATION" if for_presentation else "FOR PROCESSING"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ImageLaterality = "U"
    ds.BodyPartExamined = "CHEST"
    ds.AnatomicRegionSequence = Sequence([_code_item(*CHEST_REGION)])
    ds.PatientOrientation = PA_CHEST_PATIENT_ORIENTATION
    ds.ViewPosition = "PA"
    ds.ViewCodeSequence = Sequence([_code_item(*PA_VIEW)])
    ds.PositionerType = "COLUMN"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1 if encoding.photometric is Photometric.MONOCHROME1 else -1
    add_modality_lut_module(ds, encoding)
    ds.PresentationLUTShape = (
        "INVERSE" if encoding.photometric is Photometric.MONOCHROME1 else "IDENTITY"
    )
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.ImagerPixelSpacing = [_decimal(sample.pixel_spacing_mm)] * 2
    ds.AcquisitionContextSequence = Sequence()
    ds.KVP = "120"
    ds.DistanceSourceToDetector = "1800"
    if for_presentation:
        add_voi_lut_module(ds, sample, encoding)


def add_cr_modules(ds: Dataset, sample: Sample, encoding: PixelEncoding) -> None:
    """CR Series and CR Image (C.8.1), Modality LUT and VOI LUT modules of a PA chest."""
    ds.Modality = "CR"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = PA_CHEST_PATIENT_ORIENTATION
    ds.ImagerPixelSpacing = [_decimal(sample.pixel_spacing_mm)] * 2
    ds.KVP = "120"
    ds.PlateType = "PHANTOM"
    add_modality_lut_module(ds, encoding)
    add_voi_lut_module(ds, sample, encoding)


def add_mr_modules(
    ds: Dataset, sample: Sample, encoding: PixelEncoding, frame_of_reference_uid: str
) -> None:
    """Frame of Reference (C.7.4.1), Image Plane (C.7.6.2), MR Image (C.8.3.1) and VOI LUT
    modules of one frame of a cardiac-gated 2D balanced SSFP cine."""
    ds.Modality = "MR"
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "HEART"
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    rows, columns = sample.image.shape
    spacing = sample.pixel_spacing_mm
    row, column = np.array(CARDIAC_PLANE_ROW), np.array(CARDIAC_PLANE_COLUMN)
    top_left = -(columns / 2) * spacing * row - (rows / 2) * spacing * column
    ds.PixelSpacing = [_decimal(spacing)] * 2
    ds.ImageOrientationPatient = [_decimal(v) for v in (*row, *column)]
    ds.ImagePositionPatient = [_decimal(v) for v in top_left]
    ds.SliceThickness = "8"
    ds.SliceLocation = "0"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SS"
    ds.ScanOptions = "CG"
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "*tfi2d1"
    ds.AngioFlag = "N"
    ds.RepetitionTime = "3.1"
    ds.EchoTime = "1.3"
    ds.EchoTrainLength = 1
    ds.NumberOfAverages = "1"
    ds.FlipAngle = "55"
    ds.ImagingFrequency = "63.9"
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = "1.5"
    ds.TriggerTime = _decimal(40.0 * (sample.index % 25))
    ds.CardiacNumberOfImages = 25
    ds.HeartRate = 60
    add_voi_lut_module(ds, sample, encoding)
