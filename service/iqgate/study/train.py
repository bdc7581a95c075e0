"""Classifier training with the paper's hyper-parameters (shared/PAPER.md, section 4.1).

Cross-entropy, SGD with momentum, optional step schedule, the best epoch kept by
validation accuracy (or AUC), resumable from ``work_dir`` after an interruption, mixed
precision on CUDA, and DDP when launched with ``torchrun`` (one process per GPU, or
gloo processes on CPUs). For phantoms in twin pairs (:mod:`iqgate.data.twin_pairs`),
``twin_batches`` keeps each phantom and its twin in one batch.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from iqgate import nets
from iqgate.data.transforms import AUGMENTATIONS
from iqgate.data.twin_pairs import PairedRandomSampler
from iqgate.study.metrics import roc_auc

SelectBy = Literal["accuracy", "auc"]
Optimiser = Literal["sgd", "adamw"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    arch: str = "resnet34"
    input_size: int = 600
    epochs: int = 20
    batch_size: int = 16
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step_epochs: int | None = 5
    lr_gamma: float = 0.1
    optimiser: Optimiser = "sgd"
    recalibrate_bn_batches: int = 0
    select_by: SelectBy = "accuracy"
    seed: int = 0
    weights: str | None = None
    amp: bool = True
    num_workers: int = 0
    twin_batches: bool = False
    """Keep training items ``2k`` and ``2k + 1`` (a phantom and its twin) in one batch."""

    def with_overrides(self, **overrides: object) -> TrainConfig:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # Paper, Object-CXR: ResNet-34 at 600, SGD lr 0.005 / 10 every 5 epochs, 20 epochs, batch 16.
    "object-cxr": TrainConfig(),
    # Paper, LVOT: ResNet-50 at 224, SGD lr 2e-4 (no schedule given), 60 epochs, batch 64.
    "lvot": TrainConfig(
        arch="resnet50", input_size=224, epochs=60, batch_size=64, lr=2e-4, lr_step_epochs=None
    ),
    # Demo models shipped in models/: trained from scratch on phantoms on 2 CPU cores.
    # (SGD at the paper's rates barely moved from scratch in 300 steps; AdamW does.)
    # demo-cmr at 128 px: a 224 px epoch costs about three times as much, and on the CMR
    # phantoms the net needed 3 to 5 epochs at 1e-3 to separate the classes (models/cmr-lvot).
    "demo-cxr": TrainConfig(
        arch="resnet18",
        input_size=256,
        epochs=20,
        batch_size=16,
        lr=3e-4,
        lr_step_epochs=16,
        optimiser="adamw",
        weight_decay=1e-4,
        recalibrate_bn_batches=40,
    ),
    "demo-cmr": TrainConfig(
        arch="resnet18",
        input_size=128,
        epochs=10,
        batch_size=16,
        lr=1e-3,
        lr_step_epochs=7,
        optimiser="adamw",
        weight_decay=1e-4,
        recalibrate_bn_batches=40,
    ),
}
"""Named hyper-parameter sets; ``object-cxr`` and ``lvot`` are the paper's."""


@dataclass
class EpochRecord:
    """One epoch's training loss, validation scores and wall time."""

    epoch: int
    lr: float
    train_loss: float
    val_accuracy: float
    val_auc: float
    seconds: float | None = None
    """Wall time of the epoch with its validation; None in checkpoints that predate it."""


@dataclass
class TrainOutcome:
    """The best model (unwrapped, eval mode) and how it was reached."""

    model: nn.Module
    best_epoch: int
    history: list[EpochRecord] = field(default_factory=list)
    resumed_epochs: int = 0
    """Epochs an earlier process trained (read from ``last.pt``); 0 on a fresh run."""

    def history_dicts(self) -> list[dict[str, float | None]]:
        """The history as plain dicts, for JSON."""
        return [asdict(record) for record in self.history]

    def earlier_seconds(self) -> float:
        """Wall seconds of the epochs that earlier processes trained before a resume."""
        return sum(record.seconds or 0.0 for record in self.history[: self.resumed_epochs])


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """``--augment`` and ``--cpu-bf16``, as ``tools/train.py`` and ``tools/benchmark.py`` take them."""
    parser.add_argument(
        "--augment",
        choices=sorted(AUGMENTATIONS),
        default="paper",
        help="training augmentation: paper (colour jitter, affine, flip) or lossless (flips "
        "and quarter turns only, which keep 1-3 px rims and holes sharp)",
    )
    parser.add_argument(
        "--cpu-bf16",
        action="store_true",
        help="train under bfloat16 autocast on the CPU as on CUDA (about 3x faster where the "
        "CPU has AMX; run nothing else on its cores)",
    )


def make_optimiser(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's) or AdamW (for training from scratch)."""
    if config.optimiser == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def recalibrate_batchnorm(
    model: nn.Module, dataset: Dataset, *, batches: int, batch_size: int, device: torch.device
) -> None:
    """Recompute BatchNorm running statistics as plain averages over ``batches`` batches.

    Short runs with a fast optimiser leave the running statistics behind the weights,
    so eval mode scores far worse than training; a pass over un-augmented training
    images in train mode without gradients fixes that (as in SWA).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or batches <= 0:
        return
    saved = [(m, m.momentum) for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate_images_labels,
        generator=torch.Generator().manual_seed(0),
    )
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            for index, (images, _) in enumerate(loader):
                if index >= batches:
                    break
                model(images.to(device))
    finally:
        for norm, momentum in saved:
            norm.momentum = momentum
        model.train(was_training)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def collate_images_labels(
    items: Sequence[Mapping[str, object]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the ``image`` and ``label`` of dataset items (other keys are ignored)."""
    images = torch.stack([torch.as_tensor(item["image"]) for item in items]).float()
    labels = torch.tensor([int(item["label"]) for item in items], dtype=torch.long)
    return images, labels


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (world size 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and packages."""
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group ``torchrun`` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    )


def predict_probabilities(
    model: nn.Module,
    dataset: Dataset,
    *,
    device: torch.device,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and class-1 probabilities of every item of ``dataset``, in order."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_images_labels,
    )
    labels, probabilities = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for images, batch_labels in tqdm(
                loader, desc="evaluate", disable=not progress, leave=False
            ):
                logits = model(images.to(device, non_blocking=True)).float()
                probabilities.append(torch.softmax(logits, 1)[:, 1].cpu().numpy())
                labels.append(batch_labels.numpy())
    finally:
        model.train(was_training)
    return np.concatenate(labels), np.concatenate(probabilities)


def _accuracy_auc(labels: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    return float(((probabilities >= 0.5) == (labels == 1)).mean()), roc_auc(labels, probabilities)


def _save_atomically(payload: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _without_augmentation(dataset: Dataset) -> Dataset:
    """The same images without the training transform, where the data set can say so."""
    with_transform = getattr(dataset, "with_transform", None)
    return with_transform(None) if callable(with_transform) else dataset


def _without_epochs(config: Mapping[str, object]) -> dict[str, object]:
    """The settings but ``epochs``, with defaults for fields a checkpoint predates."""
    return {k: v for k, v in {**asdict(TrainConfig()), **config}.items() if k != "epochs"}


def _score(record: EpochRecord, select_by: SelectBy) -> float:
    value = record.val_accuracy if select_by == "accuracy" else record.val_auc
    return -np.inf if np.isnan(value) else value


def train(
    config: TrainConfig,
    train_set: Dataset,
    val_set: Dataset,
    work_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    cpu_bf16: bool = False,
) -> TrainOutcome:
    """Train, keep the best epoch by validation ``select_by``, resume from ``work_dir``.

    ``work_dir`` holds ``last.pt`` (model, optimiser, schedule, history and random
    states after the last finished epoch) and ``best.pt`` (the best weights so far); a
    second call with the same directory continues where the first stopped. With
    ``config.amp`` the forward pass runs under bfloat16 autocast on CUDA, and on the CPU
    too when ``cpu_bf16`` is set: about three times as fast on CPUs with AMX units when
    nothing else runs on the cores (beside another busy process it was slower than
    float32), and slow on CPUs without bfloat16 instructions; fine-tuning and the CMR
    nets learned as in float32 (docs/benchmark.md).
    """
    device = torch.device(device)
    place = init_distributed(device)
    if device.type == "cuda" and place.world_size > 1:
        device = torch.device("cuda", place.local_rank)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    model = nets.build(config.arch, num_classes=2, weights=config.weights).to(device)
    optimiser = make_optimiser(config, model)
    schedule = (
        torch.optim.lr_scheduler.StepLR(optimiser, config.lr_step_epochs, config.lr_gamma)
        if config.lr_step_epochs
        else None
    )
    history: list[EpochRecord] = []
    start_epoch = 0
    last_path, best_path = work / "last.pt", work / "best.pt"
    if last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=False)
        if _without_epochs(state["config"]) != _without_epochs(asdict(config)):
            raise ValueError(
                f"{work} holds a run with other settings ({state['config']}); use a new work "
                "directory or the same settings (only epochs may grow)"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        history = [EpochRecord(**r) for r in state["history"]]
        start_epoch = len(history)
        torch.set_rng_state(state["torch_rng"])
        if place.is_main:
            log(f"resuming {work} after epoch {start_epoch}")
    trained: nn.Module = model
    if place.world_size > 1:
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    sampler: DistributedSampler | RandomSampler | PairedRandomSampler
    if config.twin_batches and (place.world_size > 1 or config.batch_size % 2):
        raise ValueError("twin_batches needs one process and an even batch size")
    if place.world_size > 1:
        sampler = DistributedSampler(train_set, seed=config.seed, drop_last=False)
    elif config.twin_batches:
        sampler = PairedRandomSampler(
            len(train_set), generator=torch.Generator().manual_seed(config.seed)
        )
    else:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(config.seed))
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate_images_labels,
        pin_memory=device.type == "cuda",
        drop_last=False,
        persistent_workers=config.num_workers > 0,
    )
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.amp and (device.type == "cuda" or (device.type == "cpu" and cpu_bf16))
        else nullcontext()
    )
    for epoch in range(start_epoch, config.epochs):
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        else:
            sampler.generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        epoch_started = time.monotonic()
        trained.train()
        lr = optimiser.param_groups[0]["lr"]
        losses = []
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (progress and place.is_main),
        )
        for images, labels in bar:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            with autocast:
                loss = F.cross_entropy(trained(images).float(), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if schedule is not None:
            schedule.step()
        if config.recalibrate_bn_batches:
            recalibrate_batchnorm(
                model,
                _without_augmentation(train_set),
                batches=config.recalibrate_bn_batches,
                batch_size=config.batch_size,
                device=device,
            )
        labels_np, probabilities = predict_probabilities(
            model,
            val_set,
            device=device,
            batch_size=config.batch_size,
            num_workers=config.num_workers,
        )
        accuracy, auc = _accuracy_auc(labels_np, probabilities)
        record = EpochRecord(
            epoch + 1,
            lr,
            float(np.mean(losses)) if losses else float("nan"),
            accuracy,
            auc,
            seconds=time.monotonic() - epoch_started,
        )
        improved = not history or _score(record, config.select_by) > max(
            _score(r, config.select_by) for r in history
        )
        history.append(record)
        if place.is_main:
            log(
                f"epoch {record.epoch}: loss {record.train_loss:.4f}, val accuracy "
                f"{accuracy:.3f}, val AUC {auc:.3f}{' (best)' if improved else ''}"
            )
            if improved:
                _save_atomically(model.state_dict(), best_path)
            _save_atomically(
                {
                    "config": asdict(config),
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict() if schedule is not None else None,
                    "history": [asdict(r) for r in history],
                    "torch_rng": torch.get_rng_state(),
                },
                last_path,
            )
        if place.world_size > 1:
            dist.barrier()
    best_epoch = max(history, key=lambda r: _score(r, config.select_by)).epoch
    model.load_state_dict(torch.load(best_path, map_location=device, weights_only=True))
    return TrainOutcome(model.eval(), best_epoch, history, resumed_epochs=start_epoch)
