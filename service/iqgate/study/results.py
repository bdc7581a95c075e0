"""The layout of the benchmark's ``results.json``: per-model records and their aggregates.

``results.json`` holds

- ``options``: every setting of the run (data, architectures, trials, target,
  combine, tau, scoring frame, smoothing, training hyper-parameters, seeds, command);
- ``models``: one record per evaluated model (condition, architecture, trial, where
  it came from, accuracy, AUC, Pointing Game and all-objects score per row and
  smoothing, blank maps per row and smoothing, the negative twins' Pointing Game
  (phantoms; else null), and ``per_image``: every explained image's outcome per row);
- ``aggregates``: ``pointing`` and ``objects`` as
  ``[condition][arch][row][smoothing] -> {mean, std, n, values}`` over trials,
  ``twin_pointing`` likewise (phantoms only), ``blank_maps`` as
  ``[condition][arch][row][smoothing] -> [count per trial]``, ``images_explained`` as
  ``[condition][arch]``, ``dom`` as ``[row][smoothing]`` (two architectures only) and
  ``classification`` as ``[arch] -> {trials, accuracy, auc}`` (Table 6, repeated models);
- ``baselines``: per input size, the content-free pointers on the same test images
  (:func:`iqgate.study.evaluation.pointer_baselines`);
- ``not_run``: conditions that were skipped and why (SR without ImageNet weights).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from iqgate.study.dom import difference_of_means, summarise
from iqgate.study.evaluation import SMOOTHINGS, ModelEvaluation
from iqgate.study.paper_numbers import ROW_KEYS
from iqgate.study.randomisation import CONDITIONS, Condition

Record = dict[str, object]


def model_record(
    condition: Condition,
    arch: str,
    trial: int,
    source: Mapping[str, object],
    evaluation: ModelEvaluation,
) -> Record:
    """One model's entry of ``results["models"]``."""
    return {
        "condition": condition,
        "arch": arch,
        "trial": trial,
        "source": dict(source),
        "accuracy": evaluation.accuracy,
        "auc": evaluation.auc,
        "images_tested": evaluation.images_tested,
        "images_explained": len(evaluation.per_image),
        "pointing": evaluation.pointing(),
        "objects": evaluation.objects(),
        "blank_maps": evaluation.blanks(),
        "twin_pointing": evaluation.twin_pointing(),
        "per_image": evaluation.per_image,
    }


def _summaries(group: Sequence[Mapping], score: str) -> dict[str, dict[str, dict[str, object]]]:
    return {
        row: {s: summarise([m[score][row][s] for m in group]).as_dict() for s in SMOOTHINGS}
        for row in ROW_KEYS
    }


def aggregate(models: Sequence[Mapping], archs: Sequence[str]) -> dict[str, object]:
    """Means and standard deviations over trials, DoM and Table 6 from model records."""

    def group(condition: str, arch: str) -> list[Mapping]:
        chosen = [m for m in models if m["condition"] == condition and m["arch"] == arch]
        return sorted(chosen, key=lambda m: m["trial"])

    groups = {(c, a): group(c, a) for c in CONDITIONS for a in archs}
    present = {key: found for key, found in groups.items() if found}
    result: dict[str, object] = {
        score: {
            c: {a: _summaries(present[(c, a)], score) for a in archs if (c, a) in present}
            for c in CONDITIONS
            if any((c, a) in present for a in archs)
        }
        for score in ("pointing", "objects")
    }
    result["blank_maps"] = {
        c: {
            a: {
                row: {s: [m["blank_maps"][row][s] for m in present[(c, a)]] for s in SMOOTHINGS}
                for row in ROW_KEYS
            }
            for a in archs
            if (c, a) in present
        }
        for c in CONDITIONS
        if any((c, a) in present for a in archs)
    }
    result["images_explained"] = {
        c: {a: present[(c, a)][0]["images_explained"] for a in archs if (c, a) in present}
        for c in CONDITIONS
        if any((c, a) in present for a in archs)
    }
    result["twin_pointing"] = {
        c: {
            a: _summaries(present[(c, a)], "twin_pointing")
            for a in archs
            if (c, a) in present and present[(c, a)][0].get("twin_pointing") is not None
        }
        for c in CONDITIONS
        if any((c, a) in present for a in archs)
    }
    repeated = [groups[("repeated", a)] for a in archs]
    if len(archs) == 2 and all(repeated):
        result["dom"] = {
            row: {
                s: difference_of_means(*([m["pointing"][row][s] for m in g] for g in repeated))
                for s in SMOOTHINGS
            }
            for row in ROW_KEYS
        }
    result["classification"] = {
        arch: {
            "trials": [
                {"trial": m["trial"], "accuracy": m["accuracy"], "auc": m["auc"]} for m in trained
            ],
            "accuracy": summarise([m["accuracy"] for m in trained]).as_dict(),
            "auc": (
                summarise([m["auc"] for m in trained]).as_dict()
                if all(m["auc"] is not None for m in trained)
                else None
            ),
        }
        for arch, trained in zip(archs, repeated, strict=True)
        if trained
    }
    return result


def write_json(payload: Mapping[str, object], path: str | Path) -> Path:
    """Write ``payload`` as indented JSON, atomically (a temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> dict[str, object]:
    """Read a ``results.json``."""
    with Path(path).open() as handle:
        return json.load(handle)
