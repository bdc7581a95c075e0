#!/usr/bin/env python3
"""Write synthetic phantoms as an Object-CXR-style split or as DICOM files with a manifest.

Examples::

    tools/phantoms.py --task cxr --n 800 --seed 0 --out runs/cxr --format object-cxr --split train
    tools/phantoms.py --task cxr --n 100 --seed 1 --out runs/cxr --format object-cxr --split dev
    tools/phantoms.py --task cmr --n 200 --seed 0 --out runs/cmr-dicom --format dicom
    tools/phantoms.py --task cxr --n 8 --seed 0 --out runs/rle --format dicom \\
        --transfer-syntax 1.2.840.10008.1.2.5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from iqgate.data.phantoms import Task, generate, write_dicom, write_object_cxr
from iqgate.data.phantoms.dicom_encoding import LOSSLESS_TRANSFER_SYNTAXES

FORMATS = ("object-cxr", "dicom")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=[t.value for t in Task], required=True)
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="object-cxr")
    parser.add_argument("--split", default="train", help="object-cxr split name (default train)")
    parser.add_argument("--positive-fraction", type=float, default=0.5)
    parser.add_argument(
        "--transfer-syntax",
        action="append",
        dest="transfer_syntaxes",
        metavar="UID",
        help="dicom: a syntax to cycle through (repeat the option); default: "
        + ", ".join(f"{uid} ({uid.name})" for uid in LOSSLESS_TRANSFER_SYNTAXES),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        samples = generate(
            args.task, args.n, seed=args.seed, positive_fraction=args.positive_fraction
        )
    except ValueError as error:
        print(f"phantoms: {error}", file=sys.stderr)
        return 2
    progress = tqdm(samples, desc=f"{args.task} phantoms", unit="image")
    if args.format == "object-cxr":
        csv_path = write_object_cxr(progress, args.out, args.split)
        print(f"wrote {len(samples)} images to {args.out / args.split} and {csv_path}")
    else:
        paths = write_dicom(progress, args.out, transfer_syntaxes=args.transfer_syntaxes)
        print(f"wrote {len(paths)} DICOM files and manifest.csv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
