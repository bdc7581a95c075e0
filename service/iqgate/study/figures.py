"""PNG figures of a benchmark run: saliency grids (paper Figures 2 to 7) and a PG chart.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch), so it works on headless machines and in worker threads.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from iqgate.study.evaluation import FigureCase
from iqgate.study.paper_numbers import RANDOMISATION, ROWS, PaperDataset, paper_column
from iqgate.study.pointing import first_maximum
from iqgate.study.randomisation import CONDITION_TITLES, CONDITIONS

HIT_COLOUR, MISS_COLOUR, BOX_COLOUR = "lime", "red", "white"
PANEL_INCHES = 1.7


def _draw_boxes(axes: Axes, boxes: np.ndarray) -> None:
    """Inclusive pixel boxes (x1, y1, x2, y2) as outlines around their pixels."""
    for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
        axes.add_patch(
            Rectangle(
                (x1 - 0.5, y1 - 0.5),
                x2 - x1 + 1,
                y2 - y1 + 1,
                fill=False,
                edgecolor=BOX_COLOUR,
                linewidth=0.8,
            )
        )


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)
    return path


def saliency_grid(
    cases: Sequence[FigureCase], smoothing: str, path: str | Path, title: str
) -> Path:
    """One row per case: the image with its boxes, then every method's map.

    The first maximum of each map (the Pointing Game's point) is a cross, green for a
    hit and red for a miss at the input resolution.
    """
    if not cases:
        raise ValueError("saliency_grid needs at least one case")
    columns = 1 + len(ROWS)
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * len(cases) + 0.6))
    figure.suptitle(title, fontsize=9)
    grid = figure.subplots(len(cases), columns, squeeze=False)
    for r, case in enumerate(cases):
        image_axes = grid[r][0]
        image_axes.imshow(case.image, cmap="gray", vmin=0, vmax=1)
        _draw_boxes(image_axes, case.boxes)
        image_axes.set_ylabel(textwrap.fill(case.name, 18), fontsize=6)
        for c, row in enumerate(ROWS, start=1):
            axes = grid[r][c]
            saliency = case.maps[smoothing][row.key]
            axes.imshow(saliency, cmap="jet", vmin=0, vmax=1)
            _draw_boxes(axes, case.boxes)
            y, x = first_maximum(saliency)
            colour = HIT_COLOUR if case.hits[smoothing][row.key] else MISS_COLOUR
            axes.plot([x], [y], marker="x", color=colour, markersize=7, markeredgewidth=2)
    for c, name in enumerate(["image, boxes", *(row.label for row in ROWS)]):
        grid[0][c].set_title(textwrap.fill(name, 16), fontsize=7)
    for axes in grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    return _save(figure, path)


def pointing_chart(results: Mapping[str, object], path: str | Path) -> Path:
    """Bars of smoothed PG by method, one per condition and architecture (mean ± std).

    Black diamonds mark the paper's Repeated ResNet values for the compared data set.
    """
    pointing: Mapping = results["aggregates"]["pointing"]
    archs: list[str] = list(results["options"]["archs"])
    dataset: PaperDataset = results["options"]["compare_with"]
    series = [(c, a) for a in archs for c in CONDITIONS if a in pointing.get(c, {})]
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(ROWS))
    width = 0.8 / max(1, len(series))
    for i, (condition, arch) in enumerate(series):
        cells = [pointing[condition][arch][row.key]["smoothed"] for row in ROWS]
        axes.bar(
            positions - 0.4 + width * (i + 0.5),
            [c["mean"] for c in cells],
            width,
            yerr=[c["std"] for c in cells],
            capsize=2,
            label=f"{CONDITION_TITLES[condition]} {arch}",
        )
    if any(paper_column(a) == 0 for a in archs):
        paper = [RANDOMISATION[dataset][row.key]["repeated"][0] for row in ROWS]
        axes.plot(positions, paper, "kD", markersize=4, label="paper, Repeated ResNet")
    axes.set_xticks(positions, [textwrap.fill(row.label, 14) for row in ROWS], fontsize=7)
    axes.set_ylim(0, 1)
    axes.set_ylabel("Pointing Game accuracy (smoothed)")
    axes.set_title(f"Pointing Game by method and condition ({results['options']['data']})")
    figure.legend(loc="outside right upper", fontsize=7)
    return _save(figure, path)
