"""An export of the console trains a model: ``tools/train.py --data manifest:PATH``."""

from __future__ import annotations

import torch

from iqgate.node.console.export import export_feedback
from iqgate.node.console.feedback import Box, FeedbackKind
from iqgate.node.console.follower import SpoolFollower
from iqgate.node.console.index import ConsoleIndex
from iqgate.node.store.spool import Spool
from iqgate.packages import load_package
from iqgate_testkit.console import assessed_image
from iqgate_testkit.train_tool import TINY_SCHEDULE, package_args, run_train_tool

IMAGES = 80


def test_a_tiny_model_trains_on_a_console_export(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=2**30)
    uids = [
        assessed_image(spool, tmp_path / "results", probability=0.9 if n % 2 else 0.1, seed=n)
        for n in range(IMAGES)
    ]
    index = ConsoleIndex(tmp_path / "console.sqlite3")
    SpoolFollower(tmp_path / "spool", index, tmp_path / "kept", retention_s=3600).run_once()
    for number, uid in enumerate(uids):
        if number % 2:
            index.give_feedback(uid, FeedbackKind.FALSE_ALARM, (), "ann")
        else:
            index.give_feedback(uid, FeedbackKind.MISSED_DEFECT, (Box(10, 10, 30, 30),), "ann")
    result = export_feedback(index, tmp_path / "exports")
    index.close()
    assert (result.images, result.missing) == (IMAGES, 0)
    out = tmp_path / "site-cxr"
    run = run_train_tool(
        "--preset",
        "demo-cxr",
        "--data",
        f"manifest:{result.folder / 'manifest.csv'}",
        "--task",
        "cxr",
        *package_args("site-cxr", tmp_path),
        *TINY_SCHEDULE,
        "--batch-size",
        "8",
        "--threads",
        "1",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    model, card = load_package(out)
    assert card.name == "site-cxr" and card.input_size == 64
    assert "manifest" in card.training["command"]
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
