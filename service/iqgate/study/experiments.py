"""The paper's experiments on any data set: Tables 2 to 6, figures and results.json.

One run evaluates, for one or two architectures,

- Repeated (section 4.4): ``trials`` models trained from different seeds with
  :func:`iqgate.study.train.train` (cached and resumable under the cache folder), or
  the trained model packages given; trial 1 is the "one trained model" of Table 2;
- SR and FR (section 4.4): ``trials`` randomised models each (SR only with ImageNet
  weights: otherwise it is recorded as not run, never scored);
- every saliency row of the paper unsmoothed and smoothed (sections 4.2-4.3), the
  accuracy and AUC of each trained model (Table 6), the DoM of two architectures
  (section 4.5) and the all-objects score.

Profiles size the run: ``paper`` (the paper's architectures and hyper-parameters),
``reduced`` (ResNet-18 and EfficientNet-B0 on phantoms at the demo presets' sizes,
the whole grid on 2 CPU cores in a few hours) and ``quick`` (a smoke test).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

from iqgate import nets
from iqgate.data.phantom_dataset import generator_digest
from iqgate.data.sources import DataSplits, PhantomSizes, open_data
from iqgate.data.transforms import AUGMENTATIONS
from iqgate.packages import load_package, read_card
from iqgate.study.dom import STD_DDOF
from iqgate.study.evaluation import (
    SMOOTHINGS,
    PointingSettings,
    evaluate_model,
    pointer_baselines,
)
from iqgate.study.figures import pointing_chart, saliency_grid
from iqgate.study.paper_numbers import PAPER_ARCHITECTURES, PaperDataset
from iqgate.study.randomisation import (
    CONDITION_TITLES,
    CONDITIONS,
    Condition,
    fully_randomised,
    semi_randomised,
    trial_seed,
)
from iqgate.study.results import Record, aggregate, model_record, write_json
from iqgate.study.tables import render_tables
from iqgate.study.train import TRAIN_PRESETS, TrainConfig, train

Profile = Literal["paper", "reduced", "quick"]
PROFILES: tuple[Profile, ...] = ("paper", "reduced", "quick")
DEMO_PRESETS: dict[PaperDataset, str] = {"object-cxr": "demo-cxr", "lvot": "demo-cmr"}


@dataclass(frozen=True)
class ProfileDefaults:
    """What a profile chooses when the command line does not."""

    archs: tuple[str, ...]
    train: TrainConfig
    phantom_sizes: PhantomSizes
    trials: int


def profile_defaults(profile: Profile, compare_with: PaperDataset) -> ProfileDefaults:
    """Architectures, hyper-parameters, phantom counts and trials of a profile.

    - ``paper``: the paper's two architectures and training preset for the data set
      (Object-CXR: ResNet-34 + EfficientNet-B0 at 600; LVOT: ResNet-50 +
      EfficientNet-B0 at 224), three trials.
    - ``reduced``: ResNet-18 + EfficientNet-B0 with the demo presets as they are (CXR
      256 px, 20 epochs; CMR 128 px, 10 epochs), 600/100/200 phantoms, three trials.
      From scratch on these phantoms a net stays at chance for its first epochs
      (ResNet-18, CMR: validation AUC 0.38-0.49 through epoch 5; CXR: through epoch 6),
      so a shorter schedule yields untrained models.
    - ``quick``: ResNet-18 at 64 px, one epoch, 64/32/32 phantoms, two trials.
    """
    if profile == "paper":
        return ProfileDefaults(
            PAPER_ARCHITECTURES[compare_with], TRAIN_PRESETS[compare_with], PhantomSizes(), 3
        )
    demo = TRAIN_PRESETS[DEMO_PRESETS[compare_with]]
    if profile == "reduced":
        return ProfileDefaults(
            ("resnet18", "efficientnet_b0"), demo, PhantomSizes(600, 100, 200), 3
        )
    if profile == "quick":
        return ProfileDefaults(
            ("resnet18",),
            replace(demo, input_size=64, epochs=1, batch_size=16),
            PhantomSizes(64, 32, 32),
            2,
        )
    raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")


@dataclass(frozen=True)
class BenchmarkPlan:
    """Everything one benchmark run does; recorded in full in ``results.json``."""

    data: str
    compare_with: PaperDataset
    archs: tuple[str, ...]
    train: TrainConfig
    phantom_sizes: PhantomSizes = field(default_factory=PhantomSizes)
    trials: int = 3
    settings: PointingSettings = field(default_factory=PointingSettings)
    weights: tuple[str | None, ...] = ()
    packages: tuple[str, ...] = ()
    profile: Profile = "paper"
    data_seed: int = 0
    figure_cases: int = 3
    cpu_bf16: bool = False
    """Train under bfloat16 autocast on the CPU too (see :func:`iqgate.study.train.train`)."""
    augment: str = "paper"
    """Training augmentation, a key of :data:`iqgate.data.transforms.AUGMENTATIONS`."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.archs) <= 2 or len(set(self.archs)) != len(self.archs):
            raise ValueError(
                f"give one architecture, or two distinct ones for the DoM, got {self.archs}"
            )
        unknown = [a for a in self.archs if a not in nets.ARCHITECTURES]
        if unknown:
            raise ValueError(f"unknown architecture(s) {unknown}; choose from {nets.ARCHITECTURES}")
        if self.weights and len(self.weights) != len(self.archs):
            raise ValueError(
                f"give one ImageNet weights file per architecture {self.archs}, in the same "
                f"order, got {len(self.weights)}: {self.weights}"
            )
        if self.trials < 1:
            raise ValueError(f"trials must be at least 1 (the paper uses 3), got {self.trials}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(
                f"unknown augmentation {self.augment!r}; choose from {list(AUGMENTATIONS)}"
            )

    def weights_for(self, arch: str) -> str | None:
        """The ImageNet checkpoint given for ``arch``, if any."""
        return self.weights[self.archs.index(arch)] if self.weights else None

    def as_dict(self) -> dict[str, object]:
        """Every option as plain values."""
        record = asdict(self)
        record["std"] = f"over trials, ddof={STD_DDOF} (population)"
        return record


@dataclass(frozen=True)
class ModelSource:
    """One model to evaluate: a package, a training run, or a randomised model."""

    condition: Condition
    arch: str
    trial: int
    input_size: int
    seed: int | None = None
    package: str | None = None
    train_config: TrainConfig | None = None
    work_dir: Path | None = None
    imagenet_weights: str | None = None

    def describe(self) -> dict[str, object]:
        """Where the model comes from, for ``results.json``."""
        if self.package is not None:
            card = read_card(self.package)
            return {
                "kind": "package",
                "path": self.package,
                "name": card.name,
                "version": card.version,
                "weights_sha256": card.weights_sha256,
            }
        if self.train_config is not None:
            return {
                "kind": "trained",
                "seed": self.seed,
                "work_dir": str(self.work_dir),
                "init": "ImageNet" if self.imagenet_weights else "random (He)",
            }
        if self.condition == "sr":
            return {"kind": "SR", "seed": self.seed, "imagenet_weights": self.imagenet_weights}
        return {"kind": "FR", "seed": self.seed}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[-60:] or "data"


def training_work_dir(plan: BenchmarkPlan, config: TrainConfig, cache_dir: Path) -> Path:
    """Checkpoint folder of one training run: unique to its data and settings.

    Epochs are left out of the key because :func:`iqgate.study.train.train` may resume
    a run with more epochs; phantom data is keyed by the generator's version as well.
    """
    key: dict[str, object] = {
        "config": {k: v for k, v in asdict(config).items() if k != "epochs"},
        "data": plan.data,
        "data_seed": plan.data_seed,
        "phantom_sizes": asdict(plan.phantom_sizes),
        "cpu_bf16": plan.cpu_bf16,
        "augment": plan.augment,
    }
    if plan.data.startswith("phantoms"):
        key["phantom_generator"] = generator_digest()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{config.arch}-{config.input_size}px-seed{config.seed}-{digest}"
    return cache_dir / "models" / _slug(plan.data) / name


def plan_sources(
    plan: BenchmarkPlan, cache_dir: Path
) -> tuple[list[ModelSource], dict[str, dict[str, str]]]:
    """Every model to evaluate, in run order, and the conditions that cannot run.

    Packages stand for the Repeated trials of their architecture (numbered in the
    order given); the other architectures are trained.
    """
    sources: list[ModelSource] = []
    for directory in plan.packages:
        card = read_card(directory)
        if card.architecture not in plan.archs:
            raise ValueError(
                f"package {directory!r} is a {card.architecture}, not one of the run's "
                f"architectures {plan.archs}"
            )
        trial = 1 + sum(s.arch == card.architecture for s in sources)
        sources.append(
            ModelSource("repeated", card.architecture, trial, card.input_size, package=directory)
        )
    not_run: dict[str, dict[str, str]] = {}
    for arch in plan.archs:
        weights = plan.weights_for(arch)
        given = [s.input_size for s in sources if s.arch == arch]
        size = given[0] if given else plan.train.input_size
        for condition in CONDITIONS:
            if condition == "repeated" and given:
                continue
            if condition == "sr" and weights is None:
                not_run.setdefault("sr", {})[arch] = (
                    f"no ImageNet weights for {arch} (--weights PATH): SR needs the ImageNet "
                    "backbone with a random head"
                )
                continue
            for trial in range(1, plan.trials + 1):
                seed = trial_seed(condition, plan.train.seed, trial)
                source = ModelSource(condition, arch, trial, size, seed, imagenet_weights=weights)
                if condition == "repeated":
                    config = replace(plan.train, arch=arch, seed=seed, weights=weights)
                    source = replace(
                        source,
                        train_config=config,
                        work_dir=training_work_dir(plan, config, cache_dir),
                    )
                sources.append(source)
    return sources, not_run


def load_model(
    source: ModelSource,
    data_at: Callable[[int], DataSplits],
    *,
    device: torch.device,
    progress: bool,
    log: Callable[[str], None],
    cpu_bf16: bool = False,
) -> nn.Module:
    """Build, load or train (resuming from its work folder) the model of ``source``."""
    if source.package is not None:
        return load_package(source.package, device)[0]
    if source.train_config is not None and source.work_dir is not None:
        data = data_at(source.input_size)
        return train(
            source.train_config,
            data.train,
            data.val,
            source.work_dir,
            device=device,
            progress=progress,
            log=log,
            cpu_bf16=cpu_bf16,
        ).model
    if source.seed is None:
        raise ValueError(f"a randomised model needs a seed: {source}")
    if source.condition == "sr" and source.imagenet_weights is not None:
        return semi_randomised(source.arch, source.imagenet_weights, source.seed)
    return fully_randomised(source.arch, source.seed)


def run_benchmark(
    plan: BenchmarkPlan,
    out_dir: str | Path,
    cache_dir: str | Path,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    command: str = "",
) -> dict[str, object]:
    """Run every experiment of ``plan``; write results.json, tables.md and PNG figures.

    Returns the results as written to ``out_dir / "results.json"`` (see
    :mod:`iqgate.study.results` for the layout).
    """
    started = time.time()
    device = torch.device(device)
    out, cache = Path(out_dir), Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    sources, not_run = plan_sources(plan, cache)
    trains = any(s.train_config is not None for s in sources)
    sizes = plan.phantom_sizes if trains else replace(plan.phantom_sizes, train=0, val=0)
    opened: dict[int, DataSplits] = {}

    def data_at(size: int) -> DataSplits:
        if size not in opened:
            opened[size] = open_data(
                plan.data,
                size,
                seed=plan.data_seed,
                phantom_sizes=sizes,
                augment=AUGMENTATIONS[plan.augment](),
                processes=plan.settings.num_workers,
                progress=progress,
            )
        return opened[size]

    models: list[Record] = []
    for source in tqdm(sources, desc="models", disable=not progress):
        label = f"{CONDITION_TITLES[source.condition]} {source.arch} trial {source.trial}"
        description = source.describe()
        log(f"{label}: {description}")
        model = load_model(
            source, data_at, device=device, progress=progress, log=log, cpu_bf16=plan.cpu_bf16
        )
        splits = data_at(source.input_size)
        evaluation = evaluate_model(
            model,
            splits.test,
            plan.settings,
            device=device,
            keep_cases=plan.figure_cases if source.trial == 1 else 0,
            progress=progress,
            description=f"explain {label}",
            twins=splits.twins,
        )
        models.append(
            model_record(source.condition, source.arch, source.trial, description, evaluation)
        )
        figure_smoothings = SMOOTHINGS if source.condition == "repeated" else ("smoothed",)
        for smoothing in figure_smoothings if evaluation.cases else ():
            saliency_grid(
                evaluation.cases,
                smoothing,
                out / f"saliency-{source.condition}-{source.arch}-{smoothing}.png",
                f"{label}, {smoothing} maps (x = maximum; green hit, red miss)",
            )
    results: dict[str, object] = {
        "options": plan.as_dict(),
        "data": {f"{size}px": splits.description for size, splits in opened.items()},
        "environment": {
            "command": command,
            "device": str(device),
            "torch": torch.__version__,
            "minutes": round((time.time() - started) / 60, 2),
        },
        "not_run": not_run,
        "baselines": {
            f"{size}px": pointer_baselines(splits.test, plan.settings.tau)
            for size, splits in opened.items()
        },
        "models": models,
        "aggregates": aggregate(models, plan.archs),
    }
    write_json(results, out / "results.json")
    (out / "tables.md").write_text(render_tables(results))
    pointing_chart(results, out / "pointing-game.png")
    return results
