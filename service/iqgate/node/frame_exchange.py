"""Moving decoded frames from a decode process to the worker through shared memory.

A decode process could return its frames through the process pool's pipe, but a pipe
carries 64 KiB per read: a 2048 x 2048 float32 frame (16 MiB) takes some 256 reads, and
the receiving thread must win the GIL back after each one from the worker's other
threads (building SRs, writing results), which hold it for up to the 5 ms switch
interval. Measured on the node: 59 ms of wall time per radiograph in the decode stage
for 14 ms of decoding. So large frames travel through a file in shared memory
(``/dev/shm``) instead: one write in the decode process, one read and an unlink in the
worker. The file lives in a folder of its own per decoder, removed when the decoder
closes (and by the next node when a killed one left it behind); when the folder is
missing or full, frames go through the pipe as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

SHARED_MEMORY = Path("/dev/shm")
EXCHANGE_PREFIX = "iqgate-decode-"
MIN_PARKED_BYTES = 1 << 20
"""Frames smaller than this (1 MiB) go through the pipe: a file would not pay off."""


@dataclass
class ParkedFrames:
    """Frames waiting in a shared-memory file for the worker to collect."""

    path: str
    shape: tuple[int, ...]
    dtype: str

    def collect(self) -> np.ndarray:
        """Read the frames and remove their file."""
        try:
            return np.fromfile(self.path, dtype=np.dtype(self.dtype)).reshape(self.shape)
        finally:
            os.unlink(self.path)


def park(frames: np.ndarray, folder: str | None) -> np.ndarray | ParkedFrames:
    """Write ``frames`` to a new file in ``folder``; the frames themselves when that
    cannot be done (no folder, small frames, a full or missing file system)."""
    if folder is None or frames.nbytes < MIN_PARKED_BYTES:
        return frames
    path = Path(folder) / f"{os.getpid()}-{uuid.uuid4().hex}.frames"
    contiguous = np.ascontiguousarray(frames)
    try:
        with path.open("xb") as handle:
            handle.write(memoryview(contiguous).cast("B"))
    except OSError:
        path.unlink(missing_ok=True)
        return frames
    return ParkedFrames(str(path), tuple(contiguous.shape), contiguous.dtype.str)


def open_exchange() -> Path | None:
    """A new private folder in shared memory for this process's decoders, or None.

    Folders that earlier nodes (processes no longer running) left behind are removed.
    """
    if not SHARED_MEMORY.is_dir() or not os.access(SHARED_MEMORY, os.W_OK):
        return None
    _remove_stale_exchanges()
    try:
        return Path(tempfile.mkdtemp(prefix=f"{EXCHANGE_PREFIX}{os.getpid()}-", dir=SHARED_MEMORY))
    except OSError:
        return None


def close_exchange(folder: Path | None) -> None:
    """Remove an exchange folder and any frames left in it."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_stale_exchanges() -> None:
    for folder in SHARED_MEMORY.glob(f"{EXCHANGE_PREFIX}*"):
        owner = folder.name.removeprefix(EXCHANGE_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _is_running(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ExchangedImage:
    """A decoded image on its way from a decode process: header and parked frames."""

    header: Dataset
    frames: np.ndarray | ParkedFrames

    def collect(self) -> tuple[Dataset, np.ndarray]:
        """The header and the frames, read back (and their file removed) when parked."""
        frames = self.frames.collect() if isinstance(self.frames, ParkedFrames) else self.frames
        return self.header, frames
