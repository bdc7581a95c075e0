"""One classifier on one test set: accuracy, AUC and every image's Pointing Game outcome.

Every method row of the paper's tables (:data:`iqgate.study.paper_numbers.ROWS`) is
scored on every test image with at least one box, unsmoothed and smoothed (paper
section 4.3, Gaussian sigma 1.0), by the Pointing Game (section 4.2) and by the
all-objects score of :mod:`iqgate.study.pointing`.

Smoothing costs no second explanation: the engine's maps are min-max normalised raw
maps, and a normalised Gaussian with reflect padding commutes with that affine map, so
``finish(unsmoothed, sigma)`` equals ``explain(..., smooth_sigma=sigma)`` (up to float
rounding).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from iqgate.data.object_cxr import ImageBatch, ImageItem, collate_samples
from iqgate.explain import explain_many
from iqgate.explain.normgrad import Combine
from iqgate.explain.postprocess import finish, upsample
from iqgate.imaging import IMAGENET_MEAN, IMAGENET_STD
from iqgate.study.baselines import score_pointers
from iqgate.study.metrics import roc_auc, scores_at
from iqgate.study.paper_numbers import ROWS
from iqgate.study.pointing import (
    first_maximum,
    objects_hit_fraction,
    pointing_accuracy,
    pointing_game,
)

TargetRule = Literal["label", "predicted"]
PgFrame = Literal["input", "original"]
SMOOTHINGS = ("unsmoothed", "smoothed")
"""Keys of the two map versions every image is scored on (Table 2)."""
_COMBINED_CALL = tuple(dict.fromkeys(r.method for r in ROWS if r.layers != "single"))
_SINGLE_CALL = tuple(r.method for r in ROWS if r.layers == "single")


@dataclass(frozen=True)
class PointingSettings:
    """How maps are made and scored; each field is one of the paper's ambiguities.

    Attributes
    ----------
    target : {"label", "predicted"}
        Class explained: the ground-truth label (the paper's text) or the predicted
        class (the authors' code).
    combine : {"geomean", "product"}
        Combination of NormGrad layer maps (text: geometric mean; code: product).
    tau : float
        Pointing Game tolerance in pixels of the scoring frame (paper: 15 at 600 or 224 px).
    tau_rule : str
        How ``tau`` was chosen, for the tables (given, or scaled from the paper's).
    pg_frame : {"input", "original"}
        Score at the model's input resolution (the authors' code) or map back to the
        native image (bilinear) and score against the native boxes.
    smooth_sigma : float
        Gaussian sigma of the smoothed maps (paper: 1.0).
    batch_size, num_workers : int
        Images per explanation batch; data loader processes.
    """

    target: TargetRule = "label"
    combine: Combine = "geomean"
    tau: float = 15.0
    tau_rule: str = "given"
    pg_frame: PgFrame = "input"
    smooth_sigma: float = 1.0
    batch_size: int = 8
    num_workers: int = 0

    def as_dict(self) -> dict[str, object]:
        """The settings as plain values, for the results' record of options."""
        return asdict(self)


@dataclass
class FigureCase:
    """One explained image kept for the saliency grid, at the input resolution."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    maps: dict[str, dict[str, np.ndarray]]
    hits: dict[str, dict[str, bool]]


@dataclass
class ModelEvaluation:
    """Classification scores on the whole test set and per-image saliency outcomes."""

    accuracy: float
    auc: float | None
    images_tested: int
    per_image: list[dict[str, object]] = field(default_factory=list)
    cases: list[FigureCase] = field(default_factory=list)

    def _outcomes(self, key: str) -> dict[str, dict[str, list]]:
        if not self.per_image:
            raise ValueError(
                "no test image has a box, so the Pointing Game is undefined; use a test set "
                "with annotated positives"
            )
        return {
            row.key: {
                s: [image["outcomes"][row.key][s][key] for image in self.per_image]
                for s in SMOOTHINGS
            }
            for row in ROWS
        }

    def pointing(self) -> dict[str, dict[str, float]]:
        """Pointing Game accuracy T / (T + F) per row and smoothing."""
        return {
            row: {s: pointing_accuracy(hits) for s, hits in by_smoothing.items()}
            for row, by_smoothing in self._outcomes("hit").items()
        }

    def objects(self) -> dict[str, dict[str, float]]:
        """Mean over images of the fraction of objects hit, per row and smoothing."""
        return {
            row: {s: float(np.mean(fractions)) for s, fractions in by_smoothing.items()}
            for row, by_smoothing in self._outcomes("objects_hit").items()
        }

    def blanks(self) -> dict[str, dict[str, int]]:
        """How many explained images got a blank (constant) map, per row and smoothing."""
        return {
            row: {s: int(sum(flags)) for s, flags in by_smoothing.items()}
            for row, by_smoothing in self._outcomes("blank").items()
        }

    def twin_pointing(self) -> dict[str, dict[str, float]] | None:
        """Pointing Game of the negative twins' maps against the positives' boxes, per row
        and smoothing; None when the data set has no twins."""
        if not self.per_image or "twin_hit" not in self.per_image[0]:
            return None
        return {
            row.key: {
                s: float(np.mean([image["twin_hit"][row.key][s] for image in self.per_image]))
                for s in SMOOTHINGS
            }
            for row in ROWS
        }


def row_maps(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: PointingSettings
) -> dict[str, torch.Tensor]:
    """Unsmoothed maps [B, H, W] in [0, 1] of every table row, two engine calls in all."""
    target = labels if settings.target == "label" else None
    combined = explain_many(
        model, images, _COMBINED_CALL, layers="combined", target=target, combine=settings.combine
    )
    single = explain_many(
        model, images, _SINGLE_CALL, layers="single", target=target, combine=settings.combine
    )
    return {row.key: (single if row.layers == "single" else combined)[row.method] for row in ROWS}


def _display_grey(image: torch.Tensor) -> np.ndarray:
    """The grey image in [0, 1] behind a normalised model input [3, H, W]."""
    return (image[0].float() * IMAGENET_STD[0] + IMAGENET_MEAN[0]).clamp(0, 1).cpu().numpy()


def _score(
    maps: dict[str, dict[str, torch.Tensor]], boxes: torch.Tensor, tau: float
) -> dict[str, dict[str, dict[str, object]]]:
    """Hit, all-objects fraction, peak and blankness of every map; a blank map misses."""
    outcomes: dict[str, dict[str, dict[str, object]]] = {}
    for key, by_smoothing in maps.items():
        outcomes[key] = {}
        for smoothing, saliency in by_smoothing.items():
            values = saliency.cpu().numpy()
            blank = bool(values.max() <= values.min())
            outcomes[key][smoothing] = {
                "hit": False if blank else pointing_game(values, boxes, tau),
                "objects_hit": 0.0 if blank else objects_hit_fraction(values, boxes, tau),
                "peak": list(first_maximum(values)),
                "blank": blank,
            }
    return outcomes


def _in_frame(
    saliency: torch.Tensor, native_size: tuple[int, int], settings: PointingSettings
) -> torch.Tensor:
    """A map at the input size in the scoring frame: as it is, or upsampled to the native
    image (``pg_frame="original"``)."""
    if settings.pg_frame == "original":
        return upsample(saliency[None], native_size)[0]
    return saliency


def _frame_boxes(batch: ImageBatch, i: int, settings: PointingSettings) -> torch.Tensor:
    """Image ``i``'s boxes in the scoring frame."""
    return batch["boxes"][i] if settings.pg_frame == "input" else batch["native_boxes"][i]


def _twin_hits(
    model: nn.Module,
    twins: Dataset[ImageItem],
    positives: list[tuple[int, torch.Tensor, tuple[int, int]]],
    settings: PointingSettings,
    device: torch.device,
) -> list[dict[str, dict[str, bool]]]:
    """Per positive ``(index, boxes, native size)``: whether each row's map of its negative
    twin (the same image without the target, explained for class 1), in the scoring
    frame, hits the positive's boxes (in that frame)."""
    items = [twins[index] for index, _, _ in positives]
    images = torch.stack([item["image"] for item in items]).to(device)
    ones = torch.ones(len(items), dtype=torch.long, device=device)
    maps = row_maps(model, images, ones, replace(settings, target="label"))
    smoothed = {k: finish(v, settings.smooth_sigma) for k, v in maps.items()}
    hits = []
    for j, (_, boxes, native_size) in enumerate(positives):
        by_row = {}
        for key in maps:
            by_row[key] = {}
            for smoothing, at_input in (
                ("unsmoothed", maps[key][j]),
                ("smoothed", smoothed[key][j]),
            ):
                values = _in_frame(at_input, native_size, settings).cpu().numpy()
                blank = values.max() <= values.min()
                by_row[key][smoothing] = not blank and bool(
                    pointing_game(values, boxes, settings.tau)
                )
        hits.append(by_row)
    return hits


def _explain_batch(
    model: nn.Module,
    batch: ImageBatch,
    chosen: list[int],
    settings: PointingSettings,
    device: torch.device,
) -> list[tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict[str, torch.Tensor]]]]:
    """Per chosen image: maps at the input size, and maps in the scoring frame."""
    index = torch.tensor(chosen)
    images = batch["image"][index].to(device)
    maps = row_maps(model, images, batch["label"][index].to(device), settings)
    by_smoothing = {
        "unsmoothed": maps,
        "smoothed": {k: finish(v, settings.smooth_sigma) for k, v in maps.items()},
    }
    results = []
    for j, i in enumerate(chosen):
        at_input = {k: {s: by_smoothing[s][k][j] for s in SMOOTHINGS} for k in maps}
        size = tuple(batch["native_size"][i])
        framed = {
            k: {s: _in_frame(v, size, settings) for s, v in per.items()}
            for k, per in at_input.items()
        }
        results.append((at_input, framed))
    return results


def evaluate_model(
    model: nn.Module,
    dataset: Dataset[ImageItem],
    settings: PointingSettings,
    *,
    device: torch.device,
    keep_cases: int = 0,
    progress: bool = False,
    description: str = "explain",
    twins: Dataset[ImageItem] | None = None,
) -> ModelEvaluation:
    """Classify every test image and score every row's maps on those with boxes.

    Parameters
    ----------
    model:
        A classifier built by :func:`iqgate.nets.build` (it carries its layer presets).
    dataset:
        Items as :class:`iqgate.data.object_cxr.ImageItem`; images without boxes are
        classified (accuracy, AUC) but not explained: the Pointing Game skips them.
    settings:
        Target, combination, tolerance, scoring frame, smoothing.
    keep_cases:
        How many of the first explained images to keep, with their maps, for figures.
    twins:
        The negative twin of every test image (same index, target not drawn), when the
        data has them (phantoms): each positive's twin is explained for class 1 and
        scored against the positive's boxes (``"twin_hit"`` of each image record).

    Returns
    -------
    ModelEvaluation
        Accuracy (class 1 when its probability is at least 0.5), AUC (None with one
        class in the test set), and one record per explained image.
    """
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=False,
        num_workers=settings.num_workers,
        collate_fn=collate_samples,
    )
    model = model.to(device).eval()
    labels: list[int] = []
    probabilities: list[float] = []
    evaluation = ModelEvaluation(accuracy=math.nan, auc=None, images_tested=0)
    for batch in tqdm(loader, desc=description, disable=not progress, leave=False):
        with torch.no_grad():
            logits = model(batch["image"].to(device)).float().cpu()
        batch_probabilities = torch.softmax(logits, 1)[:, 1]
        predicted = logits.argmax(1)  # the class the engine explains with target=None
        offset = len(labels)
        labels += batch["label"].tolist()
        probabilities += batch_probabilities.tolist()
        chosen = [i for i, boxes in enumerate(batch["boxes"]) if len(boxes)]
        if not chosen:
            continue
        explained = _explain_batch(model, batch, chosen, settings, device)
        twin_hits = (
            _twin_hits(
                model,
                twins,
                [
                    (offset + i, _frame_boxes(batch, i, settings), tuple(batch["native_size"][i]))
                    for i in chosen
                ],
                settings,
                device,
            )
            if twins is not None
            else [None] * len(chosen)
        )
        for i, (at_input, framed), twin_hit in zip(chosen, explained, twin_hits, strict=True):
            boxes = _frame_boxes(batch, i, settings)
            outcomes = _score(framed, boxes, settings.tau)
            label = int(batch["label"][i])
            evaluation.per_image.append(
                {
                    "index": offset + i,
                    "name": batch["name"][i],
                    "label": label,
                    "probability": round(float(batch_probabilities[i]), 6),
                    "predicted": int(predicted[i]),
                    "target": label if settings.target == "label" else int(predicted[i]),
                    "objects": len(boxes),
                    "outcomes": outcomes,
                    **({"twin_hit": twin_hit} if twin_hit is not None else {}),
                }
            )
            if len(evaluation.cases) < keep_cases:
                evaluation.cases.append(
                    FigureCase(
                        name=batch["name"][i],
                        image=_display_grey(batch["image"][i]),
                        boxes=batch["boxes"][i].numpy(),
                        maps={
                            s: {k: v[s].cpu().numpy() for k, v in at_input.items()}
                            for s in SMOOTHINGS
                        },
                        hits={
                            s: {
                                k: bool(pointing_game(v[s], batch["boxes"][i], settings.tau))
                                for k, v in at_input.items()
                            }
                            for s in SMOOTHINGS
                        },
                    )
                )
    label_array, probability_array = np.array(labels), np.array(probabilities)
    auc = roc_auc(label_array, probability_array)
    evaluation.accuracy = scores_at(label_array, probability_array, 0.5).accuracy
    evaluation.auc = auc if math.isfinite(auc) else None
    evaluation.images_tested = len(labels)
    return evaluation


def pointer_baselines(dataset: Dataset[ImageItem], tau: float) -> dict[str, dict[str, float]]:
    """The content-free pointers of :mod:`iqgate.study.baselines` on the test images with
    boxes, at the input resolution (what any saliency row is compared with)."""
    items = [dataset[i] for i in range(len(dataset))]  # type: ignore[arg-type]
    chosen = [item for item in items if len(item["boxes"])]
    return score_pointers(
        [_display_grey(item["image"]) for item in chosen],
        [item["boxes"].numpy() for item in chosen],
        tau,
    )
