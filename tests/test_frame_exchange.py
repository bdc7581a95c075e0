"""Decoded frames travel from decode processes through shared memory and leave nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dicom_factory import write_image
from iqgate.node import frame_exchange
from iqgate.node.decode import Decoder, decode_file
from iqgate.node.frame_exchange import MIN_PARKED_BYTES, ParkedFrames, park


def ours() -> list[Path]:
    """This process's exchange folders in shared memory."""
    prefix = f"{frame_exchange.EXCHANGE_PREFIX}{os.getpid()}-"
    return list(frame_exchange.SHARED_MEMORY.glob(f"{prefix}*"))


def test_large_frames_are_parked_in_a_file_and_read_back_exactly(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).random((2, 600, 500), dtype=np.float32)
    parked = park(frames, str(tmp_path))

    assert isinstance(parked, ParkedFrames)
    assert [p.name for p in tmp_path.iterdir()] == [Path(parked.path).name]
    np.testing.assert_array_equal(parked.collect(), frames)
    assert list(tmp_path.iterdir()) == []


def test_small_frames_and_a_missing_folder_go_through_the_pipe(tmp_path: Path) -> None:
    small = np.zeros((1, 16, 16), dtype=np.float32)
    large = np.zeros(MIN_PARKED_BYTES // 4 + 1, dtype=np.float32)

    assert park(small, str(tmp_path)) is small
    assert park(large, None) is large
    assert park(large, str(tmp_path / "gone")) is large
    assert list(tmp_path.iterdir()) == []


def test_decode_processes_return_the_same_frames_and_leave_no_files(tmp_path: Path) -> None:
    files = [write_image(tmp_path / f"{i}.dcm", rows=700, columns=600, seed=i) for i in range(3)]
    decoder = Decoder(1)
    (exchange,) = ours()
    try:
        images = decoder.decode_many(files)
        assert list(exchange.iterdir()) == []
    finally:
        decoder.close()
    assert ours() == []
    for path, image in zip(files, images, strict=True):
        assert not isinstance(image, BaseException)
        np.testing.assert_array_equal(image.frames, decode_file(path).frames)


def test_folders_left_by_nodes_that_are_gone_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frame_exchange, "SHARED_MEMORY", tmp_path)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"{frame_exchange.EXCHANGE_PREFIX}{ended.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "1-x.frames").write_bytes(b"\0" * 64)
    ours = frame_exchange.open_exchange()

    assert ours is not None and ours.parent == tmp_path
    assert sorted(tmp_path.iterdir()) == [ours]
    frame_exchange.close_exchange(ours)
    assert list(tmp_path.iterdir()) == []
