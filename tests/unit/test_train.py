"""Training runs end to end on a tiny task, keeps the best epoch and resumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from iqgate.study.train import (
    TRAIN_PRESETS,
    TrainConfig,
    TrainOutcome,
    predict_probabilities,
    train,
)


class BrightSquares(Dataset):
    """Label 1 = a bright square somewhere on a noisy background."""

    def __init__(self, n: int, seed: int, size: int = 32) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=generator) * 0.3
        self.labels = torch.arange(n) % 2
        for i in range(n):
            if self.labels[i]:
                y, x = torch.randint(0, size - 8, (2,), generator=generator).tolist()
                self.images[i, :, y : y + 8, x : x + 8] += 3.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, object]:
        return {"image": self.images[index], "label": int(self.labels[index])}


CONFIG = TrainConfig(
    arch="resnet18", input_size=32, epochs=3, batch_size=16, lr=0.02, lr_step_epochs=2
)


@pytest.mark.parametrize("cpu_bf16", [False, True], ids=["float32", "bfloat16-autocast"])
def test_training_learns_a_tiny_task_and_keeps_the_best_epoch(tmp_path, cpu_bf16):
    outcome = train(
        CONFIG,
        BrightSquares(96, 0),
        BrightSquares(32, 1),
        tmp_path,
        progress=False,
        log=lambda _: None,
        cpu_bf16=cpu_bf16,
    )
    assert [r.epoch for r in outcome.history] == [1, 2, 3]
    assert outcome.best_epoch == max(outcome.history, key=lambda r: r.val_accuracy).epoch
    assert outcome.history[2].lr == pytest.approx(0.002)
    labels, probabilities = predict_probabilities(
        outcome.model, BrightSquares(32, 2), device=torch.device("cpu")
    )
    assert ((probabilities >= 0.5) == (labels == 1)).mean() >= 0.75


class Interrupt(Exception):
    pass


def train_squares(
    config: TrainConfig, work_dir: Path, log: Callable[[str], None] = lambda _: None
) -> TrainOutcome:
    """``train`` on 48 BrightSquares, validated on 16."""
    return train(
        config, BrightSquares(48, 0), BrightSquares(16, 1), work_dir, progress=False, log=log
    )


def test_an_interrupted_run_resumes_after_its_last_finished_epoch(tmp_path):
    def stop_after_first(line: str) -> None:
        if line.startswith("epoch 2"):
            raise Interrupt

    with pytest.raises(Interrupt):
        train_squares(CONFIG, tmp_path, stop_after_first)
    lines: list[str] = []
    outcome = train_squares(CONFIG, tmp_path, lines.append)
    assert lines[0].startswith(f"resuming {tmp_path} after epoch 1")
    assert [r.epoch for r in outcome.history] == [1, 2, 3]
    assert all(r.seconds is not None and r.seconds > 0 for r in outcome.history)
    assert outcome.resumed_epochs == 1
    assert outcome.earlier_seconds() == outcome.history[0].seconds
    with pytest.raises(ValueError, match="other settings"):
        train_squares(CONFIG.with_overrides(lr=0.1), tmp_path)


def test_a_checkpoint_from_before_a_new_setting_resumes_with_its_default(tmp_path):
    train_squares(CONFIG.with_overrides(epochs=1), tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    del state["config"]["twin_batches"]
    torch.save(state, tmp_path / "last.pt")
    lines: list[str] = []
    outcome = train_squares(CONFIG.with_overrides(epochs=2), tmp_path, lines.append)
    assert lines[0].startswith("resuming") and outcome.resumed_epochs == 1
    with pytest.raises(ValueError, match="other settings"):
        train_squares(CONFIG.with_overrides(epochs=3, twin_batches=True), tmp_path)


class RecordingSquares(BrightSquares):
    """BrightSquares that records the order its items are read in."""

    def __init__(self, n: int, seed: int) -> None:
        super().__init__(n, seed)
        self.read: list[int] = []

    def __getitem__(self, index: int) -> dict[str, object]:
        self.read.append(index)
        return super().__getitem__(index)


def test_twin_batches_put_items_2k_and_2k_plus_1_in_one_batch(tmp_path):
    config = CONFIG.with_overrides(epochs=1, batch_size=4, twin_batches=True)
    squares = RecordingSquares(16, 0)
    train(config, squares, BrightSquares(8, 1), tmp_path, progress=False, log=lambda _: None)
    epoch = squares.read[:16]
    assert sorted(epoch) == list(range(16))
    for start in range(0, 16, 4):
        batch = epoch[start : start + 4]
        pairs = {i // 2 for i in batch}
        assert sorted(batch) == sorted(2 * pair + side for pair in pairs for side in (0, 1))
    with pytest.raises(ValueError, match="even batch size"):
        train(
            config.with_overrides(batch_size=3),
            squares,
            BrightSquares(8, 1),
            tmp_path / "odd",
            progress=False,
        )


def test_paper_presets_follow_the_paper():
    cxr, lvot = TRAIN_PRESETS["object-cxr"], TRAIN_PRESETS["lvot"]
    assert (cxr.arch, cxr.input_size, cxr.epochs, cxr.batch_size, cxr.lr, cxr.lr_step_epochs) == (
        "resnet34",
        600,
        20,
        16,
        0.005,
        5,
    )
    assert (cxr.momentum, cxr.weight_decay) == (0.9, 5e-4)
    assert (
        lvot.arch,
        lvot.input_size,
        lvot.epochs,
        lvot.batch_size,
        lvot.lr,
        lvot.lr_step_epochs,
    ) == ("resnet50", 224, 60, 64, 2e-4, None)


def test_batchnorm_recalibration_averages_the_training_images():
    from torch import nn

    from iqgate.study.train import recalibrate_batchnorm

    data = BrightSquares(32, 3)
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Flatten(), nn.LazyLinear(2))
    model(data.images[:2])
    model.eval()
    recalibrate_batchnorm(model, data, batches=100, batch_size=8, device=torch.device("cpu"))
    norm = model[0]
    torch.testing.assert_close(
        norm.running_mean, data.images.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-4
    )
    assert norm.momentum == 0.1 and not model.training
