"""iqgate.imaging: DICOM grey-scale pipeline, model input and box scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless, SecondaryCaptureImageStorage

from iqgate import imaging
from iqgate.errors import ImagingError
from iqgate.imaging import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    frames_from_dataset,
    grey_to_unit,
    scale_boxes,
    to_model_input,
    window_to_unit,
)


def grey_dataset(
    pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 12
) -> Dataset:
    """An in-memory grey image (explicit VR little endian) holding ``pixels``."""
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.set_pixel_data(pixels, photometric, bits_stored)
    return ds


def saved_and_read(ds: Dataset, path: Path) -> Dataset:
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


RAMP = np.array([[0, 100, 200], [300, 400, 500]], dtype=np.uint16)


def test_without_voi_each_frame_is_minmax_scaled_to_unit_range() -> None:
    frames = frames_from_dataset(grey_dataset(RAMP))
    assert frames.dtype == np.float32
    assert frames.shape == (1, 2, 3)
    np.testing.assert_allclose(frames[0], RAMP / 500.0, atol=1e-6)


def test_monochrome1_is_inverted_so_that_high_is_bright() -> None:
    frames = frames_from_dataset(grey_dataset(RAMP, "MONOCHROME1"))
    np.testing.assert_allclose(frames[0], 1.0 - RAMP / 500.0, atol=1e-6)


def test_rescale_slope_and_intercept_come_before_the_window() -> None:
    ds = grey_dataset(np.array([[0, 50, 100, 150]], dtype=np.uint16))
    ds.RescaleSlope = 2
    ds.RescaleIntercept = -100  # modality values -100, 0, 100, 200
    ds.WindowCenter = 50
    ds.WindowWidth = 201  # LINEAR: y = (x - 49.5) / 200 + 0.5, clipped
    frames = frames_from_dataset(ds)
    np.testing.assert_allclose(frames[0, 0], [0.0, 0.2525, 0.7525, 1.0], atol=1e-6)


def test_the_first_of_several_windows_is_applied() -> None:
    ds = grey_dataset(np.array([[0, 50, 100, 150]], dtype=np.uint16))
    ds.WindowCenter = [100, 1000]
    ds.WindowWidth = [101, 10]  # the first: y = (x - 99.5) / 100 + 0.5
    frames = frames_from_dataset(ds)
    np.testing.assert_allclose(frames[0, 0], [0.0, 0.005, 0.505, 1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("LINEAR_EXACT", [0.0, 0.5, 1.0]),
        ("SIGMOID", [1 / (1 + np.exp(2)), 0.5, 1 / (1 + np.exp(-2))]),
    ],
)
def test_voi_lut_functions_follow_the_standard(function: str, expected: list[float]) -> None:
    ds = grey_dataset(np.array([[50, 100, 150]], dtype=np.uint16))
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 100, 100, function
    np.testing.assert_allclose(frames_from_dataset(ds)[0, 0], expected, atol=1e-6)


def test_an_unknown_voi_lut_function_is_rejected() -> None:
    with pytest.raises(ImagingError, match="VOI LUT Function .*'GAMMA'"):
        window_to_unit(np.zeros(3), 0.0, 10.0, "GAMMA")


def test_a_voi_lut_sequence_is_scaled_by_the_range_of_its_entries() -> None:
    ds = grey_dataset(np.array([[0, 1, 2, 3, 7]], dtype=np.uint16))
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4, 0, 8])
    item.add_new("LUTData", "US", [0, 10, 20, 40])
    ds.VOILUTSequence = Sequence([item])
    ds.WindowCenter, ds.WindowWidth = 2, 2  # the LUT wins, as in pydicom
    np.testing.assert_allclose(frames_from_dataset(ds)[0, 0], [0, 0.25, 0.5, 1, 1], atol=1e-6)


def test_an_8_bit_voi_lut_longer_than_256_entries_does_not_wrap(tmp_path: Path) -> None:
    ds = grey_dataset(np.array([[10, 256, 300, 600]], dtype=np.uint16))
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [512, 0, 8])
    item.add_new("LUTData", "OW", (np.arange(512, dtype="<u2") // 2).tobytes())
    ds.VOILUTSequence = Sequence([item])
    frames = frames_from_dataset(saved_and_read(ds, tmp_path / "lut.dcm"))
    np.testing.assert_allclose(frames[0, 0], np.array([5, 128, 150, 255]) / 255, atol=1e-6)


def test_a_multi_frame_image_gives_one_scaled_frame_each() -> None:
    pixels = np.stack([RAMP, RAMP * 2, RAMP + 7])
    frames = frames_from_dataset(grey_dataset(pixels))
    assert frames.shape == (3, 2, 3)
    for frame in frames:
        np.testing.assert_allclose(frame, RAMP / 500.0, atol=1e-6)


def test_enhanced_functional_groups_give_each_frame_its_window() -> None:
    ds = grey_dataset(np.stack([RAMP, RAMP]))
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 1, -100  # shared: -100 .. 400
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for center in (0, 300):
        window = Dataset()
        window.WindowCenter, window.WindowWidth, window.VOILUTFunction = center, 200, "LINEAR_EXACT"
        group = Dataset()
        group.FrameVOILUTSequence = Sequence([window])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    frames = frames_from_dataset(ds)
    values = RAMP - 100.0
    np.testing.assert_allclose(frames[0], np.clip(values / 200 + 0.5, 0, 1), atol=1e-6)
    np.testing.assert_allclose(frames[1], np.clip((values - 300) / 200 + 0.5, 0, 1), atol=1e-6)


def test_explicit_vr_and_rle_files_decode_to_the_same_frames(tmp_path: Path) -> None:
    pixels = np.arange(2 * 5 * 7, dtype=np.uint16).reshape(2, 5, 7) * 37
    ds = grey_dataset(pixels, "MONOCHROME1")
    ds.WindowCenter, ds.WindowWidth = 1200, 2000
    plain = saved_and_read(ds, tmp_path / "plain.dcm")
    ds.compress(RLELossless)
    rle = saved_and_read(ds, tmp_path / "rle.dcm")
    assert rle.file_meta.TransferSyntaxUID == RLELossless
    expected = 1.0 - np.clip((pixels - 1199.5) / 1999 + 0.5, 0, 1)
    np.testing.assert_allclose(frames_from_dataset(plain), expected, atol=1e-6)
    np.testing.assert_array_equal(frames_from_dataset(rle), frames_from_dataset(plain))


def _large_frame(dtype: str, low: int, high: int) -> np.ndarray:
    """A 600 x 600 frame of random values in [low, high): large enough for the table path."""
    return np.random.default_rng(7).integers(low, high, (600, 600)).astype(dtype)


LARGE_FRAMES = {
    "uint16 windowed MONOCHROME1": (
        _large_frame("uint16", 100, 4000),
        "MONOCHROME1",
        {"WindowCenter": 2000, "WindowWidth": 1500, "RescaleSlope": 0.5, "RescaleIntercept": -20},
    ),
    "int16 min-max, negative slope": (
        _large_frame("int16", -3000, 3000),
        "MONOCHROME2",
        {"RescaleSlope": -2, "RescaleIntercept": 7},
    ),
    "uint8 sigmoid": (
        _large_frame("uint8", 3, 250),
        "MONOCHROME2",
        {"WindowCenter": 120, "WindowWidth": 60, "VOILUTFunction": "SIGMOID"},
    ),
}


@pytest.mark.parametrize("case", sorted(LARGE_FRAMES))
def test_large_frames_mapped_through_a_table_equal_the_pipeline_pixel_by_pixel(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels, photometric, attributes = LARGE_FRAMES[case]
    bits = pixels.dtype.itemsize * 8
    ds = grey_dataset(pixels, photometric, bits_stored=bits)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    by_table = frames_from_dataset(ds)
    monkeypatch.setattr(imaging, "TABLE_MIN_PIXELS_PER_ENTRY", 10**12)  # pixel by pixel
    direct = frames_from_dataset(ds)

    np.testing.assert_array_equal(by_table, direct)
    assert by_table.dtype == np.float32 and 0 < by_table.mean() < 1


def test_a_colour_image_is_rejected_with_its_photometric_interpretation() -> None:
    rgb = Dataset()
    rgb.set_pixel_data(np.zeros((4, 4, 3), dtype=np.uint8), "RGB", 8)
    with pytest.raises(ImagingError, match=r"Photometric Interpretation .*'RGB'.*grey images"):
        frames_from_dataset(rgb)


@pytest.mark.parametrize("photometric", ["PALETTE COLOR", "YBR_FULL_422"])
def test_other_photometric_interpretations_are_rejected(photometric: str) -> None:
    ds = grey_dataset(RAMP)
    ds.PhotometricInterpretation = photometric
    with pytest.raises(ImagingError, match=photometric):
        frames_from_dataset(ds)


def test_a_dataset_without_pixel_data_is_rejected() -> None:
    ds = grey_dataset(RAMP)
    del ds.PixelData
    with pytest.raises(ImagingError, match="no pixel data"):
        frames_from_dataset(ds)


def test_truncated_pixel_data_is_reported_as_an_imaging_error() -> None:
    ds = grey_dataset(RAMP)
    ds.PixelData = ds.PixelData[:-4]
    with pytest.raises(ImagingError, match="cannot decode the pixel data"):
        frames_from_dataset(ds)


def test_constant_grey_maps_to_the_imagenet_normalised_value_per_channel() -> None:
    frames = np.full((2, 30, 50), 0.5, dtype=np.float32)
    x = to_model_input(frames, 16)
    assert x.shape == (2, 3, 16, 16)
    assert x.dtype == torch.float32
    for channel, (mean, std) in enumerate(zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)):
        torch.testing.assert_close(x[:, channel], torch.full((2, 16, 16), (0.5 - mean) / std))


def test_resizing_does_not_keep_the_aspect_and_does_not_transpose() -> None:
    frames = torch.zeros(1, 20, 80)
    frames[:, :, :40] = 1.0  # left half bright
    x = to_model_input(frames, 8)
    grey = x[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    torch.testing.assert_close(grey[:, :3], torch.ones(8, 3))
    torch.testing.assert_close(grey[:, 5:], torch.zeros(8, 3))
    torch.testing.assert_close(grey, grey[:1].expand(8, 8))  # constant down each column


def test_to_model_input_wants_a_frame_axis() -> None:
    with pytest.raises(ValueError, match=r"\[F, H, W\].*frames\[None\]"):
        to_model_input(np.zeros((8, 8), dtype=np.float32), 4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_input_computed_on_the_gpu_matches_the_cpu() -> None:
    frames = np.random.default_rng(0).random((2, 300, 200), dtype=np.float32)
    gpu = to_model_input(frames, 64, device="cuda")
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), to_model_input(frames, 64), atol=1e-5, rtol=1e-5)


def test_boxes_scale_x_by_width_and_y_by_height() -> None:
    # Native 200 high, 50 wide, to 100 x 100: x doubles, y halves.
    boxes = scale_boxes([[10, 20, 19, 59]], from_hw=(200, 50), to_size=100)
    assert boxes.dtype == torch.float32
    assert boxes.tolist() == [[20.0, 10.0, 39.0, 29.0]]


def test_a_one_pixel_box_keeps_at_least_one_pixel_and_boxes_are_clipped() -> None:
    boxes = scale_boxes(np.array([[7, 7, 7, 7], [90, 95, 120, 130]]), (100, 100), 10)
    assert boxes.tolist() == [[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]


def test_no_boxes_give_an_empty_n_by_4_tensor() -> None:
    assert scale_boxes([], (10, 20), 5).shape == (0, 4)


def test_inverted_boxes_are_rejected() -> None:
    with pytest.raises(ValueError, match="x1 <= x2"):
        scale_boxes([[5, 0, 4, 3]], (10, 10), 10)


def test_grey_to_unit_scales_8_bit_by_255_and_16_bit_by_its_range_or_bit_depth() -> None:
    np.testing.assert_allclose(grey_to_unit(np.array([0, 255], dtype=np.uint8)), [0, 1])
    np.testing.assert_allclose(grey_to_unit(np.array([100, 300], dtype=np.uint16)), [0, 1])
    np.testing.assert_allclose(
        grey_to_unit(np.array([0, 1023, 5000], dtype=np.uint16), bit_depth=10), [0, 1, 1]
    )
    with pytest.raises(TypeError, match="uint8 or uint16"):
        grey_to_unit(np.zeros(3, dtype=np.float32))
