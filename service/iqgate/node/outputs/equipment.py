"""The Contributing Equipment item (PS3.3 C.12.1) every object iqgate writes carries."""

from __future__ import annotations

import highdicom as hd
from pydicom.sr.codedict import codes

from iqgate.node.outputs.report import ModelRef
from iqgate.node.outputs.uids import IQGATE_MANUFACTURER


def iqgate_equipment(model: ModelRef, contribution: str) -> hd.ContributingEquipment:
    """iqgate as processing equipment, naming the model and what it contributed."""
    return hd.ContributingEquipment(
        manufacturer=IQGATE_MANUFACTURER,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        contribution_description=contribution[:64],
    )
