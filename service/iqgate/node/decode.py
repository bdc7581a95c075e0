"""Decoding received files into presentation values, in worker processes.

Decoding compressed pixel data is the costliest CPU step of the node (JPEG 2000 costs
about 50 times the model's share: shared/ANCHORS.md), so it runs in a pool of
processes; with zero processes it runs in the calling thread.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from iqgate.imaging import frames_from_dataset


@dataclass
class DecodedImage:
    """A dataset's header (pixel data dropped) and its frames, float32 [F, H, W] in [0, 1]."""

    header: Dataset
    frames: np.ndarray


def decode_file(path: str | Path) -> DecodedImage:
    """Read one DICOM file and turn its pixel data into presentation values."""
    ds = dcmread(path)
    frames = frames_from_dataset(ds)
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            delattr(ds, keyword)
    return DecodedImage(ds, frames)


def _initialise_process() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        os.nice(5)
    except OSError:
        pass


class Decoder:
    """Decode files in ``processes`` worker processes (0: in the caller's thread)."""

    def __init__(self, processes: int) -> None:
        self._pool = (
            ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_initialise_process,
            )
            if processes > 0
            else None
        )

    def decode_many(self, paths: Sequence[Path]) -> list[DecodedImage | BaseException]:
        """Decode every file; a file that fails gives its exception in its place."""
        if self._pool is None:
            results: list[DecodedImage | BaseException] = []
            for path in paths:
                try:
                    results.append(decode_file(path))
                except Exception as exc:  # noqa: BLE001 - reported per file, the node serves on
                    results.append(exc)
            return results
        futures: list[Future[DecodedImage]] = [self._pool.submit(decode_file, p) for p in paths]
        outcomes: list[DecodedImage | BaseException] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:  # noqa: BLE001 - reported per file, the node serves on
                outcomes.append(exc)
        return outcomes

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
