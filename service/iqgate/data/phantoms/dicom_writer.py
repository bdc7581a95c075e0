"""``write_dicom``: phantom samples as DICOM files (DX, CR, MR) with a box manifest.

Everything in a file follows from the sample's task, seed and index: UIDs come from
:func:`pydicom.uid.generate_uid` with those as entropy, dates are fixed, and the pixel
encoders are pinned, so the same samples always give the same bytes. Labels and boxes
are never written into the DICOM files; ``manifest.csv`` beside them carries them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

import iqgate
from iqgate.data.phantoms.dicom_encoding import (
    CMR_ENCODINGS,
    CXR_ENCODINGS,
    ENCODING_PLUGINS,
    PixelEncoding,
    coerce_transfer_syntaxes,
)
from iqgate.data.phantoms.dicom_modules import add_cr_modules, add_dx_modules, add_mr_modules
from iqgate.data.phantoms.off_target import OffTarget, retarget
from iqgate.data.phantoms.sample import Sample, Task

MANIFEST_NAME = "manifest.csv"
MANIFEST_HEADER = ("path", "label", "boxes")

FIXED_DATE = "20240102"
FIXED_TIME = "093000"
"""Study, series and content date and time of every phantom (never the wall clock)."""

NON_ASCII_EVERY = 7
"""Every 7th sample (index 6, 13, ...) has a non-ASCII patient name."""

NON_ASCII_PATIENTS = (("Müller^Jürgen", "ISO_IR 100"), ("Dvořák^Zdeněk", "ISO_IR 192"))
"""Names and Specific Character Sets used in turn for the non-ASCII samples."""

SITE_NAMING: dict[Task, tuple[tuple[str, str, str], ...]] = {
    Task.CXR: (
        ("XR CHEST 1 VIEW", "Chest PA", "Chest PA"),
        ("THORAX", "THORAX PA", "Thorax p.a."),
        ("CXR", "PA", "CHEST PA ERECT"),
    ),
    Task.CMR: (
        ("MR HEART FUNCTION", "cine_trufi_4CH", "4CH cine retro"),
        ("CARDIAC MRI", "CINE 4 CH", "SSFP cine 4 ch"),
        ("Cardiac", "4-chamber cine SSFP", "4-chamber"),
        ("MRI HEART", "SSFP HLA cine", "HLA"),
    ),
}
"""Study Description, Series Description and Protocol Name as sites write them,
used in turn by sample index (names differ between hospitals and vendors)."""


def write_dicom(
    samples: Iterable[Sample],
    out_dir: str | Path,
    *,
    transfer_syntaxes: Sequence[str] | None = None,
    off_target: OffTarget | None = None,
) -> list[Path]:
    """Write one DICOM file per sample and a ``manifest.csv`` of labels and boxes.

    Radiographs are written as DX (for presentation or for processing) or CR, and
    cardiac frames as MR, cycling by sample index through the pixel encodings of
    :mod:`iqgate.data.phantoms.dicom_encoding` and through ``transfer_syntaxes``.

    Parameters
    ----------
    samples : iterable of Sample
        From :func:`iqgate.data.phantoms.generate`.
    out_dir : str or Path
        Created if missing; files are named ``<sample.name>.dcm``.
    transfer_syntaxes : sequence of str, optional
        UIDs to cycle through by sample index; default: explicit VR little endian,
        RLE lossless, JPEG 2000 lossless, JPEG-LS lossless.
    off_target : OffTarget, optional
        Write every header as this variant (a knee radiograph, a brain MR, a derived
        image; :mod:`iqgate.data.phantoms.off_target`) instead of as acquired.

    Returns
    -------
    list of Path
        The files written, in the order of ``samples``.

    Notes
    -----
    ``manifest.csv`` has the header ``path,label,boxes``: the path relative to
    ``out_dir``, the label, and boxes as ``x1 y1 x2 y2`` joined by ``;`` (empty for
    none), sorted by path. Rows of files written by earlier calls into the same folder
    are kept; a file written again gets its row replaced.
    """
    syntaxes = coerce_transfer_syntaxes(transfer_syntaxes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    rows: list[tuple[str, str, str]] = []
    for sample in samples:
        dataset = phantom_dataset(sample, syntaxes[sample.index % len(syntaxes)])
        if off_target is not None:
            retarget(dataset, off_target)
        path = out / f"{sample.name}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
        boxes = ";".join(" ".join(str(c) for c in box) for box in sample.boxes)
        rows.append((path.relative_to(out).as_posix(), str(sample.label), boxes))
    _update_manifest(out / MANIFEST_NAME, rows)
    return paths


def _update_manifest(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Add or replace ``rows`` in the manifest at ``path``, keeping it sorted by path."""
    entries: dict[str, tuple[str, ...]] = {}
    if path.exists():
        with open(path, newline="", encoding="utf-8") as manifest:
            reader = csv.reader(manifest)
            header = tuple(next(reader, ()))
            if header != MANIFEST_HEADER:
                raise ValueError(
                    f"{path} is not a phantom manifest: its header is {header!r}, expected "
                    f"{MANIFEST_HEADER!r}; remove it or choose another out_dir"
                )
            entries.update((row[0], tuple(row)) for row in reader if row)
    entries.update((row[0], row) for row in rows)
    with open(path, "w", newline="", encoding="utf-8") as manifest:
        writer = csv.writer(manifest, lineterminator="\n")
        writer.writerow(MANIFEST_HEADER)
        writer.writerows(entries[key] for key in sorted(entries))


def pixel_encoding(sample: Sample) -> PixelEncoding:
    """The SOP class and pixel representation sample ``index`` is written with."""
    encodings = CXR_ENCODINGS if sample.task is Task.CXR else CMR_ENCODINGS
    return encodings[sample.index % len(encodings)]


def phantom_dataset(sample: Sample, transfer_syntax: UID) -> Dataset:
    """The complete dataset of one sample, pixel data encoded in ``transfer_syntax``."""
    encoding = pixel_encoding(sample)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = encoding.sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = _phantom_uid(sample, "instance")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    _add_common_modules(ds, sample, encoding)
    if encoding.sop_class == MRImageStorage:
        add_mr_modules(ds, sample, encoding, _phantom_uid(sample, "frame-of-reference"))
    elif encoding.sop_class == ComputedRadiographyImageStorage:
        add_cr_modules(ds, sample, encoding)
    else:
        add_dx_modules(ds, sample, encoding)
    ds.PixelData = encoding.stored_values(sample.image).tobytes()
    ds["PixelData"].VR = "OW"
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(
            transfer_syntax,
            encoding_plugin=ENCODING_PLUGINS[transfer_syntax],
            generate_instance_uid=False,
        )
    return ds


def _phantom_uid(sample: Sample, what: str) -> UID:
    """A UID that depends only on the sample's task, seed, index and ``what`` it names."""
    entropy = ["iqgate-phantom", sample.task.value, str(sample.seed), str(sample.index), what]
    return generate_uid(entropy_srcs=entropy)


def _add_common_modules(ds: Dataset, sample: Sample, encoding: PixelEncoding) -> None:
    """Patient, General Study, General Series, General Equipment, General Image,
    Image Pixel and SOP Common modules (PS3.3 C.7, C.12.1)."""
    task = sample.task.value.upper()
    if sample.index % NON_ASCII_EVERY == NON_ASCII_EVERY - 1:
        name, character_set = NON_ASCII_PATIENTS[
            (sample.index // NON_ASCII_EVERY) % len(NON_ASCII_PATIENTS)
        ]
        ds.SpecificCharacterSet = character_set
        ds.PatientName = name
    else:
        ds.PatientName = f"PHANTOM^{task}^{sample.index:05d}"
    ds.SOPClassUID = encoding.sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID = f"PHANTOM-{task}-S{sample.seed}-{sample.index:05d}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _phantom_uid(sample, "study")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = FIXED_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = FIXED_TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = f"{sample.index:05d}"
    ds.AccessionNumber = ""
    naming = SITE_NAMING[sample.task][sample.index % len(SITE_NAMING[sample.task])]
    ds.StudyDescription, ds.SeriesDescription, ds.ProtocolName = naming
    ds.SeriesInstanceUID = _phantom_uid(sample, "series")
    ds.SeriesNumber = 1
    ds.Manufacturer = "iqgate"
    ds.ManufacturerModelName = "synthetic phantom"
    ds.SoftwareVersions = iqgate.__version__
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    rows, columns = sample.image.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = encoding.photometric.value
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = encoding.bits_stored
    ds.HighBit = encoding.bits_stored - 1
    ds.PixelRepresentation = 0
