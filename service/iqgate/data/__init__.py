"""Data sets: Object-CXR, DICOM folders with box manifests, synthetic phantoms."""
