"""Code the tests and tools share: DICOM peers, test images and packages, the campaigns."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The source tree the testkit is installed from (an editable install, ``make install``)."""
