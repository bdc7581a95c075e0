"""Synthetic phantoms standing in for Object-CXR radiographs and LVOT cardiac MR.

>>> from iqgate.data.phantoms import generate, write_object_cxr, write_dicom
>>> samples = generate("cxr", 4, seed=0)      # lazy; sample i depends on (seed, i)
>>> write_object_cxr(samples, "out", "train")  # doctest: +SKIP
>>> write_dicom(samples, "out/dicom")          # doctest: +SKIP
"""

from iqgate.data.phantoms.dicom_writer import write_dicom
from iqgate.data.phantoms.object_cxr_writer import write_object_cxr
from iqgate.data.phantoms.phantom_set import PhantomSet, generate
from iqgate.data.phantoms.sample import MAX_INTENSITY, Sample, Task

__all__ = [
    "MAX_INTENSITY",
    "PhantomSet",
    "Sample",
    "Task",
    "generate",
    "write_dicom",
    "write_object_cxr",
]
