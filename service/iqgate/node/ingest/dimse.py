"""DIMSE status codes and the presentation contexts the node accepts (PS3.4, PS3.7)."""

from __future__ import annotations

from enum import IntEnum

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.presentation import AllStoragePresentationContexts


class DimseStatus(IntEnum):
    """C-STORE and C-ECHO statuses the node answers (PS3.4 B.2.3, PS3.7 C)."""

    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000


class AssociationRejectReason(IntEnum):
    """A-ASSOCIATE-RJ diagnostics of the service user (PS3.8 9.3.4)."""

    CALLING_AE_NOT_RECOGNISED = 0x03
    CALLED_AE_NOT_RECOGNISED = 0x07


ACCEPTED_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
"""Every transfer syntax a permissively licensed decoder of ours can read."""

STORAGE_CLASSES: tuple[UID, ...] = tuple(
    UID(cx.abstract_syntax) for cx in AllStoragePresentationContexts
)
"""Every storage SOP class the SCP accepts: images, SR, presentation states, key object
selections, encapsulated documents, waveforms, RT, segmentations..."""

IMAGE_STORAGE_CLASSES: tuple[UID, ...] = tuple(c for c in STORAGE_CLASSES if "Image" in c.name)
"""The image storage SOP classes (CR, DX, MR, Enhanced MR, Secondary Capture...): the
ones whose pixel data the SCP checks and the pipeline can assess."""
