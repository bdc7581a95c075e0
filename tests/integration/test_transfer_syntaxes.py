"""Every transfer syntax the node accepts decodes, 12-bit JPEG Extended included."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread, uid
from pydicom.dataset import Dataset
from pydicom.uid import UID

from iqgate.imaging import frames_from_dataset
from iqgate.node.ingest.dimse import ACCEPTED_TRANSFER_SYNTAXES
from iqgate_testkit.dicom_factory import make_image
from iqgate_testkit.peers import require


def _smooth_image(bits: int) -> Dataset:
    """A grey ramp with a bright square: lossy codecs keep it close, unlike noise."""
    ds = make_image(rows=64, columns=72, seed=5)
    ramp = np.add.outer(np.arange(64) * 20, np.arange(72) * 25) + 100
    ramp[20:34, 30:44] = 3900
    if bits == 8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = (ramp // 16).astype(np.uint8).tobytes()
    else:
        ds.PixelData = ramp.astype(np.uint16).tobytes()
    return ds


def _dcmtk(tool: str, *options: str) -> Callable[[Path, Path], None]:
    def convert(source: Path, target: Path) -> None:
        require(tool)
        subprocess.run([tool, *options, str(source), str(target)], check=True)

    return convert


def _pydicom(syntax: UID, **options: object) -> Callable[[Path, Path], None]:
    def convert(source: Path, target: Path) -> None:
        ds = dcmread(source)
        ds.compress(syntax, **options)
        ds.save_as(target, enforce_file_format=True)

    return convert


# syntax -> (bits of the source image, how to make the file, mean error / full scale allowed)
MAKERS: dict[UID, tuple[int, Callable[[Path, Path], None], float]] = {
    uid.ExplicitVRLittleEndian: (12, _dcmtk("dcmconv", "+te"), 0.0),
    uid.ImplicitVRLittleEndian: (12, _dcmtk("dcmconv", "+ti"), 0.0),
    uid.DeflatedExplicitVRLittleEndian: (12, _dcmtk("dcmconv", "+td"), 0.0),
    uid.ExplicitVRBigEndian: (12, _dcmtk("dcmconv", "+tb"), 0.0),
    uid.JPEGBaseline8Bit: (8, _dcmtk("dcmcjpeg", "+eb"), 0.01),
    uid.JPEGExtended12Bit: (12, _dcmtk("dcmcjpeg", "+ee"), 0.01),
    uid.JPEGLossless: (12, _dcmtk("dcmcjpeg", "+el"), 0.0),
    uid.JPEGLosslessSV1: (12, _dcmtk("dcmcjpeg", "+e1"), 0.0),
    uid.JPEGLSLossless: (12, _dcmtk("dcmcjpls", "+el"), 0.0),
    uid.JPEGLSNearLossless: (12, _dcmtk("dcmcjpls", "+en"), 0.01),
    uid.JPEG2000Lossless: (12, _pydicom(uid.JPEG2000Lossless), 0.0),
    uid.JPEG2000: (12, _pydicom(uid.JPEG2000, j2k_cr=[20]), 0.01),
    uid.RLELossless: (12, _dcmtk("dcmcrle"), 0.0),
}


def test_every_accepted_syntax_has_a_decoding_check():
    assert set(MAKERS) == set(ACCEPTED_TRANSFER_SYNTAXES)


@pytest.mark.parametrize("syntax", list(MAKERS), ids=lambda s: UID(s).name)
def test_an_accepted_syntax_decodes_to_the_source_image(tmp_path, syntax):
    bits, convert, mean_error = MAKERS[syntax]
    source = tmp_path / "source.dcm"
    _smooth_image(bits).save_as(source, enforce_file_format=True)
    target = tmp_path / "encoded.dcm"
    convert(source, target)
    encoded = dcmread(target)
    assert encoded.file_meta.TransferSyntaxUID == syntax
    assert frames_from_dataset(encoded).shape == (1, 64, 72)  # the node's decode path
    difference = encoded.pixel_array.astype(np.float64) - dcmread(source).pixel_array
    # Lossy DCMTK shifts the stored values to start at 0 (the window moves with them).
    error = np.abs(difference - np.median(difference)) / (2**bits - 1)
    assert float(error.mean()) <= mean_error
