"""tools/benchmark.py --quick end to end, and the smoothing shortcut the benchmark relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from iqgate import nets
from iqgate.explain import explain_many
from iqgate.explain.postprocess import finish
from iqgate.study.evaluation import SMOOTHINGS
from iqgate.study.paper_numbers import ROW_KEYS

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_smoothing_finished_maps_equals_the_engines_smoothing():
    torch.manual_seed(0)
    model = nets.build("resnet18")
    images = torch.randn(2, 3, 48, 48)
    methods = ["input-x-grad", "gradcam", "normgrad-conv3x3"]
    plain = explain_many(model, images, methods)
    smoothed = explain_many(model, images, methods, smooth_sigma=1.0)
    for method in methods:
        torch.testing.assert_close(finish(plain[method], 1.0), smoothed[method], atol=1e-5, rtol=0)


def in_unit_interval(value: object) -> bool:
    return isinstance(value, float | int) and 0.0 <= value <= 1.0


def test_quick_benchmark_writes_results_tables_and_figures(tmp_path):
    out = tmp_path / "out"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "benchmark.py"),
            "--data",
            "phantoms-cmr",
            "--quick",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    options = results["options"]
    assert options["profile"] == "quick" and options["compare_with"] == "lvot"
    assert options["settings"] == {
        "target": "label",
        "combine": "geomean",
        "tau": 15.0 * 64 / 224,
        "tau_rule": "15 px at the paper's 224 px, scaled to 64 px",
        "pg_frame": "input",
        "smooth_sigma": 1.0,
        "batch_size": 8,
        "num_workers": 0,
    }
    kinds = sorted((m["condition"], m["trial"]) for m in results["models"])
    assert kinds == [("fr", 1), ("fr", 2), ("repeated", 1), ("repeated", 2)]
    for model in results["models"]:
        assert in_unit_interval(model["accuracy"]) and in_unit_interval(model["auc"])
        assert model["images_explained"] == len(model["per_image"]) > 0
        for score in ("pointing", "objects"):
            assert all(in_unit_interval(model[score][k][s]) for k in ROW_KEYS for s in SMOOTHINGS)
        image = model["per_image"][0]
        assert image["label"] == image["target"] == 1 and image["objects"] >= 1
        assert isinstance(image["outcomes"]["normgrad-conv3x3/combined"]["smoothed"]["hit"], bool)
        assert isinstance(image["twin_hit"]["normgrad-conv3x3/combined"]["smoothed"], bool)
        assert all(in_unit_interval(model["twin_pointing"][k]["smoothed"]) for k in ROW_KEYS)
        blanks = model["blank_maps"]["gradcam"]["smoothed"]
        assert 0 <= blanks <= model["images_explained"]
    pointers = results["baselines"]["64px"]
    assert set(pointers) == {
        "image centre",
        "brightest pixel",
        "densest edges",
        "best fixed point",
        "uniform chance",
    }
    assert pointers["image centre"]["images"] == results["models"][0]["images_explained"]
    assert all(in_unit_interval(p["pg"]) for p in pointers.values())
    repeated = results["aggregates"]["pointing"]["repeated"]["resnet18"]
    assert all(in_unit_interval(repeated[k]["smoothed"]["mean"]) for k in ROW_KEYS)
    assert "sr" not in results["aggregates"]["pointing"]
    assert "ImageNet" in results["not_run"]["sr"]["resnet18"]

    tables = (out / "tables.md").read_text()
    table3 = tables.split("## Table 3", 1)[1].split("Content-free pointers", 1)[0]
    rows = [line for line in table3.splitlines() if line.startswith("| ") and "Method" not in line]
    assert len(rows) == len(ROW_KEYS)
    assert all(row.split(" | ")[1] == "not run" for row in rows)  # our SR column
    assert all(float(row.split(" | ")[3].split(" ± ")[0]) <= 1.0 for row in rows)  # FR
    assert "SR not run" in tables
    assert tables.count("| uniform chance |") == 2  # below Table 2 and Table 3

    for name in (
        "pointing-game.png",
        "saliency-repeated-resnet18-smoothed.png",
        "saliency-repeated-resnet18-unsmoothed.png",
        "saliency-fr-resnet18-smoothed.png",
    ):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    work_dirs = list((tmp_path / "cache" / "models" / "phantoms-cmr").iterdir())
    assert len(work_dirs) == 2 and all((w / "best.pt").is_file() for w in work_dirs)
