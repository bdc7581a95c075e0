"""``tools/train.py`` run as a user runs it, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from iqgate_testkit import REPO

TRAIN_TOOL = REPO / "tools" / "train.py"
TINY_SCHEDULE = ("--epochs", "1", "--input-size", "64")
"""One epoch at 64 px: the schedule of every test that trains."""
TINY_PHANTOM_SPLITS = ("--train-size", "16", "--val-size", "8", "--test-size", "8")
"""Train, validation and test phantoms of a test that trains on phantoms."""


def package_args(name: str, folder: Path) -> tuple[str, ...]:
    """``--name name --out folder/name --work-dir folder/work``: where a test's run writes."""
    return ("--name", name, "--out", str(folder / name), "--work-dir", str(folder / "work"))


def run_train_tool(
    *args: str, launcher: Sequence[str] = (), timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    """``tools/train.py args`` (after ``launcher``, e.g. ``-m torch.distributed.run ...``),
    output captured; the caller checks the return code."""
    return subprocess.run(
        [sys.executable, *launcher, str(TRAIN_TOOL), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
