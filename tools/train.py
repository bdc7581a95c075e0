#!/usr/bin/env python3
"""Train a classifier and write a model package (model.json + weights.safetensors).

Presets (hyper-parameters; every one can be overridden by its flag):
  object-cxr   the paper's Object-CXR setting: resnet34, 600 px, 20 epochs, batch 16,
               SGD lr 0.005 divided by 10 every 5 epochs, momentum 0.9, weight decay 5e-4
  lvot         the paper's LVOT setting: resnet50, 224 px, 60 epochs, batch 64,
               SGD lr 2e-4 (no schedule), momentum 0.9, weight decay 5e-4
  demo-cxr     resnet18, 256 px, from scratch on CXR phantoms (the shipped demo model is
               this, fine-tuned at 384 px with --input-size 384 --weights; see its card)
  demo-cmr     the shipped demo model: resnet18, 128 px, from scratch on CMR phantoms

Data: phantoms-cxr | phantoms-cmr | object-cxr:PATH | manifest:PATH (see iqgate.data.sources).

Examples:
  tools/train.py --preset object-cxr --data object-cxr:/data/object-cxr --weights resnet34-imagenet.pth \
      --name cxr-foreign-object --out models/cxr-foreign-object
  torchrun --nproc-per-node 4 tools/train.py --preset lvot --data manifest:/data/lvot.csv --task cmr ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from iqgate.data.sources import PHANTOM_TASKS, PhantomSizes, open_data
from iqgate.data.transforms import AUGMENTATIONS
from iqgate.packages import export_onnx, save_package
from iqgate.study.packaging import build_card, evaluate_for_card
from iqgate.study.train import TRAIN_PRESETS, add_training_arguments, init_distributed, train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), required=True)
    parser.add_argument(
        "--data",
        required=True,
        help="phantoms-cxr | phantoms-cmr | object-cxr:PATH | manifest:PATH",
    )
    parser.add_argument(
        "--task", choices=["cxr", "cmr"], help="task of the data (default: from --data)"
    )
    parser.add_argument("--name", required=True, help="package name, e.g. cxr-foreign-object")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--out", type=Path, required=True, help="package folder to write")
    parser.add_argument(
        "--work-dir", type=Path, help="checkpoints (resumable); default runs/<name>"
    )
    parser.add_argument("--arch")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument(
        "--lr-step-epochs", type=int, help="divide the learning rate by 10 every this many epochs"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--weights", help="local ImageNet checkpoint of the architecture (nothing is downloaded)"
    )
    parser.add_argument("--select-by", choices=["accuracy", "auc"])
    parser.add_argument(
        "--target-sensitivity", type=float, help="threshold rule instead of Youden's J"
    )
    parser.add_argument("--train-size", type=int, default=1000, help="phantoms: training images")
    parser.add_argument("--val-size", type=int, default=200, help="phantoms: validation images")
    parser.add_argument(
        "--test-size", type=int, default=400, help="phantoms: test images (fresh seed)"
    )
    parser.add_argument("--cache-dir", type=Path, help="keep rendered phantoms here between runs")
    parser.add_argument(
        "--twin-pairs",
        action="store_true",
        help="phantoms: train on --train-size / 2 phantoms each with and without its target, "
        "a phantom and its twin in one batch (validation and test unchanged)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--workers", type=int, default=0, help="data loader and rendering processes"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    add_training_arguments(parser)
    parser.add_argument("--half", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument(
        "--onnx", action="store_true", help="also export model.onnx into the package"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    config = TRAIN_PRESETS[args.preset].with_overrides(
        arch=args.arch,
        input_size=args.input_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_step_epochs=args.lr_step_epochs,
        seed=args.seed,
        weights=args.weights,
        select_by=args.select_by,
        num_workers=args.workers,
        twin_batches=args.twin_pairs or None,
    )
    task = args.task or PHANTOM_TASKS.get(args.data)
    if task is None:
        raise SystemExit("--task cxr|cmr is needed for this --data")
    started = time.time()
    data = open_data(
        args.data,
        config.input_size,
        seed=config.seed,
        augment=AUGMENTATIONS[args.augment](),
        phantom_sizes=PhantomSizes(args.train_size, args.val_size, args.test_size),
        processes=args.workers,
        progress=True,
        cache_dir=args.cache_dir,
        twin_pairs=args.twin_pairs,
    )
    place = init_distributed(device)
    outcome = train(
        config,
        data.train,
        data.val,
        args.work_dir or Path("runs") / args.name,
        device=device,
        cpu_bf16=args.cpu_bf16,
    )
    if not place.is_main:
        return 0
    threshold, rule, metrics = evaluate_for_card(
        outcome.model,
        data.val,
        data.test,
        device,
        target_sensitivity=args.target_sensitivity,
        batch_size=config.batch_size,
        progress=True,
    )
    training = {
        "preset": args.preset,
        "config": asdict(config),
        "data": data.description,
        "best_epoch": outcome.best_epoch,
        "history": outcome.history_dicts(),
        "command": shlex.join(["tools/train.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": str(device),
        "cpu_bf16": args.cpu_bf16,
        "torch": torch.__version__,
        "minutes": round((outcome.earlier_seconds() + time.time() - started) / 60, 1),
    }
    card = build_card(
        name=args.name,
        version=args.version,
        task=task,
        architecture=config.arch,
        input_size=config.input_size,
        threshold=threshold,
        rule=rule,
        metrics=metrics,
        training=training,
        synthetic=args.data in PHANTOM_TASKS,
    )
    saved = save_package(args.out, outcome.model, card, half=args.half)
    if args.onnx:
        export_onnx(args.out)
    print(
        json.dumps(
            {
                "package": str(args.out),
                "threshold": saved.decision_threshold,
                "metrics": {k: v.model_dump() for k, v in saved.metrics.items()},
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
