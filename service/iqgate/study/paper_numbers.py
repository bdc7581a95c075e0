"""The rows of the paper's saliency tables and the numbers it printed (Tables 2 to 6).

Transcribed from shared/paper.txt (PAPER.md lists the means). Values are as printed:
three decimals, means and standard deviations over three trials. The paper lists the
NormGrad bias variant in no table, so neither does iqgate's benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PaperDataset = Literal["object-cxr", "lvot"]
PAPER_DATASETS: tuple[PaperDataset, ...] = ("object-cxr", "lvot")
DATASET_TITLES: dict[PaperDataset, str] = {"object-cxr": "Object-CXR", "lvot": "LVOT"}
MeanStd = tuple[float, float]
AccuracyAuc = tuple[float, float]


@dataclass(frozen=True)
class SaliencyRow:
    """One row of the paper's tables: a method and, for NormGrad, its layer preset."""

    key: str
    label: str
    method: str
    layers: Literal["single", "combined"] | None = None


def _normgrad(variant: str, layers: Literal["single", "combined"]) -> SaliencyRow:
    return SaliencyRow(
        f"normgrad-{variant}/{layers}",
        f"NormGrad {variant} {layers}",
        f"normgrad-{variant}",
        layers,
    )


ROWS: tuple[SaliencyRow, ...] = (
    SaliencyRow("input-x-grad", "Input x Grad", "input-x-grad"),
    SaliencyRow("guided-backprop", "Guided Backprop", "guided-backprop"),
    SaliencyRow("guided-gradcam", "Guided Grad-CAM", "guided-gradcam"),
    SaliencyRow("gradcam", "Grad-CAM", "gradcam"),
    *(
        _normgrad(variant, layers)
        for variant in ("scaling", "conv1x1", "conv3x3")
        for layers in ("single", "combined")
    ),
)
"""The ten rows of Tables 2 to 5, in the paper's order."""
ROW_KEYS: tuple[str, ...] = tuple(row.key for row in ROWS)

PAPER_INPUT_SIDES: dict[PaperDataset, int] = {"object-cxr": 600, "lvot": 224}
"""The paper's model input side per data set, at which tau = 15 px is measured."""
PAPER_TAU_PX = 15.0


def scaled_tau(dataset: PaperDataset, input_size: int) -> float:
    """The paper's 15 px tolerance scaled to ``input_size`` (same fraction of the image).

    >>> scaled_tau("object-cxr", 256)
    6.4
    """
    return PAPER_TAU_PX * input_size / PAPER_INPUT_SIDES[dataset]


PAPER_ARCHITECTURES: dict[PaperDataset, tuple[str, str]] = {
    "object-cxr": ("resnet34", "efficientnet_b0"),
    "lvot": ("resnet50", "efficientnet_b0"),
}
"""The paper's two architectures per data set: ResNet first (Tables 2-4), then EB0."""
ARCHITECTURE_TITLES = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "efficientnet_b0": "EfficientNet-B0",
}


def _by_row(values: list[object]) -> dict[str, object]:
    if len(values) != len(ROWS):
        raise ValueError(f"a paper table needs {len(ROWS)} rows, got {len(values)}")
    return dict(zip(ROW_KEYS, values, strict=True))


TABLE2: dict[PaperDataset, dict[str, tuple[float, float]]] = {
    # Table 2: one trained ResNet, Pointing Game (unsmoothed, smoothed).
    "lvot": _by_row(
        [
            (0.000, 0.098),
            (0.000, 0.135),
            (0.051, 0.319),
            (0.582, 0.554),
            (0.472, 0.468),
            (0.627, 0.626),
            (0.431, 0.430),
            (0.639, 0.639),
            (0.295, 0.292),
            (0.640, 0.649),
        ]
    ),
    "object-cxr": _by_row(
        [
            (0.162, 0.670),
            (0.132, 0.648),
            (0.256, 0.640),
            (0.572, 0.546),
            (0.850, 0.852),
            (0.840, 0.838),
            (0.848, 0.848),
            (0.840, 0.838),
            (0.850, 0.850),
            (0.846, 0.846),
        ]
    ),
}

RANDOMISATION: dict[PaperDataset, dict[str, dict[str, MeanStd]]] = {
    # Tables 3 (LVOT) and 4 (Object-CXR), smoothed: SR, FR and Repeated (mean, std).
    "lvot": _by_row(
        [
            {"sr": (0.001, 0.001), "fr": (0.048, 0.015), "repeated": (0.106, 0.058)},
            {"sr": (0.004, 0.002), "fr": (0.103, 0.041), "repeated": (0.152, 0.075)},
            {"sr": (0.027, 0.025), "fr": (0.044, 0.057), "repeated": (0.325, 0.075)},
            {"sr": (0.061, 0.104), "fr": (0.008, 0.014), "repeated": (0.547, 0.020)},
            {"sr": (0.069, 0.029), "fr": (0.007, 0.002), "repeated": (0.497, 0.140)},
            {"sr": (0.066, 0.038), "fr": (0.057, 0.023), "repeated": (0.600, 0.054)},
            {"sr": (0.048, 0.000), "fr": (0.011, 0.016), "repeated": (0.479, 0.139)},
            {"sr": (0.054, 0.011), "fr": (0.082, 0.079), "repeated": (0.611, 0.051)},
            {"sr": (0.073, 0.000), "fr": (0.215, 0.041), "repeated": (0.430, 0.185)},
            {"sr": (0.118, 0.006), "fr": (0.057, 0.023), "repeated": (0.602, 0.061)},
        ]
    ),
    "object-cxr": _by_row(
        [
            {"sr": (0.111, 0.028), "fr": (0.185, 0.041), "repeated": (0.663, 0.013)},
            {"sr": (0.091, 0.008), "fr": (0.160, 0.007), "repeated": (0.640, 0.053)},
            {"sr": (0.166, 0.055), "fr": (0.200, 0.028), "repeated": (0.645, 0.012)},
            {"sr": (0.200, 0.066), "fr": (0.093, 0.103), "repeated": (0.545, 0.018)},
            {"sr": (0.279, 0.021), "fr": (0.126, 0.032), "repeated": (0.852, 0.000)},
            {"sr": (0.320, 0.029), "fr": (0.147, 0.053), "repeated": (0.843, 0.005)},
            {"sr": (0.280, 0.000), "fr": (0.153, 0.025), "repeated": (0.851, 0.006)},
            {"sr": (0.325, 0.004), "fr": (0.185, 0.027), "repeated": (0.839, 0.010)},
            {"sr": (0.298, 0.000), "fr": (0.153, 0.017), "repeated": (0.853, 0.003)},
            {"sr": (0.334, 0.016), "fr": (0.193, 0.027), "repeated": (0.845, 0.005)},
        ]
    ),
}


@dataclass(frozen=True)
class ArchitectureRow:
    """One row of Table 5: repeated PG of the ResNet and of EB0, and the printed DoM."""

    resnet: MeanStd
    efficientnet: MeanStd
    dom: float


TABLE5: dict[PaperDataset, dict[str, ArchitectureRow]] = {
    # Table 5 prints its own standard deviations; a few differ from Tables 3-4.
    "lvot": _by_row(
        [
            ArchitectureRow((0.106, 0.058), (0.218, 0.042), 0.112),
            ArchitectureRow((0.152, 0.075), (0.318, 0.049), 0.166),
            ArchitectureRow((0.325, 0.075), (0.453, 0.035), 0.128),
            ArchitectureRow((0.547, 0.020), (0.569, 0.027), 0.022),
            ArchitectureRow((0.497, 0.140), (0.778, 0.020), 0.281),
            ArchitectureRow((0.600, 0.054), (0.620, 0.010), 0.020),
            ArchitectureRow((0.479, 0.139), (0.754, 0.041), 0.275),
            ArchitectureRow((0.611, 0.051), (0.634, 0.018), 0.023),
            ArchitectureRow((0.430, 0.185), (0.728, 0.033), 0.298),
            ArchitectureRow((0.602, 0.061), (0.607, 0.020), 0.005),
        ]
    ),
    "object-cxr": _by_row(
        [
            ArchitectureRow((0.663, 0.013), (0.617, 0.036), 0.046),
            ArchitectureRow((0.640, 0.053), (0.595, 0.045), 0.045),
            ArchitectureRow((0.645, 0.012), (0.784, 0.005), 0.139),
            ArchitectureRow((0.545, 0.020), (0.771, 0.005), 0.226),
            ArchitectureRow((0.852, 0.000), (0.857, 0.010), 0.005),
            ArchitectureRow((0.843, 0.005), (0.856, 0.002), 0.013),
            ArchitectureRow((0.851, 0.006), (0.850, 0.000), 0.001),
            ArchitectureRow((0.839, 0.010), (0.851, 0.008), 0.011),
            ArchitectureRow((0.853, 0.003), (0.863, 0.002), 0.009),
            ArchitectureRow((0.845, 0.005), (0.859, 0.007), 0.014),
        ]
    ),
}

TABLE6: dict[PaperDataset, tuple[tuple[AccuracyAuc, AccuracyAuc], ...]] = {
    # Table 6: (accuracy, AUC) per trial T1-T3 of (ResNet, EB0).
    "lvot": (
        ((0.971, 0.998), (0.929, 0.978)),
        ((0.949, 0.994), (0.867, 0.949)),
        ((0.943, 0.992), (0.915, 0.971)),
    ),
    "object-cxr": (
        ((0.870, 0.938), (0.858, 0.937)),
        ((0.853, 0.938), (0.857, 0.936)),
        ((0.865, 0.931), (0.856, 0.936)),
    ),
}


def paper_column(arch: str) -> int:
    """Which of the paper's two architectures ``arch`` stands in for: 0 ResNet, 1 EB0."""
    return 1 if arch.startswith("efficientnet") else 0
