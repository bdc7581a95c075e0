"""GPU decoding (nvImageCodec): the choice of decoder, the CPU fallback, bit-exactness."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openjpeg
import pytest
import torch
from pydicom import Dataset, dcmread
from pydicom.uid import JPEG2000Lossless, RLELossless, SecondaryCaptureImageStorage

from iqgate.cli import main
from iqgate.data.phantoms import generate, write_dicom
from iqgate.errors import ImagingError
from iqgate.imaging import frames_from_dataset
from iqgate.node.pipeline import build as pipeline_build
from iqgate.node.pipeline.decode import DecodedImage, Decoder, decode_file
from iqgate.node.pipeline.gpu_decode import (
    DeviceImage,
    GpuDecoder,
    NvImageCodec,
    Shape,
    compressed_frames,
    cpu_reason,
    frame_decoder,
    presentation_on_device,
)
from iqgate_testkit.package_factory import tiny_package


def nvimgcodec_missing() -> str | None:
    """Why the GPU test cannot run here (None: it can)."""
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        from nvidia import nvimgcodec  # noqa: F401
    except ImportError:
        return "nvidia.nvimgcodec is not installed (pip install -e '.[gpu]')"
    return None


@pytest.fixture(scope="module")
def j2k_phantoms(tmp_path_factory) -> list[Path]:
    """Phantom radiographs (every pixel encoding) and MR frames in JPEG 2000 lossless."""
    folder = tmp_path_factory.mktemp("j2k")
    return [
        *write_dicom(
            generate("cxr", 5, seed=5), folder / "cxr", transfer_syntaxes=[JPEG2000Lossless]
        ),
        *write_dicom(
            generate("cmr", 3, seed=5), folder / "cmr", transfer_syntaxes=[JPEG2000Lossless]
        ),
    ]


@pytest.fixture(scope="module")
def rle_phantom(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rle")
    return write_dicom(generate("cmr", 1, seed=6), folder, transfer_syntaxes=[RLELossless])[0]


def openjpeg_codec(frames: Sequence[bytes], shapes: Sequence[Shape]) -> list[object | None]:
    """A CPU stand-in for nvImageCodec: OpenJPEG into arrays that support DLPack."""
    return [openjpeg.decode(frame) for frame in frames]


def test_the_cpu_decoder_is_chosen_on_a_cpu_node():
    cpu = Decoder(0)
    assert frame_decoder(cpu, torch.device("cpu")) is cpu


def test_the_cpu_decoder_is_chosen_on_cuda_without_nvimgcodec(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvidia.nvimgcodec", None)  # import raises ImportError
    cpu = Decoder(0)
    assert frame_decoder(cpu, torch.device("cuda")) is cpu


def test_only_grey_jpeg_2000_and_jpeg_within_the_size_limit_go_to_the_gpu(
    j2k_phantoms, rle_phantom
):
    j2k = dcmread(j2k_phantoms[0])
    assert cpu_reason(j2k) is None
    assert "decoded on the CPU" in str(cpu_reason(dcmread(rle_phantom)))
    assert "exceeds IQGATE_DECODE_MAX_PIXELS" in str(cpu_reason(j2k, max_pixels=100))
    j2k.PixelRepresentation = 1
    assert cpu_reason(j2k) == "signed pixel data"


def test_device_frames_equal_the_cpu_decode_to_the_bit(j2k_phantoms, rle_phantom):
    decoder = GpuDecoder(Decoder(0), torch.device("cpu"), openjpeg_codec)
    outcomes = decoder.decode_many([*j2k_phantoms, rle_phantom])
    assert all(isinstance(o, DeviceImage) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], DecodedImage)
    for path, outcome in zip([*j2k_phantoms, rle_phantom], outcomes, strict=True):
        assert not isinstance(outcome, BaseException)
        host = outcome.to_host() if isinstance(outcome, DeviceImage) else outcome
        expected = decode_file(path)
        assert host.frames.dtype == np.float32
        np.testing.assert_array_equal(host.frames, expected.frames)
        assert "PixelData" not in host.header
        assert host.header.SOPInstanceUID == expected.header.SOPInstanceUID


def test_frames_the_codec_cannot_decode_fall_back_to_the_cpu(j2k_phantoms):
    def fails_on_second(frames: Sequence[bytes], shapes: Sequence[Shape]) -> list[object | None]:
        decoded = openjpeg_codec(frames, shapes)
        decoded[1] = None
        return decoded

    def raises(frames: Sequence[bytes], shapes: Sequence[Shape]) -> list[object | None]:
        raise RuntimeError("device lost")

    paths = j2k_phantoms[:3]
    partly = GpuDecoder(Decoder(0), torch.device("cpu"), fails_on_second).decode_many(paths)
    assert [type(o) for o in partly] == [DeviceImage, DecodedImage, DeviceImage]
    failing = GpuDecoder(Decoder(0), torch.device("cpu"), raises).decode_many(paths)
    assert all(isinstance(o, DecodedImage) for o in failing)


def test_files_the_cpu_rejects_fail_with_the_cpu_decoders_error(j2k_phantoms, tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file")
    bad_window = dcmread(j2k_phantoms[0])
    bad_window.WindowWidth = 0.5  # the grey-scale pipeline refuses it
    bad_window.save_as(tmp_path / "window.dcm")
    paths = [junk, tmp_path / "window.dcm"]
    decoder = GpuDecoder(Decoder(0), torch.device("cpu"), openjpeg_codec)
    for outcome, path in zip(decoder.decode_many(paths), paths, strict=True):
        assert isinstance(outcome, ImagingError)
        with pytest.raises(ImagingError, match=re.escape(str(outcome))):
            decode_file(path)


def test_the_lookup_on_the_device_equals_the_cpu_pipeline_without_a_window():
    rng = np.random.default_rng(0)
    stored = rng.integers(100, 3000, size=(3, 20, 24), dtype=np.uint16)
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.set_pixel_data(stored, "MONOCHROME1", 12)  # no window: min-max of each frame
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, 0
    expected = frames_from_dataset(ds)
    got = presentation_on_device(ds, torch.from_numpy(stored)).numpy()
    np.testing.assert_array_equal(got, expected)


def test_the_worker_assesses_device_frames_as_it_assesses_host_frames(
    j2k_phantoms, tmp_path, monkeypatch
):
    tiny_package(tmp_path / "models", modalities=("MR",))
    for name, value in (
        ("MODELS_DIR", tmp_path / "models"),
        ("DEVICE", "cpu"),
        ("CLASSIFIER", "torch"),
        ("OVERLAYS", "all"),
    ):
        monkeypatch.setenv(f"IQGATE_{name}", str(value))
    mr = [str(path) for path in j2k_phantoms if path.parent.name == "cmr"]
    assert main(["assess", *mr, "--out", str(tmp_path / "cpu")]) == 0
    decoded: list[int] = []

    def counting_codec(frames: Sequence[bytes], shapes: Sequence[Shape]) -> list[object | None]:
        decoded.append(len(frames))
        return openjpeg_codec(frames, shapes)

    monkeypatch.setattr(
        pipeline_build,
        "frame_decoder",
        lambda cpu, device, max_pixels: GpuDecoder(
            cpu, device, counting_codec, max_pixels=max_pixels
        ),
    )
    assert main(["assess", *mr, "--out", str(tmp_path / "gpu")]) == 0
    assert sum(decoded) == len(mr)

    def findings(folder: Path) -> list[tuple[object, ...]]:
        reports = [
            r for p in sorted(folder.rglob("*.report.json")) for r in json.loads(p.read_text())
        ]
        return [(r["source"], r["probability"], r["saliency"]["peak_xy"]) for r in reports]

    assert findings(tmp_path / "gpu") == findings(tmp_path / "cpu")
    assert len(list((tmp_path / "gpu").rglob("*.sc.dcm"))) == len(mr)


@pytest.mark.cuda
@pytest.mark.skipif(nvimgcodec_missing() is not None, reason=str(nvimgcodec_missing()))
def test_nvimgcodec_decodes_phantom_jpeg_2000_bit_exactly_on_the_gpu(j2k_phantoms):
    device = torch.device("cuda")
    for path in j2k_phantoms:
        ds = dcmread(path)
        (image,) = NvImageCodec(device)(compressed_frames(ds), [(ds.Rows, ds.Columns)])
        assert image is not None
        stored = torch.from_dlpack(image)  # type: ignore[arg-type]
        assert stored.device.type == "cuda"
        np.testing.assert_array_equal(
            stored.reshape(ds.pixel_array.shape).cpu().numpy(), ds.pixel_array
        )
    decoder = frame_decoder(Decoder(0), device)
    assert isinstance(decoder, GpuDecoder)
    for path, outcome in zip(j2k_phantoms, decoder.decode_many(j2k_phantoms), strict=True):
        assert isinstance(outcome, DeviceImage) and outcome.frames.device.type == "cuda"
        np.testing.assert_array_equal(outcome.to_host().frames, decode_file(path).frames)
