#!/usr/bin/env python3
"""Saliency engine speed: images/s of every method beside forward+backward and the peers.

Examples::

    tools/benchmark_speed.py                        # CPU preset (about 10 min on 2 cores)
    tools/benchmark_speed.py --preset anchors --device cuda   # shared/ANCHORS.md cases
    tools/benchmark_speed.py --arch resnet34 --size 600 --batch 16 --device cuda --bf16
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from iqgate.study.speed import SpeedCase, check_targets, measure_case, render_table

PRESETS: dict[str, list[tuple[str, int, int]]] = {
    "cpu": [
        ("resnet18", 224, 8),
        ("resnet34", 224, 8),
        ("resnet50", 224, 8),
        ("efficientnet_b0", 224, 8),
    ],
    "anchors": [
        ("resnet34", 600, 16),
        ("resnet50", 224, 64),
        ("efficientnet_b0", 224, 64),
        ("efficientnet_b0", 600, 16),
    ],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--arch", help="measure one architecture instead of a preset")
    parser.add_argument("--size", type=int, default=224, help="input side in px (with --arch)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (with --arch)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--bf16", action="store_true", help="also measure bf16 autocast + channels_last"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-peers", action="store_true", help="skip Captum and pytorch-grad-cam")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [(args.arch, args.size, args.batch)] if args.arch else PRESETS[args.preset]
    cases = [SpeedCase(a, s, b, args.device) for a, s, b in shapes]
    if args.bf16:
        cases += [SpeedCase(a, s, b, args.device, bf16=True) for a, s, b in shapes]
    results = []
    for case in tqdm(cases, desc="cases", unit="case"):
        results += measure_case(
            case, warmup=args.warmup, repeats=args.repeats, peers=not args.no_peers
        )
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"\ndevice: {device_name}, torch {torch.__version__}, threads {torch.get_num_threads()}\n"
    )
    print(render_table(results))
    print()
    print("\n".join(check_targets(results)))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
