"""Decoding received files into presentation values, in worker processes.

Decoding compressed pixel data is the costliest CPU step of the node (JPEG 2000 costs
about 50 times the model's share: docs/node-speed.md), so it runs in a pool of
processes, at the worker's priority (below receiving); with zero processes it runs in
the calling thread. Three guards keep a bad file from taking the node down:

- declared dimensions are checked before any pixel is decoded, so a header claiming
  65535 x 65535 pixels over a few bytes of compressed data (a memory bomb) fails that
  job instead of exhausting memory;
- a decoder that kills its process (a crash in a native codec) breaks the process pool;
  the pool is then started again, the other files of the batch are decoded again one at
  a time, and only the file that killed the process fails, with a reason;
- a decoder that hangs (a native codec looping on hostile data) is killed by its own
  process's alarm after ``IQGATE_DECODE_TIMEOUT_S`` and handled as a crash: that file
  fails and the others are decoded again.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError

from iqgate.errors import ImagingError
from iqgate.imaging import frames_from_dataset
from iqgate.node.ops.logs import configure_logging, configured_level

DEFAULT_MAX_PIXELS = 2**28
"""Default for ``IQGATE_DECODE_MAX_PIXELS``: 268 million pixels (1 GiB as float32)."""
DEFAULT_TIMEOUT_S = 120.0
"""Default for ``IQGATE_DECODE_TIMEOUT_S``: far above the 0.55 s a 10 MB JPEG 2000 takes."""


READ_ERRORS = (
    InvalidDicomError,
    BytesLengthException,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    NotImplementedError,
    RecursionError,
    struct.error,
)
"""What reading a malformed file can raise besides :class:`ImagingError`."""


def is_codec_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust codec's panic (pyo3 ``PanicException``).

    The Rust decoders (pylibjpeg-rle, ...) turn a panic on corrupt data into
    ``pyo3_runtime.PanicException``, which derives from ``BaseException`` so that
    ``except Exception`` does not catch it: uncaught, it would end the worker thread.
    """
    return type(exc).__name__ == "PanicException"


class DecoderCrashed(ImagingError):
    """The decoder process died while decoding a file (a crash or a hang in a native codec)."""


@dataclass
class DecodedImage:
    """A dataset's header (pixel data dropped) and its frames, float32 [F, H, W] in [0, 1]."""

    header: Dataset
    frames: np.ndarray


def check_dimensions(ds: Dataset, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise :class:`ImagingError` when the declared image is too large to decode.

    Rows x Columns x Samples per Pixel x Number of Frames must not exceed
    ``max_pixels``; every factor must be a positive whole number.
    """
    factors = {}
    for keyword, default in (
        ("Rows", None),
        ("Columns", None),
        ("SamplesPerPixel", 1),
        ("NumberOfFrames", 1),
    ):
        value = ds.get(keyword, default)
        try:
            number = int(value if value not in (None, "") else default or 0)
        except (TypeError, ValueError):
            raise ImagingError(f"{keyword} {value!r} is not a whole number") from None
        if number < 1:
            raise ImagingError(f"{keyword} is {value!r}; an image needs a positive value")
        factors[keyword] = number
    pixels = int(np.prod(list(factors.values()), dtype=object))
    if pixels > max_pixels:
        shape = " x ".join(f"{k} {v}" for k, v in factors.items())
        raise ImagingError(
            f"declared image of {shape} = {pixels} pixels exceeds IQGATE_DECODE_MAX_PIXELS "
            f"({max_pixels}); not decoded (corrupt header or an image too large to assess)"
        )


def decode_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read one DICOM file and turn its pixel data into presentation values.

    Raises
    ------
    ImagingError
        For a declared size above ``max_pixels``, a file that is not DICOM, and pixel
        data that cannot be decoded (see :func:`iqgate.imaging.frames_from_dataset`).
    """
    try:
        ds = dcmread(path)
        check_dimensions(ds, max_pixels)
        frames = frames_from_dataset(ds)
    except ImagingError:
        raise
    except READ_ERRORS as exc:
        # pydicom converts values lazily, so a malformed element (wrong VR, odd
        # length, bad number) can raise from any attribute access, not only dcmread.
        raise ImagingError(f"cannot read the DICOM file: {type(exc).__name__}: {exc}") from exc
    except BaseException as exc:
        if not is_codec_panic(exc):
            raise
        raise ImagingError(
            f"cannot decode the pixel data: the codec panicked ({type(exc).__name__}: {exc})"
        ) from exc
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            delattr(ds, keyword)
    return DecodedImage(ds, frames)


PARENT_CHECK_S = 1.0
"""How often a decode process checks that the node that started it still runs."""


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            os._exit(0)


def _initialise_process(parent_pid: int, log_level: str) -> None:
    """Set up a decode process: one thread, gone when the node is, logs as the node's.

    It keeps the priority of the pipeline process that starts it: decoding is a stage
    of that pipeline, and five steps lower (nice 15 beside the worker's threads at 10)
    starved it, 65 ms of wall time per radiograph for 14 of CPU, a third less
    throughput. A node killed with SIGKILL cannot shut its pool down, and pool processes
    do not notice on their own: without the watch they would live on (hundreds of MB each).
    SIGALRM keeps its default action, ending the process (see :func:`decode_in_process`).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    configure_logging(log_level)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def decode_in_process(
    decode: Callable[[Path], DecodedImage], timeout_s: float, path: Path
) -> DecodedImage:
    """``decode(path)`` in a decode process that SIGALRM ends after ``timeout_s``.

    The alarm's default action ends the process even inside native code that never
    returns to Python; the pool sees a crash and fails only this file.
    """
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return decode(path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class Decoder:
    """Decode files in ``processes`` worker processes (0: in the caller's thread).

    ``decode`` replaces :func:`decode_file` (it must be picklable: a module-level
    function or a ``functools.partial`` of one). In processes, a file that takes longer
    than ``timeout_s`` fails as if its decoder had crashed; in the caller's thread there
    is no time limit.
    """

    def __init__(
        self,
        processes: int,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        decode: Callable[[Path], DecodedImage] | None = None,
    ) -> None:
        self._processes = processes
        self._decode = decode or functools.partial(decode_file, max_pixels=max_pixels)
        self._decode_in_process = functools.partial(decode_in_process, self._decode, timeout_s)
        self.timeout_s = timeout_s
        self._pool = self._new_pool()
        self.restarts = 0
        """How many times a crashed decoder made the pool start again."""

    def _new_pool(self) -> ProcessPoolExecutor | None:
        if self._processes <= 0:
            return None
        return ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_initialise_process,
            initargs=(os.getpid(), configured_level()),
        )

    def _restart_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self.restarts += 1

    def decode_many(self, paths: Sequence[Path]) -> list[DecodedImage | BaseException]:
        """Decode every file; a file that fails gives its exception in its place."""
        if self._pool is None:
            return [self._decode_here(path) for path in paths]
        outcomes: list[DecodedImage | BaseException | None] = [None] * len(paths)
        lost: list[int] = []
        futures: list[tuple[int, Future[DecodedImage]]] = []
        for index, path in enumerate(paths):
            try:
                futures.append((index, self._pool.submit(self._decode_in_process, path)))
            except BrokenProcessPool:
                lost.append(index)
        for index, future in futures:
            try:
                outcomes[index] = future.result()
            except BrokenProcessPool:
                lost.append(index)
            except Exception as exc:  # noqa: BLE001 - reported per file, the node serves on
                outcomes[index] = exc
        if lost:
            # Some process died: every file in flight lost its result. Try each again
            # alone in a fresh pool; the one that kills the process again is the culprit.
            self._restart_pool()
            for index in sorted(lost):
                outcomes[index] = self._decode_alone(paths[index])
        return [o if o is not None else ImagingError("not decoded") for o in outcomes]

    def _decode_here(self, path: Path) -> DecodedImage | BaseException:
        try:
            return self._decode(path)
        except Exception as exc:  # noqa: BLE001 - reported per file, the node serves on
            return exc

    def _decode_alone(self, path: Path) -> DecodedImage | BaseException:
        if self._pool is None:  # pragma: no cover - only called with a pool
            return self._decode_here(path)
        try:
            return self._pool.submit(self._decode_in_process, path).result()
        except BrokenProcessPool as exc:
            self._restart_pool()
            return DecoderCrashed(
                "the decoder process died while decoding this file (a crash in a native "
                "codec, or no result within IQGATE_DECODE_TIMEOUT_S = "
                f"{self.timeout_s:g} s: corrupt or hostile pixel data); the pool was "
                f"restarted: {exc}"
            )
        except Exception as exc:  # noqa: BLE001 - reported per file, the node serves on
            return exc

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
