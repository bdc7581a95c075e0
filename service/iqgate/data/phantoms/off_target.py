"""Phantom headers rewritten as images no shipped model was made for.

Routing must tell a chest radiograph from a knee radiograph and a 4-chamber cardiac MR
from a brain MR by their headers alone, and leave derived images alone. These variants
keep the phantom's pixels and change only what a modality would write differently.
"""

from __future__ import annotations

from enum import Enum

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid


class OffTarget(str, Enum):
    """Header variants that the shipped routing rules must refuse."""

    KNEE_RADIOGRAPH = "knee-radiograph"
    BRAIN_MR = "brain-mr"
    DERIVED = "derived"


KNEE_REGION = ("72696002", "SCT", "Knee")
AP_VIEW = ("399067008", "SCT", "antero-posterior")


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def retarget(ds: Dataset, kind: OffTarget) -> None:
    """Rewrite the header of phantom ``ds`` in place as ``kind``, in a study, series and
    instance of its own (UIDs derived from the phantom's and ``kind``).

    Raises ``ValueError`` for a variant that does not fit the modality (a knee needs a
    radiograph, a brain an MR).
    """
    modality = str(ds.get("Modality", ""))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(ds, keyword, generate_uid(entropy_srcs=[str(ds.get(keyword)), kind.value]))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if kind is OffTarget.KNEE_RADIOGRAPH:
        if modality not in ("DX", "CR"):
            raise ValueError(f"a knee radiograph needs a DX or CR phantom, not {modality}")
        ds.BodyPartExamined = "KNEE"
        ds.ViewPosition = "AP"
        ds.StudyDescription, ds.SeriesDescription, ds.ProtocolName = (
            "XR KNEE 2 VIEWS",
            "Knee AP",
            "Knee AP standing",
        )
        if "AnatomicRegionSequence" in ds:
            ds.AnatomicRegionSequence = Sequence([_code_item(*KNEE_REGION)])
        if "ViewCodeSequence" in ds:
            ds.ViewCodeSequence = Sequence([_code_item(*AP_VIEW)])
    elif kind is OffTarget.BRAIN_MR:
        if modality != "MR":
            raise ValueError(f"a brain MR needs an MR phantom, not {modality}")
        ds.BodyPartExamined = "HEAD"
        ds.StudyDescription, ds.SeriesDescription, ds.ProtocolName = (
            "MR BRAIN WO CONTRAST",
            "t2_tse_tra",
            "t2_tse_tra_p2",
        )
    else:
        ds.ImageType = ["DERIVED", "SECONDARY", *list(ds.ImageType)[2:]]
        ds.DerivationDescription = "Rescaled copy of the acquired image"
