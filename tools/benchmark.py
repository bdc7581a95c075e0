#!/usr/bin/env python3
"""Re-run the paper's Pointing Game experiments (Tables 2 to 6) on any data set.

Writes results.json (every per-image outcome, aggregates, options), tables.md (the
paper's tables with its numbers beside ours) and PNG figures into --out. Models are
trained on the fly (cached and resumable under --cache) or given as packages.

Profiles: the paper's setting by default; --reduced runs the whole grid on phantoms
on 2 CPU cores in a few hours; --quick is a smoke test of a few minutes at most.
See docs/benchmark.md.

Examples:
  tools/benchmark.py --data phantoms-cxr --quick --out /tmp/bench
  tools/benchmark.py --data phantoms-cmr --reduced --out docs/results/phantoms-cmr
  tools/benchmark.py --data object-cxr:/data/object-cxr --device cuda \\
      --arch resnet34 efficientnet_b0 --weights r34-imagenet.pth eb0-imagenet.pth --out runs/ocxr
  tools/benchmark.py --data manifest:/data/lvot.csv --compare lvot --packages models/a models/b \\
      models/c --weights r50-imagenet.pth --out runs/lvot
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from iqgate.data.sources import PHANTOM_TASKS, PhantomSizes
from iqgate.packages import read_card
from iqgate.study.evaluation import PointingSettings
from iqgate.study.experiments import BenchmarkPlan, Profile, profile_defaults, run_benchmark
from iqgate.study.paper_numbers import PAPER_INPUT_SIDES, PaperDataset, scaled_tau
from iqgate.study.train import add_training_arguments

COMPARE_BY_DATA: dict[str, PaperDataset] = {
    "phantoms-cxr": "object-cxr",
    "phantoms-cmr": "lvot",
    "object-cxr": "object-cxr",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        required=True,
        help="phantoms-cxr | phantoms-cmr | object-cxr:PATH | manifest:PATH",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("runs/benchmark-cache"),
        help="training checkpoints (resumable); default runs/benchmark-cache",
    )
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: resnet18, 64 px, 1 epoch, 64/32/32 phantoms, 2 trials",
    )
    scale.add_argument(
        "--reduced",
        action="store_true",
        help="resnet18 + efficientnet_b0 at the demo presets, 600/100/200 phantoms",
    )
    parser.add_argument(
        "--compare",
        choices=["object-cxr", "lvot"],
        help="the paper's columns to compare with (default: from --data)",
    )
    parser.add_argument("--arch", nargs="+", help="one architecture, or two for the DoM")
    parser.add_argument(
        "--packages",
        nargs="+",
        type=Path,
        help="trained model packages: the Repeated trials instead of training",
    )
    parser.add_argument(
        "--weights",
        nargs="+",
        help="local ImageNet checkpoints, one per architecture in --arch order "
        "(with --packages: the order their architectures first appear); used "
        "for SR and as the starting point of training",
    )
    parser.add_argument(
        "--target",
        choices=["label", "predicted"],
        default="label",
        help="class explained: label (paper text, default) or predicted (code)",
    )
    parser.add_argument(
        "--combine",
        choices=["geomean", "product"],
        default="geomean",
        help="NormGrad layer combination: geomean (text, default) or product",
    )
    parser.add_argument(
        "--tau",
        type=float,
        help="Pointing Game tolerance, px (default: 15 px scaled from the paper's input side, "
        "600 px Object-CXR / 224 px LVOT, to the model's input size)",
    )
    parser.add_argument(
        "--pg-frame",
        choices=["input", "original"],
        default="input",
        help="score at the model input (default) or at the native image size",
    )
    parser.add_argument(
        "--smooth-sigma",
        type=float,
        default=1.0,
        help="Gaussian sigma of the smoothed maps (paper: 1.0)",
    )
    parser.add_argument("--trials", type=int, help="trials per condition (paper: 3)")
    parser.add_argument("--seed", type=int, help="base seed of the trials")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="training batch size")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--train-size", type=int, help="phantoms: training images")
    parser.add_argument("--val-size", type=int, help="phantoms: validation images")
    parser.add_argument("--test-size", type=int, help="phantoms: test images")
    parser.add_argument("--explain-batch", type=int, default=8, help="images per explanation")
    parser.add_argument("--figure-cases", type=int, default=3, help="images in saliency grids")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    add_training_arguments(parser)
    parser.add_argument("--workers", type=int, default=0, help="data loader/rendering processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def compare_with(args: argparse.Namespace) -> PaperDataset:
    """The paper's data set to compare with: given, or implied by --data."""
    implied = COMPARE_BY_DATA.get(args.data.partition(":")[0])
    if args.compare is None and implied is None:
        raise ValueError(f"--compare object-cxr|lvot is needed for --data {args.data}")
    return args.compare or implied


def build_plan(args: argparse.Namespace) -> BenchmarkPlan:
    """The run the command line asks for, on top of the chosen profile's defaults."""
    profile: Profile = "quick" if args.quick else "reduced" if args.reduced else "paper"
    dataset = compare_with(args)
    defaults = profile_defaults(profile, dataset)
    packages = tuple(str(p) for p in args.packages or ())
    if packages and args.arch:
        raise ValueError("--arch and --packages exclude each other: packages name their own")
    archs = (
        tuple(dict.fromkeys(read_card(p).architecture for p in packages))
        if packages
        else tuple(args.arch or defaults.archs)
    )
    sizes = defaults.phantom_sizes
    input_size = (
        read_card(packages[0]).input_size
        if packages
        else args.input_size or defaults.train.input_size
    )
    tau = args.tau or scaled_tau(dataset, input_size)
    tau_rule = (
        "given"
        if args.tau
        else f"15 px at the paper's {PAPER_INPUT_SIDES[dataset]} px, scaled to {input_size} px"
    )
    return BenchmarkPlan(
        data=args.data,
        compare_with=dataset,
        archs=archs,
        train=defaults.train.with_overrides(
            input_size=args.input_size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            num_workers=args.workers,
        ),
        phantom_sizes=PhantomSizes(
            args.train_size or sizes.train,
            args.val_size or sizes.val,
            args.test_size or sizes.test,
        ),
        trials=args.trials or defaults.trials,
        settings=PointingSettings(
            target=args.target,
            combine=args.combine,
            tau=tau,
            tau_rule=tau_rule,
            pg_frame=args.pg_frame,
            smooth_sigma=args.smooth_sigma,
            batch_size=args.explain_batch,
            num_workers=args.workers,
        ),
        weights=tuple(args.weights or ()),
        packages=packages,
        profile=profile,
        figure_cases=args.figure_cases,
        cpu_bf16=args.cpu_bf16,
        augment=args.augment,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    try:
        plan = build_plan(args)
    except ValueError as exc:
        raise SystemExit(f"benchmark: {exc}") from exc
    if args.data not in PHANTOM_TASKS and (args.train_size or args.val_size or args.test_size):
        raise SystemExit("benchmark: --train/val/test-size apply to phantoms only")
    command = shlex.join(["tools/benchmark.py", *(argv if argv is not None else sys.argv[1:])])
    results = run_benchmark(
        plan,
        args.out,
        args.cache,
        device=device,
        progress=not args.quiet,
        command=command,
    )
    print(
        f"wrote {args.out}/results.json, tables.md and figures "
        f"({results['environment']['minutes']} min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
