"""The Secondary Capture overlay: the source image with its heat map, for people.

The overlay is an RGB 8-bit Secondary Capture Image (PS3.3 A.8.1) in the source's
study and in a series of its own. It shows the source frame as displayed (already
windowed and, for MONOCHROME1, inverted by the caller), the saliency map blended over
it with a jet-like colour map whose opacity grows with the saliency, a cross at the
saliency peak, and a banner of extra rows *above* the image (so no anatomy is hidden)
with the verdict, the probability and threshold, the model and "NOT FOR DIAGNOSIS".

The image is resampled (bilinear, antialiased) so that its long side lies between
:data:`OVERLAY_MIN_SIZE` and :data:`OVERLAY_MAX_SIZE` pixels: a large radiograph is
shrunk to keep the object small, a small MR frame is enlarged so that the banner is
legible. Pixel spacing is therefore not written; the overlay is for looking at, the SR
carries the coordinates.

Header: Burned In Annotation YES, Source Image Sequence (purpose DCM 121322 "Source
image for image processing operation"), Derivation Description, Contributing Equipment
(Manufacturer ``iqgate``, the model name and version, DCM 109102 "Processing
Equipment"), patient and study modules copied from the source with its Specific
Character Set, Patient Orientation copied or derived from Image Orientation (Patient)
(empty when unknown), Laterality copied (empty when unknown; Type 2C).
"""

from __future__ import annotations

from datetime import datetime

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom import Dataset
from pydicom.sr.codedict import codes

from iqgate import __version__
from iqgate.node.outputs.equipment import iqgate_equipment
from iqgate.node.outputs.report import AssessmentReport, Verdict
from iqgate.node.outputs.uids import IQGATE_MANUFACTURER, OutputUids

OVERLAY_MAX_SIZE = 1024
"""Longest side of the overlay image in pixels (larger sources are shrunk)."""
OVERLAY_MIN_SIZE = 512
"""Shortest long side of the overlay image in pixels (smaller sources are enlarged)."""
HEAT_ALPHA = 0.6
"""Opacity of the heat map where the saliency is 1; it falls linearly to 0."""
SC_SERIES_NUMBER = 9901
"""Series Number of the overlay series (high, so viewers list it after acquired ones)."""

_JET_STOPS = np.array([0.0, 0.125, 0.375, 0.625, 0.875, 1.0])
_JET_RGB = np.array(
    [
        [0.0, 0.0, 0.5],
        [0.0, 0.0, 1.0],
        [0.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.5, 0.0, 0.0],
    ]
)
_VERDICT_COLOURS = {Verdict.FLAGGED: (255, 64, 64), Verdict.PASS: (96, 220, 96)}


JET_LEVELS = 1024
"""Saliency levels of the colour tables (within a 1/255 step of the exact map)."""
GREY_LEVELS = 256
"""Grey levels of the blend table: those of the 8-bit overlay."""
_JET_TABLE = np.stack(
    [np.interp(np.linspace(0.0, 1.0, JET_LEVELS), _JET_STOPS, _JET_RGB[:, c]) for c in range(3)],
    axis=-1,
).astype(np.float32)


def _blend_table() -> np.ndarray:
    """Every blend of grey level ``g`` and saliency level ``s``, packed RGB.

    Entry ``g * JET_LEVELS + s``.
    """
    grey = np.linspace(0.0, 1.0, GREY_LEVELS, dtype=np.float32)[:, None, None]
    alpha = (HEAT_ALPHA * np.linspace(0.0, 1.0, JET_LEVELS, dtype=np.float32))[None, :, None]
    rgb = np.rint(255.0 * (grey + alpha * (_JET_TABLE[None] - grey))).astype(np.uint32)
    packed = rgb[..., 0] | rgb[..., 1] << 8 | rgb[..., 2] << 16
    return packed.ravel().astype("<u4")  # little-endian: its bytes are R, G, B, 0


_BLEND_TABLE = _blend_table()


def _levels(values: np.ndarray, levels: int) -> np.ndarray:
    """``values`` clipped to [0, 1] and rounded to the nearest of ``levels`` steps."""
    scaled = np.clip(values, 0.0, 1.0, dtype=np.float32) * np.float32(levels - 1)
    return np.rint(scaled, out=scaled).astype(np.intp)


def blend_heatmap(grey: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """Blend the jet-like colour of ``saliency`` over ``grey`` (both ``[H, W]`` in [0, 1]).

    Returns uint8 RGB ``[H, W, 3]``. The opacity is :data:`HEAT_ALPHA` times the
    saliency. Both inputs are rounded to the levels of one table of every blend (within
    one grey level of the exact blend; a pixel without saliency keeps its grey exactly),
    so a pixel costs one look-up.
    """
    index = _levels(grey, GREY_LEVELS) * JET_LEVELS + _levels(saliency, JET_LEVELS)
    packed = _BLEND_TABLE[index]
    return np.ascontiguousarray(packed.view(np.uint8).reshape(*packed.shape, 4)[..., :3])


def build_overlay(
    source: Dataset,
    frame: np.ndarray,
    saliency: np.ndarray | None,
    report: AssessmentReport,
    uids: OutputUids,
    *,
    series_number: int = SC_SERIES_NUMBER,
) -> hd.sc.SCImage:
    """Build the Secondary Capture overlay of one assessed image (frame).

    Parameters
    ----------
    source
        The source dataset (its header is copied; its pixel data is not read).
    frame
        Presentation values ``[H, W]`` in [0, 1] of the assessed frame: windowed, and
        inverted for MONOCHROME1, so that 1 is white.
    saliency
        Map ``[h, w]`` in [0, 1] over the whole frame at any resolution (the model's
        map, usually: it is resized straight to the overlay), or ``None`` when the image
        was not explained (the overlay then shows the image and banner only).
    report
        The image's report: verdict, probability, threshold, model, peak.
    uids
        Output UIDs; ``sc_series`` and ``sc_instance`` are used.
    series_number
        Series Number of the overlay.
    """
    if frame.ndim != 2:
        raise ValueError(f"frame must be a 2-D [rows, columns] array; got shape {frame.shape}")
    if saliency is not None and (saliency.ndim != 2 or saliency.size == 0):
        raise ValueError(f"saliency must be a non-empty 2-D map; got shape {saliency.shape}")
    rows, cols = frame.shape
    scale = min(OVERLAY_MAX_SIZE, max(OVERLAY_MIN_SIZE, rows, cols)) / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    grey = _resized(frame, size)
    heat = np.zeros_like(grey) if saliency is None else _resized(saliency, size)
    picture = Image.fromarray(blend_heatmap(grey, heat), mode="RGB")
    if report.saliency.peak_xy is not None:
        x, y = report.saliency.peak_xy
        _draw_cross(picture, ((x + 0.5) * size[0] / cols - 0.5, (y + 0.5) * size[1] / rows - 0.5))
    pixels = np.asarray(_with_banner(picture, _banner_lines(report), report.verdict))
    return _sc_image(source, pixels, report, uids, series_number, scale)


def _resized(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(np.asarray(values, dtype=np.float32), mode="F")
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _draw_cross(picture: Image.Image, centre: tuple[float, float]) -> None:
    """A white cross with a black outline, visible on grey and on every heat colour."""
    arm = max(6.0, 0.04 * min(picture.size))
    width = max(1, round(min(picture.size) / 256))
    x, y = centre
    draw = ImageDraw.Draw(picture)
    for colour, stroke in (((0, 0, 0), width + 2), ((255, 255, 255), width)):
        draw.line([(x - arm, y), (x + arm, y)], fill=colour, width=stroke)
        draw.line([(x, y - arm), (x, y + arm)], fill=colour, width=stroke)


def _banner_lines(report: AssessmentReport) -> list[str]:
    model = report.model
    verdict = (
        f"{report.verdict.value.upper()}: {report.defect_class} "
        f"p={report.probability:.3f} (threshold {report.threshold:.3f})"
    )
    explained = "" if report.explained else " - not explained"
    return [verdict, f"iqgate model {model.name} {model.version}{explained}", "NOT FOR DIAGNOSIS"]


def _with_banner(picture: Image.Image, lines: list[str], verdict: Verdict) -> Image.Image:
    """``picture`` below a black banner holding ``lines`` in the default font."""
    width = picture.size[0]
    margin = max(2, width // 100)
    probe = ImageDraw.Draw(picture)
    font_size = max(8, min(32, width // 30))
    font = ImageFont.load_default(size=font_size)
    while (
        font_size > 8
        and max(probe.textlength(line, font=font) for line in lines) > width - 2 * margin
    ):
        font_size -= 1
        font = ImageFont.load_default(size=font_size)
    line_height = round(font_size * 1.3)
    banner_height = len(lines) * line_height + 2 * margin
    canvas = Image.new("RGB", (width, banner_height + picture.size[1]), (0, 0, 0))
    canvas.paste(picture, (0, banner_height))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        colour = _VERDICT_COLOURS[verdict] if index == 0 else (255, 255, 255)
        draw.text((margin, margin + index * line_height), line, fill=colour, font=font)
    return canvas


def _sc_image(
    source: Dataset,
    pixels: np.ndarray,
    report: AssessmentReport,
    uids: OutputUids,
    series_number: int,
    scale: float,
) -> hd.sc.SCImage:
    model = report.model
    ref = report.source
    created = datetime.fromisoformat(report.created_at)
    orientation = _patient_orientation(source)
    sc = hd.sc.SCImage(
        pixel_array=pixels,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        study_instance_uid=source.StudyInstanceUID,
        series_instance_uid=uids.sc_series,
        series_number=series_number,
        sop_instance_uid=uids.sc_instance,
        instance_number=ref.frame_number or int(source.get("InstanceNumber") or 1),
        manufacturer=IQGATE_MANUFACTURER,
        # highdicom insists on an orientation here; the real (possibly empty or
        # multi-letter) value replaces this placeholder right below.
        patient_orientation=("L", "F"),
        specific_character_set=source.get("SpecificCharacterSet"),
        series_description=f"iqgate {model.name} overlay (not for diagnosis)"[:64],
        manufacturer_model_name=IQGATE_MANUFACTURER,
        software_versions=__version__,
        content_date=created.date(),
        content_time=created.time().replace(tzinfo=None),
        contributing_equipment=[iqgate_equipment(model, "saliency heat map overlay")],
    )
    sc.PatientOrientation = orientation
    sc.copy_patient_and_study_information(source)
    sc.Laterality = _laterality(source)
    sc.ConversionType = "WSD"
    sc.DateOfSecondaryCapture = sc.ContentDate
    sc.TimeOfSecondaryCapture = sc.ContentTime
    sc.BurnedInAnnotation = "YES"
    sc.DerivationDescription = (
        f"iqgate {model.name} {model.version}: {report.saliency.method} saliency of class "
        f"{report.defect_class!r} blended over the windowed source image, resampled by "
        f"{scale:.3f}, banner with verdict and probability burned in above it"
    )
    reference = Dataset()
    reference.ReferencedSOPClassUID = ref.sop_class_uid
    reference.ReferencedSOPInstanceUID = ref.sop_instance_uid
    if ref.frame_number is not None:
        reference.ReferencedFrameNumber = ref.frame_number
    reference.PurposeOfReferenceCodeSequence = [
        hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    ]
    sc.SourceImageSequence = [reference]
    if source.get("LossyImageCompression") == "01":
        for keyword in (
            "LossyImageCompression",
            "LossyImageCompressionRatio",
            "LossyImageCompressionMethod",
        ):
            if keyword in source:
                sc[keyword] = source[keyword]
    return sc


def _laterality(source: Dataset) -> str:
    """The source's (image) laterality when it is R or L, else empty (Type 2C)."""
    for keyword in ("Laterality", "ImageLaterality"):
        value = str(source.get(keyword) or "")
        if value in ("R", "L"):
            return value
    return ""


def _patient_orientation(source: Dataset) -> list[str] | None:
    """Patient Orientation of the source, or derived from its Image Orientation (Patient).

    Each direction cosine gives up to three letters, the dominant axis first (PS3.3
    C.7.6.1.1.1); ``None`` (written empty) when the source has neither attribute.
    """
    given = source.get("PatientOrientation")
    if given and len(given) == 2:
        return [str(value) for value in given]
    cosines = source.get("ImageOrientationPatient")
    if not cosines or len(cosines) != 6:
        return None
    letters = (("R", "L"), ("A", "P"), ("F", "H"))
    result = []
    for vector in (np.asarray(cosines[:3], dtype=float), np.asarray(cosines[3:], dtype=float)):
        order = np.argsort(-np.abs(vector), kind="stable")
        result.append(
            "".join(
                letters[axis][int(vector[axis] > 0)] for axis in order if abs(vector[axis]) > 1e-4
            )
        )
    return result
