"""Pointing Game of the saliency peaks in the node's own JSON reports, on phantoms.

The node (``iqgate assess`` or the DICOM service) writes one report per image with the
peak of the saliency map in source-image pixels. Scored here at the paper's input size
(the peak and the boxes mapped to a square of 600 px for CXR, 224 px for CMR) with the
paper's tau of 15 px, beside the content-free pointers on the same images.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom

from iqgate.data.phantoms import Sample
from iqgate.data.phantoms.dicom_encoding import display_window
from iqgate.imaging import resize_square, scale_boxes, window_to_unit
from iqgate.study.baselines import score_pointers
from iqgate.study.paper_numbers import PAPER_TAU_PX
from iqgate.study.phantom_check import PAPER_INPUT_SIDE
from iqgate.study.pointing import pointing_game


def report_peaks(out_dir: Path) -> dict[str, tuple[float, float] | None]:
    """``peak_xy`` of every report under ``out_dir``, by source SOP Instance UID."""
    peaks: dict[str, tuple[float, float] | None] = {}
    for path in sorted(out_dir.rglob("*.report.json")):
        for report in json.loads(path.read_text()):
            saliency = report.get("saliency") or {}
            peak = saliency.get("peak_xy")
            peaks[report["source"]["sop_instance_uid"]] = tuple(peak) if peak else None
    return peaks


def score_report_peaks(
    samples: Sequence[Sample], files: Sequence[Path], out_dir: Path
) -> dict[str, dict[str, float]]:
    """PG of the report peaks on the positives, and the content-free pointers beside it.

    Parameters
    ----------
    samples, files : sequences
        The phantoms and the DICOM files they were written to (same order).
    out_dir : Path
        Where ``iqgate assess`` wrote its reports.

    Returns
    -------
    dict
        ``{"report peaks": {"hits", "images", "pg"}, pointer: {...}, "uniform chance":
        {"pg"}}``; a positive without a report or without a peak is a miss.
    """
    peaks = report_peaks(out_dir)
    side = PAPER_INPUT_SIDE[samples[0].task.value]
    hits, greys, box_sets = 0, [], []
    for sample, path in zip(samples, files, strict=True):
        if not sample.boxes:
            continue
        height, width = sample.image.shape
        boxes = scale_boxes(np.asarray(sample.boxes), (height, width), side).numpy()
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        peak = peaks.get(uid)
        if peak is not None:
            x, y = peak
            point = np.zeros((side, side), dtype=np.float32)
            row = int(np.clip(np.floor((y + 0.5) * side / height), 0, side - 1))
            column = int(np.clip(np.floor((x + 0.5) * side / width), 0, side - 1))
            point[row, column] = 1.0
            hits += bool(pointing_game(point, boxes, PAPER_TAU_PX))
        centre, window = display_window(sample.image)
        unit = window_to_unit(sample.image.astype(np.float32), centre, window)
        greys.append(resize_square(unit[None], side)[0, 0].numpy())
        box_sets.append(boxes)
    scores = score_pointers(greys, box_sets, PAPER_TAU_PX)
    n = len(box_sets)
    scores["report peaks"] = {"hits": hits, "images": n, "pg": hits / n if n else 0.0}
    return scores
