#!/usr/bin/env python3
"""Export model packages to ONNX: writes model.onnx beside model.json and checks it.

tools/export.py models/cxr-foreign-object models/cmr-lvot
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from iqgate.packages import export_onnx, load_package

TOLERANCE = 1e-4


def check(package: Path, onnx_path: Path) -> float:
    """Largest absolute logit difference between torch and onnxruntime on random input."""
    model, card = load_package(package)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    images = torch.randn(
        2, 3, card.input_size, card.input_size, generator=torch.Generator().manual_seed(0)
    )
    (logits,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = model(images).numpy()
    return float(np.abs(logits - expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("packages", nargs="+", type=Path, help="model package folders")
    args = parser.parse_args(argv)
    worst = 0.0
    for package in args.packages:
        path = export_onnx(package)
        difference = check(package, path)
        worst = max(worst, difference)
        print(f"{path}: max |onnxruntime - torch| = {difference:.2e}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
