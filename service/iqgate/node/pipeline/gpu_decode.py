"""Decoding JPEG 2000 and JPEG pixel data on the GPU with NVIDIA nvImageCodec.

JPEG 2000 is the costliest step of a CPU node (about 0.5 s per radiograph on one core;
docs/node-speed.md). On a CUDA node with ``nvidia.nvimgcodec`` installed (the ``gpu``
extra), :class:`GpuDecoder` takes the compressed frames of a whole batch of files,
decodes them in one nvImageCodec call straight into GPU memory and hands them to
torch through DLPack (no CuPy, no trip through the host). The grey-scale pipeline
then runs there too: each frame's distinct stored values are mapped on the host by
:func:`iqgate.imaging.presentation_values` (the same code as the CPU path, so the
result is the same to the bit) and the frame is looked up through that table on the
GPU.

Everything else goes to the CPU decoder (:class:`iqgate.node.pipeline.decode.Decoder`), file by
file: other transfer syntaxes (native, RLE, JPEG-LS, deflated), signed, colour or
unusual bit depths, a header over ``IQGATE_DECODE_MAX_PIXELS``, a code stream whose
size disagrees with the header, and any frame nvImageCodec cannot decode. The CPU
decoder then gives the same result or the same error as on a CPU node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from iqgate.errors import ImagingError
from iqgate.imaging import SUPPORTED_PHOTOMETRIC, presentation_values, stack_to_device
from iqgate.node.ops.logs import get_logger
from iqgate.node.pipeline.decode import DEFAULT_MAX_PIXELS, DecodedImage, Decoder, check_dimensions

log = get_logger("gpu_decode")

GPU_TRANSFER_SYNTAXES: frozenset[UID] = frozenset(
    {
        JPEGBaseline8Bit,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEG2000Lossless,
        JPEG2000,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
        HTJ2K,
    }
)
"""Transfer syntaxes decoded on the GPU: those NVIDIA's own pydicom plugin for
nvImageCodec 0.9 hands to nvImageCodec. The lossless ones decode to the same stored
values as pylibjpeg; lossy ones may differ from a CPU decoder by rounding."""

Shape = tuple[int, int]
FrameCodec = Callable[[Sequence[bytes], Sequence[Shape]], list[object | None]]
"""Decodes compressed frames of the given (rows, columns) into arrays that support
DLPack; None where it cannot, or where a code stream declares another size."""


@dataclass
class DeviceImage:
    """A dataset's header (pixel data dropped) and its frames, float32 [F, H, W] in [0, 1],
    in the memory of the device that runs the model."""

    header: Dataset
    frames: torch.Tensor

    def to_host(self) -> DecodedImage:
        """The same image with its frames in host memory (for overlays and reports)."""
        return DecodedImage(self.header, self.frames.cpu().numpy())


class NvImageCodec:
    """nvImageCodec's batched decoder on one CUDA device, on torch's current stream.

    Raises ImportError when ``nvidia.nvimgcodec`` is not installed, and whatever the
    library raises when it cannot start on the device.
    """

    def __init__(self, device: torch.device) -> None:
        from nvidia import nvimgcodec

        self._nvimgcodec = nvimgcodec
        self._device = device
        index = device.index if device.index is not None else torch.cuda.current_device()
        self._decoder = nvimgcodec.Decoder(device_id=index)
        self._params = nvimgcodec.DecodeParams(
            allow_any_depth=True, color_spec=nvimgcodec.ColorSpec.UNCHANGED
        )

    def _code_stream(self, frame: bytes, shape: Shape) -> object | None:
        """The parsed code stream of one grey frame of ``shape``, or None.

        Checked before anything is decoded, so a code stream that claims a larger
        image than its header (a memory bomb) never reaches the GPU.
        """
        try:
            stream = self._nvimgcodec.CodeStream(frame)
        except Exception:  # noqa: BLE001 - an unparsable frame goes to the CPU decoder
            return None
        fits = (stream.height, stream.width) == shape and stream.num_channels == 1
        return stream if fits else None

    def __call__(self, frames: Sequence[bytes], shapes: Sequence[Shape]) -> list[object | None]:
        """Decode ``frames`` in one batch into GPU memory."""
        streams = [self._code_stream(f, shape) for f, shape in zip(frames, shapes, strict=True)]
        valid = [index for index, stream in enumerate(streams) if stream is not None]
        outcomes: list[object | None] = [None] * len(frames)
        if valid:
            decoded = self._decoder.decode(
                [streams[index] for index in valid],
                params=self._params,
                cuda_stream=torch.cuda.current_stream(self._device).cuda_stream,
            )
            for index, image in zip(valid, decoded, strict=True):
                outcomes[index] = image
        return outcomes


def cpu_reason(ds: Dataset, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Why ``ds`` is decoded on the CPU; None when the GPU decodes it."""
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax not in GPU_TRANSFER_SYNTAXES:
        return f"transfer syntax {syntax} is decoded on the CPU"
    if "PixelData" not in ds:
        return "no pixel data"
    if ds.get("PhotometricInterpretation") not in SUPPORTED_PHOTOMETRIC:
        return "not a grey image"
    if ds.get("SamplesPerPixel", 1) != 1:
        return "more than one sample per pixel"
    if ds.get("PixelRepresentation", 0) != 0:
        return "signed pixel data"
    if ds.get("BitsAllocated") not in (8, 16):
        return f"Bits Allocated {ds.get('BitsAllocated')!r}"
    try:
        check_dimensions(ds, max_pixels)
    except ImagingError as exc:
        return str(exc)
    return None


def compressed_frames(ds: Dataset) -> list[bytes]:
    """The compressed frames of an encapsulated Pixel Data element."""
    count = int(ds.get("NumberOfFrames", 1) or 1)
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    frames = list(generate_frames(ds.PixelData, number_of_frames=count, extended_offsets=offsets))
    if len(frames) != count:
        raise ValueError(f"{len(frames)} frames in the pixel data, {count} declared")
    return frames


def stored_frames(ds: Dataset, decoded: Sequence[object | None]) -> torch.Tensor | None:
    """The decoded frames of ``ds`` as one tensor [F, H, W] of stored values.

    None when a frame failed or its size or sample type is not what the header says.
    """
    shape = (int(ds.Rows), int(ds.Columns))
    dtypes = (torch.uint8,) if ds.BitsAllocated == 8 else (torch.uint8, torch.uint16)
    frames = []
    for image in decoded:
        if image is None:
            return None
        frame = torch.from_dlpack(image)  # type: ignore[arg-type]
        if frame.numel() != shape[0] * shape[1] or frame.dtype not in dtypes:
            return None
        frames.append(frame.reshape(shape))
    return torch.stack(frames)


def presentation_on_device(ds: Dataset, stored: torch.Tensor) -> torch.Tensor:
    """Stored values [F, H, W] (unsigned) -> presentation values float32 [F, H, W] in [0, 1].

    Each frame's distinct values are found where the pixels are, mapped on the host by
    :func:`iqgate.imaging.presentation_values` (exactly as the CPU path maps them) and
    looked up where the pixels are: one gather, no per-pixel Python.
    """
    levels = 2 ** int(ds.BitsAllocated)
    container = np.uint8 if levels == 256 else np.uint16
    index = stored.to(torch.int64).flatten(1)
    present = torch.zeros((index.shape[0], levels), dtype=torch.bool, device=index.device)
    present.scatter_(1, index, True)
    tables = []
    for frame, seen in enumerate(present.cpu().numpy()):
        values = np.flatnonzero(seen).astype(container)
        table = np.zeros(levels, dtype=np.float32)
        table[values] = presentation_values(ds, frame, values)
        tables.append(table)
    lookup = stack_to_device(tables, index.device)
    return torch.gather(lookup, 1, index).view(stored.shape)


class GpuDecoder:
    """Decode files on the GPU where nvImageCodec can, with the CPU decoder otherwise.

    Decodes like :class:`iqgate.node.pipeline.decode.Decoder`; the files it decodes itself come
    back as :class:`DeviceImage`. ``codec`` is :class:`NvImageCodec` on a GPU node
    (tests pass a CPU stand-in). ``fallback`` stays its owner's to close.
    """

    def __init__(
        self,
        fallback: Decoder,
        device: torch.device,
        codec: FrameCodec,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.fallback = fallback
        self.device = device
        self._codec = codec
        self._max_pixels = max_pixels

    def _read(self, path: Path) -> tuple[Dataset, list[bytes]] | None:
        """The dataset and its compressed frames, or None when the CPU decodes it."""
        try:
            ds = dcmread(path)
            reason = cpu_reason(ds, self._max_pixels)
            if reason is None:
                return ds, compressed_frames(ds)
        except Exception as exc:  # noqa: BLE001 - the CPU decoder reports the failure
            reason = f"{type(exc).__name__}: {exc}"
        log.debug("decode_on_cpu", path=str(path), reason=reason)
        return None

    def decode_many(
        self, paths: Sequence[Path]
    ) -> list[DecodedImage | DeviceImage | BaseException]:
        """Decode every file; a file that fails gives its exception in its place."""
        read = [self._read(path) for path in paths]
        batch = [(f, (int(ds.Rows), int(ds.Columns))) for ds, fs in filter(None, read) for f in fs]
        decoded = iter(self._decode_batch(batch))
        outcomes: list[DecodedImage | DeviceImage | BaseException | None] = []
        for item in read:
            if item is None:
                outcomes.append(None)
                continue
            ds, frames = item
            outcomes.append(self._device_image(ds, [next(decoded) for _ in frames]))
        on_cpu = [index for index, image in enumerate(outcomes) if image is None]
        for index, image in zip(
            on_cpu, self.fallback.decode_many([paths[i] for i in on_cpu]), strict=True
        ):
            outcomes[index] = image
        return [image for image in outcomes if image is not None]

    def _decode_batch(self, batch: list[tuple[bytes, Shape]]) -> list[object | None]:
        """All compressed frames of the batch in one codec call; all None if it fails."""
        if not batch:
            return []
        frames, shapes = zip(*batch, strict=True)
        try:
            decoded = self._codec(frames, shapes)
            if len(decoded) != len(frames):
                raise RuntimeError(f"{len(decoded)} images for {len(frames)} frames")
            return decoded
        except Exception as exc:  # noqa: BLE001 - the CPU decoder takes the batch over
            log.warning(
                "gpu_decode_failed",
                error=f"{type(exc).__name__}: {exc}",
                consequence="the CPU decodes this batch",
            )
            return [None] * len(frames)

    def _device_image(self, ds: Dataset, decoded: Sequence[object | None]) -> DeviceImage | None:
        """The image from its decoded frames; None (the CPU decodes it) on any problem."""
        try:
            stored = stored_frames(ds, decoded)
            if stored is None:
                return None
            frames = presentation_on_device(ds, stored.to(self.device))
        except Exception as exc:  # noqa: BLE001 - the CPU decoder reports the failure
            log.debug("decode_on_cpu", reason=f"{type(exc).__name__}: {exc}")
            return None
        del ds.PixelData
        return DeviceImage(ds, frames)


def frame_decoder(
    cpu: Decoder, device: torch.device, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Decoder | GpuDecoder:
    """The decoder the worker uses: :class:`GpuDecoder` when ``device`` is CUDA and
    nvImageCodec starts on it, else ``cpu`` itself. The choice is logged with its reason.
    """
    if device.type != "cuda":
        log.info("decode_on_cpu", reason=f"the model runs on {device.type}")
        return cpu
    try:
        codec = NvImageCodec(device)
    except ImportError:
        log.info("decode_on_cpu", reason="nvidia.nvimgcodec is not installed (the gpu extra)")
        return cpu
    except Exception as exc:  # noqa: BLE001 - a GPU codec that cannot start is not fatal
        log.warning("decode_on_cpu", reason=f"nvImageCodec did not start: {exc}")
        return cpu
    log.info("decode_on_gpu", syntaxes=sorted(GPU_TRANSFER_SYNTAXES))
    return GpuDecoder(cpu, device, codec, max_pixels=max_pixels)
