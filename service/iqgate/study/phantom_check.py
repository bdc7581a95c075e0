"""Can a content-free shortcut solve the phantoms? Global statistics and pointers, measured.

Renders fresh phantoms as a model sees them at the paper's input size (600 px CXR,
224 px CMR), then reports the global-statistics AUCs
(:mod:`iqgate.study.global_statistics`) and the Pointing Game of every content-free
pointer (:mod:`iqgate.study.baselines`) on the positives, beside their uniform chance.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import numpy as np

from iqgate.data.phantom_dataset import render_input
from iqgate.imaging import scale_boxes
from iqgate.study.baselines import score_pointers
from iqgate.study.global_statistics import global_statistics_report
from iqgate.study.paper_numbers import PAPER_INPUT_SIDES, PaperDataset, scaled_tau

TASK_DATASETS: dict[str, PaperDataset] = {"cxr": "object-cxr", "cmr": "lvot"}
PAPER_INPUT_SIDE = {task: PAPER_INPUT_SIDES[dataset] for task, dataset in TASK_DATASETS.items()}
"""The paper's model input side per phantom task (CXR 600 px, CMR 224 px)."""


def paper_tau(size: int, task: str) -> float:
    """``tau`` for an input of ``size`` pixels: 15 px scaled from the paper's input side."""
    return scaled_tau(TASK_DATASETS[task], size)


@dataclass(frozen=True)
class PhantomInputs:
    """Phantoms as model inputs: grey [N, S, S] in [0, 1], labels, boxes in the input frame."""

    images: np.ndarray
    labels: np.ndarray
    boxes: list[np.ndarray]


def phantom_inputs(task: str, n: int, seed: int, size: int, processes: int = 1) -> PhantomInputs:
    """``n`` fresh phantoms (half positive) of ``task`` at ``size`` pixels."""
    jobs = [(task, n, seed, 0.5, size, index) for index in range(n)]
    if processes > 1:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            rendered = pool.map(render_input, jobs, chunksize=4)
    else:
        rendered = [render_input(job) for job in jobs]
    return PhantomInputs(
        images=np.stack([grey.astype(np.float32).reshape(size, size) for grey, *_ in rendered]),
        labels=np.array([label for _, label, *_ in rendered]),
        boxes=[
            scale_boxes(np.asarray(boxes).reshape(-1, 4), native, size).numpy().astype(np.int64)
            for _, _, boxes, _, native, _ in rendered
        ],
    )


def pointer_scores(inputs: PhantomInputs, tau: float) -> dict[str, float]:
    """Pointing Game of each content-free pointer on the positives, and ``"uniform chance"``."""
    scores = score_pointers(list(inputs.images), inputs.boxes, tau)
    return {name: float(score["pg"]) for name, score in scores.items()}


def check_phantoms(task: str, n: int, seed: int, processes: int = 1) -> dict[str, dict[str, float]]:
    """Global-statistics AUCs and pointer scores of ``n`` fresh phantoms at the paper's size."""
    size = PAPER_INPUT_SIDE[task]
    inputs = phantom_inputs(task, n, seed, size, processes)
    return {
        "global statistics AUC": global_statistics_report(inputs.images, inputs.labels),
        "pointers PG": pointer_scores(inputs, paper_tau(size, task)),
    }
