"""The cached highdicom IOD lookup gives highdicom's own answers, and applies only to the
highdicom versions it was written for."""

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

from iqgate.node.outputs import compat

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
    walked = compat._table_walk()(attribute, sop_class, exclude)
    assert compat.is_attribute_in_iod(attribute, sop_class, exclude) == walked
    assert compat.is_attribute_in_iod(attribute, sop_class, exclude) == walked  # cached


def test_install_reaches_every_module_that_asks():
    assert compat.apply_speedups()
    for module in (standard_utils, highdicom.base, highdicom.sr.content):
        assert module.is_attribute_in_iod is compat.is_attribute_in_iod


def test_unknown_sop_classes_still_raise():
    with pytest.raises(KeyError):
        compat.is_attribute_in_iod("ContentDate", "1.2.3.4.5")


def test_other_highdicom_versions_keep_their_own_lookup(monkeypatch):
    monkeypatch.setattr(compat.highdicom, "__version__", "0.99.0")
    before = [m.is_attribute_in_iod for m in compat._asking_modules()]
    assert not compat.apply_speedups()
    assert [m.is_attribute_in_iod for m in compat._asking_modules()] == before
