"""The cached highdicom IOD lookup gives highdicom's own answers."""

from __future__ import annotations

import highdicom._standard_utils as standard_utils
import highdicom.base
import highdicom.sr.content
import pytest
from pydicom.uid import (
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

from iqgate.node import iod_lookup

QUESTIONS = [
    (attribute, sop_class, exclude)
    for attribute in ("ContentDate", "ContentTime", "NumberOfFrames", "PixelSpacing")
    for sop_class in (
        SecondaryCaptureImageStorage,
        Comprehensive3DSRStorage,
        ComprehensiveSRStorage,
        DigitalXRayImageStorageForPresentation,
        MRImageStorage,
    )
    for exclude in (None, ["SharedFunctionalGroupsSequence"])
]


@pytest.mark.parametrize(("attribute", "sop_class", "exclude"), QUESTIONS)
def test_cached_answers_equal_the_table_walk(attribute, sop_class, exclude):
    walked = iod_lookup._walk_tables(attribute, sop_class, exclude)
    assert iod_lookup.is_attribute_in_iod(attribute, sop_class, exclude) == walked
    assert iod_lookup.is_attribute_in_iod(attribute, sop_class, exclude) == walked  # cached


def test_install_reaches_every_module_that_asks():
    iod_lookup.install()
    for module in (standard_utils, highdicom.base, highdicom.sr.content):
        assert module.is_attribute_in_iod is iod_lookup.is_attribute_in_iod


def test_unknown_sop_classes_still_raise():
    with pytest.raises(KeyError):
        iod_lookup.is_attribute_in_iod("ContentDate", "1.2.3.4.5")
