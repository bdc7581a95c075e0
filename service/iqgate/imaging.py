"""DICOM pixel data and grey images -> model input: the one preprocessing path.

Training, the benchmark and the DICOM node all go through this module, so a model
sees the same numbers wherever it runs:

1. :func:`frames_from_dataset` decodes every frame of a DICOM image and applies the
   grey-scale pipeline of PS3.3 C.11 (Modality LUT, VOI LUT, MONOCHROME1 inversion)
   to give presentation values in [0, 1] with high = bright. Grey JPEG or PNG data
   sets use :func:`grey_to_unit` instead.
2. :func:`to_model_input` resizes to the square input (aspect not kept, as in the
   authors' code; PAPER.md, training table), repeats the grey channel three times and
   applies the ImageNet mean and standard deviation. It is two steps,
   :func:`resize_square` then :func:`normalise_imagenet`, so that training
   augmentation can act on the resized [0, 1] image in between.
3. :func:`scale_boxes` maps inclusive pixel boxes from the native frame to the square
   input, where the pointing game is scored (PAPER.md, Evaluation).

The node batches step 2 with :func:`batch_to_model_input` (one resize per group of
same-sized frames, host frames through pinned memory on CUDA), and a GPU decoder maps
stored values with :func:`presentation_values`, the per-frame core of step 1.

This module imports only numpy, torch and pydicom (with the JPEG Extended plugin of
:mod:`iqgate.jpeg_extended`, registered on import so 12-bit JPEG decodes wherever
pixel data is read); the data package and the node both build on it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pydicom
import torch
import torch.nn.functional as F
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

from iqgate import jpeg_extended
from iqgate.errors import ImagingError

jpeg_extended.register()

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean (R, G, B) of ImageNet, subtracted from images in [0, 1]."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation (R, G, B) of ImageNet, dividing images in [0, 1]."""

SUPPORTED_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2")
"""Photometric Interpretations (0028,0004) that :func:`frames_from_dataset` accepts."""

_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# What pydicom and its decoding plugins raise for data they cannot decode: missing or
# inconsistent group 0028 attributes, a transfer syntax without a decoder, truncated
# or corrupt (encapsulated) pixel data.
_DECODE_ERRORS = (
    AttributeError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)

# Attributes of the Modality LUT and VOI LUT modules (PS3.3 C.11.1, C.11.2); in
# enhanced multi-frame images they sit in these functional group macros instead.
_LUT_KEYWORDS = (
    "RescaleSlope",
    "RescaleIntercept",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
)
_LUT_FUNCTIONAL_GROUPS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


def frames_from_dataset(ds: pydicom.Dataset) -> npt.NDArray[np.float32]:
    """Decode all frames of a grey DICOM image into presentation values in [0, 1].

    For each frame, in the order of the grey-scale pipeline (PS3.3 C.11, PS3.4 N.2.1.1):

    - Modality LUT: the Modality LUT Sequence or Rescale Slope / Intercept.
    - VOI LUT: the first item of the VOI LUT Sequence, scaled by the range of that
      LUT's entries; otherwise the first Window Center / Width with its VOI LUT
      Function (LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 C.11.2.1.2); otherwise the
      min-max of the frame (a constant frame gives zeros).
    - MONOCHROME1 is inverted (``1 - v``) so that high is bright. Presentation LUT
      Shape is not read: the standard requires INVERSE exactly where the
      interpretation is MONOCHROME1, which describes this same inversion.

    In enhanced multi-frame images the Pixel Value Transformation and Frame VOI LUT
    macros of the Shared and Per-Frame Functional Groups override the top-level
    attributes, frame by frame.

    Parameters
    ----------
    ds : pydicom.Dataset
        A dataset with pixel data, one sample per pixel and a Photometric
        Interpretation of MONOCHROME1 or MONOCHROME2. Compressed transfer syntaxes
        are decoded by the installed pydicom plugins (pylibjpeg, pyjpegls).

    Returns
    -------
    numpy.ndarray
        float32 array [F, H, W] in [0, 1]; F is 1 for a single-frame image.

    Raises
    ------
    ImagingError
        If the dataset has no pixel data, is not grey (RGB, PALETTE COLOR, YBR_*),
        or its pixel data cannot be decoded.
    """
    _check_grey_image(ds)
    pixels = _decode(ds)
    frames = pixels.reshape((-1, *pixels.shape[-2:]))
    out = np.empty(frames.shape, dtype=np.float32)
    for index, frame in enumerate(frames):
        out[index] = presentation_values(ds, index, frame)
    return out


def presentation_values(
    ds: pydicom.Dataset, index: int, stored: np.ndarray
) -> npt.NDArray[np.float32]:
    """Stored pixel values of frame ``index`` -> presentation values in [0, 1], float32.

    The grey-scale pipeline of :func:`frames_from_dataset` for one frame. Every step is
    a function of the stored value alone, except the min-max fallback, which scales by
    the smallest and largest modality value in ``stored``. So the distinct values of a
    frame (any shape, any order) map exactly as they do inside the whole frame: a
    decoder that keeps pixels elsewhere (on a GPU) can build a lookup table from them.
    """
    attributes = _frame_lut_attributes(ds, index)
    if _maps_by_table(stored, attributes):
        low = int(stored.min())
        domain = np.arange(low, int(stored.max()) + 1, dtype=stored.dtype)
        table = np.zeros(2 ** (8 * stored.dtype.itemsize), dtype=np.float32)
        unsigned = np.dtype(f"u{stored.dtype.itemsize}")
        table[domain.view(unsigned)] = _presentation(ds, attributes, domain)
        return np.take(table, stored.view(unsigned))
    return _presentation(ds, attributes, stored)


TABLE_MIN_PIXELS_PER_ENTRY = 4
"""A frame is mapped through a table of its value range when it has this many pixels
per table entry (a 2048 x 2048 radiograph: 2 ms instead of 14)."""


def _maps_by_table(stored: np.ndarray, attributes: pydicom.Dataset) -> bool:
    """Whether :func:`presentation_values` may map ``stored`` through a lookup table.

    For stored integers of at most 16 bits under a rescale (not a Modality LUT
    Sequence), every step is a function of the stored value, and the min-max fallback
    takes its extremes at the smallest and largest stored value (the rescale is
    monotonic): mapping the range between them gives the same numbers as the frame.
    """
    if stored.dtype.kind not in "iu" or stored.dtype.itemsize > 2 or stored.size == 0:
        return False
    if attributes.get("ModalityLUTSequence"):
        return False
    return stored.size >= TABLE_MIN_PIXELS_PER_ENTRY * 2 ** (8 * stored.dtype.itemsize)


def _presentation(
    ds: pydicom.Dataset, attributes: pydicom.Dataset, stored: np.ndarray
) -> npt.NDArray[np.float32]:
    """The grey-scale pipeline on ``stored`` with the LUT ``attributes`` of its frame."""
    values = apply_modality_lut(stored, attributes)
    unit = np.asarray(_voi_to_unit(values, attributes), dtype=np.float32)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        np.subtract(1.0, unit, out=unit)
    return unit


def _check_grey_image(ds: pydicom.Dataset) -> None:
    """Raise :class:`ImagingError` unless ``ds`` holds grey pixel data we can decode."""
    if not any(keyword in ds for keyword in _PIXEL_DATA_KEYWORDS):
        raise ImagingError(
            "the dataset has no pixel data (7FE0,0010): it is not an image "
            f"(SOP Class UID {ds.get('SOPClassUID', 'absent')}); send image objects only"
        )
    photometric = ds.get("PhotometricInterpretation")
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise ImagingError(
            f"Photometric Interpretation (0028,0004) {photometric!r} is not supported: "
            f"iqgate assesses grey images only ({' or '.join(SUPPORTED_PHOTOMETRIC)}); "
            "exclude colour images in the model's routing rules"
        )
    samples = ds.get("SamplesPerPixel", 1)
    if samples != 1:
        raise ImagingError(f"Samples per Pixel (0028,0002) is {samples}, a grey image has 1")


def _decode(ds: pydicom.Dataset) -> np.ndarray:
    """Decode the pixel data of ``ds`` ([H, W] or [F, H, W])."""
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID", "absent") if file_meta is not None else "absent"
    try:
        pixels: np.ndarray = ds.pixel_array
    except _DECODE_ERRORS as error:
        raise ImagingError(
            f"cannot decode the pixel data (Transfer Syntax UID {syntax}): {error}"
        ) from error
    if pixels.ndim not in (2, 3):
        raise ImagingError(
            f"decoded pixel data has shape {pixels.shape}; a grey image has [H, W] or [F, H, W]"
        )
    return pixels


def _frame_lut_attributes(ds: pydicom.Dataset, index: int) -> pydicom.Dataset:
    """The Modality and VOI LUT attributes that apply to frame ``index`` of ``ds``.

    ``ds`` itself when it has no functional groups; otherwise a new dataset with the
    top-level attributes overridden by the shared, then the per-frame, functional
    group macros (PS3.3 C.7.6.16).
    """
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not shared and not per_frame:
        return ds
    view = pydicom.Dataset()
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None:
        view.file_meta = file_meta  # the endianness of OW LUT data
    for keyword in (
        "PhotometricInterpretation",
        "BitsStored",
        "PixelRepresentation",
        *_LUT_KEYWORDS,
    ):
        if keyword in ds:
            view.add(ds[keyword])
    groups = [
        shared[0] if shared else None,
        per_frame[index] if per_frame and index < len(per_frame) else None,
    ]
    for group in groups:
        for macro in _LUT_FUNCTIONAL_GROUPS:
            if group is None or not group.get(macro):
                continue
            item = group[macro][0]
            for keyword in _LUT_KEYWORDS:
                if keyword in item:
                    view.add(item[keyword])
    return view


def _voi_to_unit(values: np.ndarray, attributes: pydicom.Dataset) -> np.ndarray:
    """Apply the VOI LUT, window or min-max of one frame, mapping to [0, 1]."""
    if attributes.get("VOILUTSequence"):
        return _voi_lut_to_unit(values, attributes)
    if "WindowCenter" in attributes and "WindowWidth" in attributes:
        return window_to_unit(
            values,
            _first_value(attributes["WindowCenter"].value),
            _first_value(attributes["WindowWidth"].value),
            str(attributes.get("VOILUTFunction", "LINEAR")),
        )
    return _minmax(values.astype(np.float64))


def _first_value(value: object) -> float:
    """The first of a multi-valued DS element (the first window), as a float."""
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _voi_lut_to_unit(values: np.ndarray, attributes: pydicom.Dataset) -> np.ndarray:
    """Apply the first VOI LUT (PS3.3 C.11.2.1.1), scaled by the range of its entries.

    Values below the first mapped value take the first entry, values past the end the
    last one. (pydicom's ``apply_voi`` indexes 8-bit LUTs with uint8 and so wraps
    inputs above 255; this lookup does not.)
    """
    item = attributes.VOILUTSequence[0]
    entries, first_mapped = (int(value) for value in item.LUTDescriptor[:2])
    table = _lut_data(item, attributes)[: entries or 2**16]
    low, high = table.min(), table.max()
    if high == low:
        return np.zeros(values.shape, dtype=np.float64)
    index = np.clip(np.rint(values).astype(np.int64) - first_mapped, 0, table.size - 1)
    return (table[index] - low) / (high - low)


def _lut_data(item: pydicom.Dataset, ds: pydicom.Dataset) -> np.ndarray:
    """The LUT Data (0028,3006) of a LUT item as float64: a list of US or OW words."""
    value = item["LUTData"].value
    if isinstance(value, bytes):
        order = "<" if _is_little_endian(ds) else ">"
        return np.frombuffer(value, dtype=f"{order}u2").astype(np.float64)
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _is_little_endian(ds: pydicom.Dataset) -> bool:
    """Byte order of ``ds``: from its transfer syntax, else as it was read (default little)."""
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is not None:
        return bool(syntax.is_little_endian)
    return ds.original_encoding[1] is not False


def window_to_unit(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    r"""Window (PS3.3 C.11.2.1.2) modality values to the output range [0, 1].

    .. math::

        \text{LINEAR:}\quad y = \operatorname{clip}\left(
            \frac{x - (c - 0.5)}{w - 1} + 0.5, 0, 1\right)
        \qquad
        \text{LINEAR\_EXACT:}\quad y = \operatorname{clip}\left(
            \frac{x - c}{w} + 0.5, 0, 1\right)
        \qquad
        \text{SIGMOID:}\quad y = \frac{1}{1 + e^{-4 (x - c) / w}}

    Parameters
    ----------
    values : numpy.ndarray
        Output of the Modality LUT.
    center, width : float
        Window Center (0028,1050) and Window Width (0028,1051).
    function : str
        VOI LUT Function (0028,1056): LINEAR (the default), LINEAR_EXACT or SIGMOID.

    Returns
    -------
    numpy.ndarray
        float64 array of the shape of ``values`` in [0, 1].

    Raises
    ------
    ImagingError
        For an unknown function or a width the standard does not allow (LINEAR needs
        ``width >= 1``, the others ``width > 0``).
    """
    x = np.asarray(values, dtype=np.float64)
    function = function.strip().upper()
    if function == "LINEAR":
        if width < 1:
            raise ImagingError(
                f"Window Width (0028,1051) {width} is below 1 (VOI LUT Function LINEAR)"
            )
        if width == 1:
            return (x > center - 0.5).astype(np.float64)
        return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    if function not in ("LINEAR_EXACT", "SIGMOID"):
        raise ImagingError(
            f"VOI LUT Function (0028,1056) {function!r} is not supported; "
            "expected LINEAR, LINEAR_EXACT or SIGMOID"
        )
    if width <= 0:
        raise ImagingError(f"Window Width (0028,1051) {width} must be positive ({function})")
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))


def _minmax(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant array gives zeros."""
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def grey_to_unit(image: np.ndarray, *, bit_depth: int | None = None) -> npt.NDArray[np.float32]:
    """Scale an 8-bit or 16-bit grey image (JPEG or PNG data sets) to [0, 1].

    Without ``bit_depth``, uint8 is divided by 255 (8-bit JPEGs such as Object-CXR
    store display values over the full range) and uint16 is min-max scaled over the
    image itself (16-bit PNGs often hold 10 to 14-bit data, so dividing by 65535 would
    give a near-black image; a constant image gives zeros). With ``bit_depth`` both
    are divided by ``2**bit_depth - 1`` and clipped to [0, 1].

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or uint16 array of any shape.
    bit_depth : int, optional
        Bits used by the data, 1 to the bits of the dtype.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape in [0, 1].

    Examples
    --------
    >>> grey_to_unit(np.array([0, 51, 255], dtype=np.uint8)).tolist()
    [0.0, 0.20000000298023224, 1.0]
    >>> grey_to_unit(np.array([0, 4095], dtype=np.uint16), bit_depth=12).tolist()
    [0.0, 1.0]
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"grey_to_unit takes uint8 or uint16 images, got dtype {image.dtype}")
    if bit_depth is not None:
        max_bits = image.dtype.itemsize * 8
        valid = isinstance(bit_depth, int) and not isinstance(bit_depth, bool)
        if not valid or not 1 <= bit_depth <= max_bits:
            raise ValueError(
                f"bit_depth must be an int from 1 to {max_bits} for {image.dtype}, "
                f"got {bit_depth!r}"
            )
        scaled = image.astype(np.float32) / np.float32(2**bit_depth - 1)
        return np.clip(scaled, 0.0, 1.0, out=scaled)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    return _minmax(image.astype(np.float32))


def check_input_size(size: int) -> None:
    """Raise ``ValueError`` unless ``size`` is a positive int (the model's input side)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (the model's input side), got {size!r}")


def resize_square(
    frames: np.ndarray | torch.Tensor, size: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Resize grey frames [F, H, W] to [F, 1, size, size] (aspect not kept).

    Bilinear with antialiasing (``align_corners=False``), computed on ``device`` (the
    tensor's own device, or the CPU for a numpy array, when None).

    Parameters
    ----------
    frames : numpy.ndarray or torch.Tensor
        Grey frames [F, H, W], usually in [0, 1].
    size : int
        Side of the square output.
    device : torch.device or str, optional
        Where to resize.

    Returns
    -------
    torch.Tensor
        float32 [F, 1, size, size].
    """
    check_input_size(size)
    if isinstance(frames, np.ndarray) and not frames.flags.writeable:
        frames = frames.copy()
    x = torch.as_tensor(frames, dtype=torch.float32, device=device)
    if x.ndim != 3:
        raise ValueError(
            f"frames must be [F, H, W], got shape {tuple(x.shape)}; "
            "add a frame axis with frames[None]"
        )
    return F.interpolate(
        x[:, None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


def normalise_imagenet(grey: torch.Tensor) -> torch.Tensor:
    """Repeat grey images [..., 1, H, W] to 3 channels and apply the ImageNet mean/std.

    Parameters
    ----------
    grey : torch.Tensor
        Images in [0, 1] with a single channel axis at position -3.

    Returns
    -------
    torch.Tensor
        [..., 3, H, W]: ``(grey - IMAGENET_MEAN[c]) / IMAGENET_STD[c]`` for channel c.
    """
    if grey.ndim < 3 or grey.shape[-3] != 1:
        raise ValueError(f"grey images must be [..., 1, H, W], got shape {tuple(grey.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=grey.dtype, device=grey.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=grey.dtype, device=grey.device).view(3, 1, 1)
    return (grey - mean) / std


def to_model_input(
    frames: np.ndarray | torch.Tensor, size: int, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Grey frames [F, H, W] in [0, 1] -> model input [F, 3, size, size].

    :func:`resize_square` (bilinear, antialiased, aspect not kept) then
    :func:`normalise_imagenet` (grey repeated to 3 channels, ImageNet mean/std), as in
    the paper's preprocessing.

    Parameters
    ----------
    frames : numpy.ndarray or torch.Tensor
        Output of :func:`frames_from_dataset` or :func:`grey_to_unit` with a frame axis.
    size : int
        The model's input side (600 for Object-CXR, 224 for LVOT in the paper).
    device : torch.device or str, optional
        Where to compute; a GPU resizes large radiographs much faster.

    Returns
    -------
    torch.Tensor
        float32 [F, 3, size, size] on ``device``.

    Examples
    --------
    >>> x = to_model_input(np.full((1, 30, 20), 0.5, dtype=np.float32), 8)
    >>> tuple(x.shape), round(float(x[0, 0, 0, 0]), 4)
    ((1, 3, 8, 8), 0.0655)
    """
    return normalise_imagenet(resize_square(frames, size, device=device))


def stack_to_device(
    arrays: Sequence[np.ndarray], device: torch.device | str | None
) -> torch.Tensor:
    """Stack numpy arrays of one shape into one tensor on ``device``.

    On CUDA they are stacked straight into page-locked (pinned) host memory and sent
    with a non-blocking copy, so the transfer overlaps with work already queued on the
    GPU; PyTorch keeps the pinned block until the copy has run. Elsewhere they are
    stacked into an ordinary tensor.
    """
    target = torch.device(device) if device is not None else torch.device("cpu")
    if target.type != "cuda":
        return torch.from_numpy(np.stack(arrays)).to(target)
    dtype = torch.from_numpy(np.empty(0, np.result_type(*arrays))).dtype
    staging = torch.empty((len(arrays), *arrays[0].shape), dtype=dtype, pin_memory=True)
    np.stack(arrays, out=staging.numpy())
    return staging.to(target, non_blocking=True)


def batch_to_model_input(
    frames: Sequence[np.ndarray | torch.Tensor],
    size: int,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Grey frames [H, W] of any sizes -> model input [N, 3, size, size] on ``device``.

    :func:`to_model_input` applied once per group of frames of the same shape (and the
    same place: numpy on the host, tensors where they are), rather than once per frame.
    Host frames of a group are stacked and moved with :func:`stack_to_device`
    (pinned memory on CUDA); frames already on ``device`` (decoded on the GPU) stay.
    Frames keep their order.
    """
    check_input_size(size)
    target = torch.device(device) if device is not None else torch.device("cpu")
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, frame in enumerate(frames):
        if frame.ndim != 2:
            raise ValueError(f"frames must be [H, W] each, got shape {tuple(frame.shape)}")
        groups.setdefault((type(frame), *frame.shape), []).append(index)
    out = torch.empty((len(frames), 3, size, size), dtype=torch.float32, device=target)
    for indices in groups.values():
        members = [frames[i] for i in indices]
        if isinstance(members[0], torch.Tensor):
            stacked = torch.stack(members).to(target, dtype=torch.float32)  # type: ignore[arg-type]
        else:
            stacked = stack_to_device(members, target).float()  # type: ignore[arg-type]
        out[torch.as_tensor(indices, device=target)] = to_model_input(stacked, size)
    return out


def scale_boxes(
    boxes: np.ndarray | torch.Tensor | Sequence[Sequence[int]],
    from_hw: tuple[int, int],
    to_size: int,
) -> torch.Tensor:
    """Map inclusive pixel boxes from a native H x W frame to the square input.

    A box ``(x1, y1, x2, y2)`` covers pixels x1..x2 and y1..y2, that is the continuous
    span [x1, x2 + 1) x [y1, y2 + 1). The span is scaled by ``to_size / W`` in x and
    ``to_size / H`` in y and the output box is every input pixel it touches:
    ``x1' = floor(x1 s)``, ``x2' = ceil((x2 + 1) s) - 1``, in exact integer
    arithmetic, clipped to [0, to_size - 1]. A one-pixel box stays at least one
    pixel wide.

    Parameters
    ----------
    boxes : array-like
        Inclusive integer boxes [N, 4] as (x1, y1, x2, y2), x to the right, y down.
    from_hw : tuple of int
        The native frame's (height, width).
    to_size : int
        Side of the square model input.

    Returns
    -------
    torch.Tensor
        float32 [N, 4] of whole-number inclusive coordinates ([0, 4] for no boxes).

    Examples
    --------
    >>> scale_boxes([[10, 0, 19, 49]], from_hw=(100, 40), to_size=20).tolist()
    [[5.0, 0.0, 9.0, 9.0]]
    """
    height, width = from_hw
    for name, value in (("from_hw height", height), ("from_hw width", width), ("to_size", to_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    b = torch.as_tensor(boxes)
    if b.numel() == 0:
        return torch.zeros(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4] as (x1, y1, x2, y2), got shape {tuple(b.shape)}")
    if b.is_floating_point() and not torch.equal(b, b.round()):
        raise ValueError(f"boxes must hold whole pixel coordinates, got {b.tolist()}")
    b = b.to(torch.int64)
    if bool((b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
        raise ValueError(
            f"boxes must have x1 <= x2 and y1 <= y2 (inclusive corners), got {b.tolist()}"
        )
    scale = torch.tensor([width, height, width, height], dtype=torch.int64)
    lower = torch.div(b[:, :2] * to_size, scale[:2], rounding_mode="floor")
    upper = -torch.div(-(b[:, 2:] + 1) * to_size, scale[2:], rounding_mode="floor") - 1
    return torch.cat([lower, upper], dim=1).clamp(0, to_size - 1).to(torch.float32)
