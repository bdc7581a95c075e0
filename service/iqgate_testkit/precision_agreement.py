"""How far bf16 autocast keeps the node's verdicts and NormGrad peaks those of float32.

For every model package in ``--models``, ``--n`` fresh phantoms of the package's task
go through the node's own path (DICOM dataset -> :func:`iqgate.imaging.frames_from_dataset`
-> :func:`iqgate.node.pipeline.assess.assess_frames`, torch classifier, every image explained)
once in float32 and once under bfloat16 autocast, on the same inputs. Reported per
package: verdict agreement at the card's threshold, the largest and mean absolute
difference of the defect probability, the fraction of maps whose peak (argmax at the
model input) is the same pixel and lies within ``--tau`` pixels, and the Pearson
correlation of the maps (mean and smallest).

Examples::

    tools/precision_agreement.py --n 64 --device cpu     # CPU autocast (bf16 on the CPU)
    tools/precision_agreement.py --n 512 --device cuda   # on a GPU node
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydicom.uid import ExplicitVRLittleEndian

from iqgate.config import Settings
from iqgate.data.phantoms import generate
from iqgate.data.phantoms.dicom_writer import phantom_dataset
from iqgate.imaging import frames_from_dataset
from iqgate.node.pipeline.assess import ExplainPolicy, assess_frames
from iqgate.node.pipeline.build import choose_device
from iqgate.node.pipeline.routing import LoadedModel, ModelRegistry
from iqgate.study.packaging import TASKS

PHANTOM_TASKS = {profile.task: key for key, profile in TASKS.items()}
"""Phantom task of each model task (``cxr-foreign-object`` -> ``cxr``)."""

DEFAULT_SEED = 7_000_003
"""Phantoms no shipped model has seen (their training, validation and test sets use
seeds 0, 1000003 and 2000029)."""


@dataclass(frozen=True)
class PrecisionRun:
    """What one precision gives on a set of frames: defect probabilities and maps."""

    probabilities: np.ndarray
    maps: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Agreement:
    """bf16 against float32 on the same frames."""

    images: int
    verdict_agreement: float
    max_abs_probability_difference: float
    mean_abs_probability_difference: float
    peak_same_pixel: float
    peak_within_tau: float
    map_pearson_mean: float
    map_pearson_min: float


def peaks(maps: np.ndarray) -> np.ndarray:
    """The (row, column) of each map's largest value: [N, 2]."""
    flat = maps.reshape(maps.shape[0], -1).argmax(axis=1)
    return np.stack(np.unravel_index(flat, maps.shape[1:]), axis=1)


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of maps [N, H, W] (1.0 where both are constant)."""
    x = a.reshape(a.shape[0], -1).astype(np.float64)
    y = b.reshape(b.shape[0], -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    products = (x * y).sum(axis=1)
    same = np.all(x == y, axis=1)
    return np.where(same, 1.0, products / np.where(denominator > 0, denominator, 1.0))


def agreement(
    reference: PrecisionRun, candidate: PrecisionRun, threshold: float, tau: float
) -> Agreement:
    """How far ``candidate`` keeps the verdicts, peaks and maps of ``reference``."""
    flagged = reference.probabilities >= threshold
    difference = np.abs(candidate.probabilities - reference.probabilities)
    distance = np.linalg.norm(peaks(candidate.maps) - peaks(reference.maps), axis=1)
    correlation = pearson(reference.maps, candidate.maps)
    return Agreement(
        images=int(reference.probabilities.size),
        verdict_agreement=float(np.mean(flagged == (candidate.probabilities >= threshold))),
        max_abs_probability_difference=float(difference.max()),
        mean_abs_probability_difference=float(difference.mean()),
        peak_same_pixel=float(np.mean(distance == 0)),
        peak_within_tau=float(np.mean(distance <= tau)),
        map_pearson_mean=float(correlation.mean()),
        map_pearson_min=float(correlation.min()),
    )


def phantom_frames(task: str, n: int, seed: int) -> list[np.ndarray]:
    """``n`` phantoms as the node sees them: presentation values [H, W] of DICOM images."""
    return [
        frames_from_dataset(phantom_dataset(sample, ExplicitVRLittleEndian))[0]
        for sample in generate(task, n, seed=seed)
    ]


def run_precision(
    loaded: LoadedModel,
    frames: list[np.ndarray],
    policy: ExplainPolicy,
    device: torch.device,
    batch: int,
) -> PrecisionRun:
    """Assess every frame (each one explained) with the node's code, in batches."""
    started = time.perf_counter()
    assessed = [
        a
        for first in range(0, len(frames), batch)
        for a in assess_frames(loaded, frames[first : first + batch], policy, device)
    ]
    return PrecisionRun(
        probabilities=np.array([a.probability for a in assessed]),
        maps=np.stack([a.saliency for a in assessed if a.saliency is not None]),
        seconds=time.perf_counter() - started,
    )


def measure(
    loaded: LoadedModel, args: argparse.Namespace, device: torch.device
) -> dict[str, object]:
    """fp32 and bf16 on fresh phantoms of one package; the agreement and the timings."""
    frames = phantom_frames(PHANTOM_TASKS[loaded.card.task], args.n, args.seed)
    runs = {}
    precision: Literal["fp32", "bf16"]
    for precision in ("fp32", "bf16"):
        policy = ExplainPolicy(True, args.variant, args.layers, precision)
        run_precision(loaded, frames[: args.batch], policy, device, args.batch)  # warm-up
        runs[precision] = run_precision(loaded, frames, policy, device, args.batch)
    threshold = loaded.card.decision_threshold
    result = agreement(runs["fp32"], runs["bf16"], threshold, args.tau)
    return {
        "model": loaded.card.name,
        "version": loaded.card.version,
        "threshold": threshold,
        "flagged_fp32": int((runs["fp32"].probabilities >= threshold).sum()),
        "closest_to_threshold_fp32": float(np.abs(runs["fp32"].probabilities - threshold).min()),
        "seconds_fp32": round(runs["fp32"].seconds, 2),
        "seconds_bf16": round(runs["bf16"].seconds, 2),
        **asdict(result),
    }


def render_table(rows: list[dict[str, object]], tau: float) -> str:
    """A Markdown table of the agreement of each package."""
    header = (
        "| model | images | flagged (fp32) | closest to threshold | verdicts agree | max abs dP "
        f"| mean abs dP | peak same pixel | peak within {tau:g} px | map r mean | map r min "
        "| s fp32 | s bf16 |"
    )
    lines = [header, "|" + "---|" * 13]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['images']} | {r['flagged_fp32']} "
            f"| {r['closest_to_threshold_fp32']:.4f} "
            f"| {r['verdict_agreement']:.4f} | {r['max_abs_probability_difference']:.4f} "
            f"| {r['mean_abs_probability_difference']:.5f} | {r['peak_same_pixel']:.4f} "
            f"| {r['peak_within_tau']:.4f} | {r['map_pearson_mean']:.4f} "
            f"| {r['map_pearson_min']:.4f} | {r['seconds_fp32']} | {r['seconds_bf16']} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"), help="package folder")
    parser.add_argument("--n", type=int, default=64, help="phantoms per package")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tau", type=float, default=15.0, help="peak distance in pixels")
    parser.add_argument("--variant", default=defaults.normgrad_variant)
    parser.add_argument("--layers", default=defaults.normgrad_layers)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: as is)")
    parser.add_argument("--out", type=Path, default=Path("runs/precision-agreement.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    registry = ModelRegistry.from_directory(args.models, device, use_onnx=False)
    rows = [measure(loaded, args, device) for loaded in registry.models]
    print(
        f"bf16 autocast against float32 on {device.type} ({args.n} phantoms per package, "
        f"seed {args.seed}, normgrad-{args.variant} {args.layers})"
    )
    print(render_table(rows, args.tau))
    report = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "n": args.n,
        "seed": args.seed,
        "tau": args.tau,
        "method": f"normgrad-{args.variant} {args.layers}",
        "command": " ".join(sys.argv),
        "models": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
