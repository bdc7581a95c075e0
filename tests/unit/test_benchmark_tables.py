"""DoM arithmetic, aggregation over trials, and tables.md rendered from a fixed results.json."""

from __future__ import annotations

import doctest

import pytest

from iqgate.study import dom
from iqgate.study.dom import DOM_TOLERANCE, difference_of_means, dom_agrees, summarise
from iqgate.study.figures import pointing_chart
from iqgate.study.paper_numbers import (
    PAPER_DATASETS,
    RANDOMISATION,
    ROW_KEYS,
    TABLE2,
    TABLE5,
    TABLE6,
)
from iqgate.study.results import aggregate, read_json, write_json
from iqgate.study.tables import render_tables


def test_difference_of_means_is_the_absolute_difference_of_trial_means():
    assert difference_of_means([0.5, 0.7, 0.6], [0.4, 0.4, 0.4]) == pytest.approx(0.2)
    assert difference_of_means([0.4, 0.4, 0.4], [0.5, 0.7, 0.6]) == pytest.approx(0.2)
    assert difference_of_means([0.85], [0.85, 0.86, 0.84]) == pytest.approx(0.0)


def test_trial_summaries_use_the_population_std():
    summary = summarise([0.5, 0.7, 0.6])
    assert summary.mean == pytest.approx(0.6)
    assert summary.std == pytest.approx((0.02 / 3) ** 0.5)
    assert summarise([0.3]).std == 0.0
    with pytest.raises(ValueError, match="per-trial scores"):
        summarise([])


def test_dom_tolerance_absorbs_the_papers_rounding():
    assert dom_agrees(0.011, 0.839, 0.851)
    assert not dom_agrees(0.014, 0.839, 0.851)
    for dataset in PAPER_DATASETS:
        rows = TABLE5[dataset].values()
        assert all(dom_agrees(r.dom, r.resnet[0], r.efficientnet[0]) for r in rows)
    off_by_rounding = [
        r
        for d in PAPER_DATASETS
        for r in TABLE5[d].values()
        if abs(r.dom - abs(r.resnet[0] - r.efficientnet[0])) > 1e-9
    ]
    assert len(off_by_rounding) == 2  # as PAPER.md says
    assert DOM_TOLERANCE == 0.001


def test_paper_numbers_cover_every_row_and_match_each_other():
    for dataset in PAPER_DATASETS:
        for table in (TABLE2, RANDOMISATION, TABLE5):
            assert tuple(table[dataset]) == ROW_KEYS
        assert len(TABLE6[dataset]) == 3
        for key in ROW_KEYS:
            # Table 5's ResNet means are Tables 3-4's Repeated means.
            assert TABLE5[dataset][key].resnet[0] == RANDOMISATION[dataset][key]["repeated"][0]


def test_dom_doctests_hold():
    assert doctest.testmod(dom, raise_on_error=False).failed == 0


def fake_model(condition: str, arch: str, trial: int, pg: float, accuracy: float = 0.9) -> dict:
    """A model record as results.json holds it, with one PG value for every row."""
    return {
        "condition": condition,
        "arch": arch,
        "trial": trial,
        "source": {"kind": "test"},
        "accuracy": accuracy,
        "auc": 0.95,
        "images_tested": 20,
        "images_explained": 10,
        "pointing": {k: {"unsmoothed": round(pg - 0.1, 3), "smoothed": pg} for k in ROW_KEYS},
        "objects": {k: {"unsmoothed": pg / 2, "smoothed": pg / 2} for k in ROW_KEYS},
        "blank_maps": {k: {"unsmoothed": 1, "smoothed": 2} for k in ROW_KEYS},
        "twin_pointing": {
            k: {"unsmoothed": round(pg - 0.3, 3), "smoothed": round(pg - 0.2, 3)} for k in ROW_KEYS
        },
        "per_image": [],
    }


def fixed_results(archs: tuple[str, ...], weights: tuple[str | None, ...] = ()) -> dict:
    models = [
        fake_model("repeated", "resnet34", 1, 0.5, 0.8),
        fake_model("repeated", "resnet34", 2, 0.7, 0.9),
        fake_model("repeated", "resnet34", 3, 0.6, 0.85),
        fake_model("fr", "resnet34", 1, 0.1),
        fake_model("fr", "resnet34", 2, 0.3),
        fake_model("repeated", "efficientnet_b0", 1, 0.4),
        fake_model("repeated", "efficientnet_b0", 2, 0.4),
        fake_model("repeated", "efficientnet_b0", 3, 0.4),
    ]
    if weights:
        models += [fake_model("sr", "resnet34", t, 0.25) for t in (1, 2)]
    models = [m for m in models if m["arch"] in archs]
    return {
        "options": {
            "data": "phantoms-cxr",
            "compare_with": "object-cxr",
            "archs": list(archs),
            "train": {"input_size": 256},
            "trials": 3,
            "profile": "reduced",
            "packages": [],
            "weights": list(weights),
            "settings": {
                "target": "label",
                "combine": "geomean",
                "tau": 15.0,
                "pg_frame": "input",
                "smooth_sigma": 1.0,
            },
        },
        "not_run": {} if weights else {"sr": {a: "no ImageNet weights" for a in archs}},
        "baselines": {
            "256px": {
                "image centre": {"hits": 1, "images": 10, "pg": 0.1},
                "brightest pixel": {"hits": 2, "images": 10, "pg": 0.2},
                "densest edges": {"hits": 3, "images": 10, "pg": 0.3},
                "best fixed point": {"hits": 4, "images": 10, "pg": 0.4},
                "uniform chance": {"pg": 0.05},
            }
        },
        "models": models,
        "aggregates": aggregate(models, archs),
    }


def table_lines(text: str, heading: str) -> list[str]:
    """The lines of the first Markdown table under ``heading``."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("Content-free pointers")[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def pointer_lines(text: str, heading: str) -> list[str]:
    """The lines of the content-free pointer table under ``heading``."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("Content-free pointers")[1]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_aggregates_hold_mean_std_dom_and_classification():
    aggregates = fixed_results(("resnet34", "efficientnet_b0"))["aggregates"]
    cell = aggregates["pointing"]["repeated"]["resnet34"]["gradcam"]["smoothed"]
    assert cell["mean"] == pytest.approx(0.6)
    assert cell["values"] == [0.5, 0.7, 0.6]
    assert aggregates["dom"]["gradcam"]["smoothed"] == pytest.approx(0.2)
    assert "sr" not in aggregates["pointing"]
    assert aggregates["classification"]["resnet34"]["accuracy"]["mean"] == pytest.approx(0.85)
    assert aggregates["blank_maps"]["fr"]["resnet34"]["gradcam"]["smoothed"] == [2, 2]
    assert aggregates["images_explained"]["repeated"]["efficientnet_b0"] == 10
    twin = aggregates["twin_pointing"]["repeated"]["resnet34"]["gradcam"]["smoothed"]
    assert twin["mean"] == pytest.approx(0.4)


def test_tables_put_our_numbers_beside_the_papers(tmp_path):
    path = write_json(fixed_results(("resnet34", "efficientnet_b0")), tmp_path / "results.json")
    text = render_tables(read_json(path))

    table2 = table_lines(text, "## Table 2")
    assert table2[0] == (
        "| Method | Unsmoothed | paper | Smoothed | paper | 95 % CI | blank | twin "
        "| pos − twin | FR |"
    )
    # trial 1: 5 hits of 10 images, 2 blank maps, twin 0.3, FR trial 1 0.1
    assert table2[2] == (
        "| Input x Grad | 0.400 | 0.162 | 0.500 | 0.670 | [0.24, 0.76] | 2 | 0.300 | +0.200 "
        "| 0.100 |"
    )
    assert len(table2) == 2 + len(ROW_KEYS)
    pointers = pointer_lines(text, "## Table 2")
    assert pointers[2] == "| image centre | 0.100 | [0.02, 0.40] |"
    assert pointers[-1] == "| uniform chance | 0.050 | — |"

    table4 = table_lines(text, "## Table 4: randomisation and repeatability, ResNet-34")
    assert table4[0] == (
        "| Method | SR | paper | FR | paper | Repeated | paper | FR 95 % CI | Rep. 95 % CI "
        "| blank FR / Rep. | Rep. pos − twin |"
    )
    # FR pools 4 hits of 20, Repeated 18 of 30; blank maps summed over the trials
    assert table4[5] == (
        "| Grad-CAM | not run | 0.200 ± 0.066 | 0.200 ± 0.100 | 0.093 ± 0.103 "
        "| 0.600 ± 0.082 | 0.545 ± 0.018 | [0.08, 0.42] | [0.42, 0.75] | 4 / 6 | +0.200 |"
    )
    assert "SR not run: no ImageNet weights" in text
    assert len(pointer_lines(text, "## Table 4")) == 7

    table5 = table_lines(text, "## Table 5")
    assert table5[0] == (
        "| Method | ResNet-34 | 95 % CI | paper ResNet-34 | EfficientNet-B0 | 95 % CI "
        "| paper EfficientNet-B0 | DoM | paper DoM | pos − twin | blank |"
    )
    assert table5[-1] == (
        "| NormGrad conv3x3 combined | 0.600 ± 0.082 | [0.42, 0.75] | 0.845 ± 0.005 "
        "| 0.400 ± 0.000 | [0.25, 0.58] | 0.859 ± 0.007 | 0.200 | 0.014 | +0.200 / +0.200 "
        "| 6 / 6 |"
    )
    assert "tolerance of 0.001" in text and "within 0.001 in 10 of 10 rows" in text

    table6 = table_lines(text, "## Table 6")
    assert table6[2] == "| T1 | 0.800 / 0.950 | 0.870 / 0.938 | 0.900 / 0.950 | 0.858 / 0.937 |"
    assert table6[-1].startswith("| mean ± std | 0.850 ± 0.041 / 0.950 ± 0.000 |")

    objects = table_lines(text, "## Beyond the paper")
    assert objects[0] == "| Method | Repeated resnet34 | FR resnet34 | Repeated efficientnet_b0 |"
    assert objects[2] == "| Input x Grad | 0.600 / 0.300 | 0.200 / 0.100 | 0.400 / 0.200 |"


def test_sr_is_scored_when_weights_were_given():
    text = render_tables(fixed_results(("resnet34",), weights=("r34.pth",)))
    row = table_lines(text, "## Table 4")[2]
    assert row.startswith("| Input x Grad | 0.250 ± 0.000 | 0.111 ± 0.028 |")
    assert "not run" not in row
    assert "ImageNet weights: resnet34: r34.pth" in text


def test_one_architecture_leaves_the_dom_not_run():
    text = render_tables(fixed_results(("resnet34",)))
    assert "not run: the DoM needs two architectures" in text
    assert "EfficientNet-B0 |" not in text.split("## Table 6")[1].splitlines()[2]


def test_an_efficientnet_gets_no_resnet_numbers_beside_it():
    text = render_tables(fixed_results(("efficientnet_b0",)))
    assert table_lines(text, "## Table 2")[2].startswith("| Input x Grad | 0.300 | — | 0.400 | — |")
    assert "The paper gives these for its ResNet only." in text


def test_the_chart_is_a_png(tmp_path):
    path = pointing_chart(fixed_results(("resnet34", "efficientnet_b0")), tmp_path / "pg.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
