#!/usr/bin/env python3
"""Which kinds of object a model package misses, on fresh phantoms (:mod:`iqgate.study.kind_rates`).

Renders the phantoms, predicts with the package at its decision threshold and prints
the flag rate of the positives by object kind (with 95 % Wilson intervals), the false
positives and the AUC. The default seed is the test split of ``tools/train.py
--seed 0``, so ``--n`` equal to its ``--test-size`` scores the images of the card's
test metrics.

Example::

    tools/kind_rates.py --package models/cxr-foreign-object --data phantoms-cxr --n 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.data.sources import PHANTOM_TASKS, SPLIT_SEED_OFFSETS
from iqgate.packages import load_package
from iqgate.study.kind_rates import kind_rate_table
from iqgate.study.packaging import split_metrics
from iqgate.study.train import predict_probabilities


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--package", type=Path, required=True, help="model package folder")
    parser.add_argument("--data", choices=sorted(PHANTOM_TASKS), required=True)
    parser.add_argument("--n", type=int, default=300, help="phantoms, half of them positive")
    parser.add_argument(
        "--seed",
        type=int,
        default=SPLIT_SEED_OFFSETS["test"],
        help="phantom seed (default: the test split of tools/train.py --seed 0)",
    )
    parser.add_argument("--cache-dir", type=Path, help="keep rendered phantoms here between runs")
    parser.add_argument("--workers", type=int, default=0, help="rendering processes")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n needs at least 2 phantoms, one of each class")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, card = load_package(args.package)
    task = PHANTOM_TASKS[args.data]
    images = PhantomDataset(task, args.n, seed=args.seed, size=card.input_size)
    images.materialise(args.workers, progress=True, cache_dir=args.cache_dir)
    labels, probabilities = predict_probabilities(
        model, images, device=torch.device("cpu"), progress=True
    )
    metrics = split_metrics(labels, probabilities, card.decision_threshold, images.object_kinds())
    rates = metrics.by_kind or []
    negatives = labels == 0
    false_positives = int((probabilities[negatives] >= card.decision_threshold).sum())
    print(
        f"{card.name} {card.version} on {args.n} fresh {task} phantoms (seed {args.seed}), "
        f"threshold {card.decision_threshold:.3f}: AUC {metrics.auc:.3f}, "
        f"false positives {false_positives} of {int(negatives.sum())}\n"
    )
    print(kind_rate_table(rates))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "package": f"{card.name} {card.version}",
                    "n": args.n,
                    "seed": args.seed,
                    "auc": metrics.auc,
                    "false_positives": false_positives,
                    "negatives": int(negatives.sum()),
                    "kinds": [rate.model_dump() for rate in rates],
                    "sensitivity": metrics.sensitivity,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
