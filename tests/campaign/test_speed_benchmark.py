"""The speed benchmark measures every call against the floor measured in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from iqgate.explain import METHODS
from iqgate.study.speed import (
    EXPLAIN_MANY,
    FORWARD,
    FORWARD_BACKWARD,
    SpeedCase,
    check_targets,
    measure_case,
    render_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_measure_case_reports_every_method_against_the_floor():
    results = measure_case(SpeedCase("resnet18", 32, 2), warmup=0, repeats=1, peers=False)
    names = [r.name for r in results]
    assert names == [FORWARD, FORWARD_BACKWARD, *METHODS, EXPLAIN_MANY]
    floor = next(r for r in results if r.name == FORWARD_BACKWARD)
    assert floor.speed_vs_floor == 1.0
    assert all(r.images_per_s > 0 for r in results)
    table = render_table(results)
    assert table.count("\n") == len(results) + 1
    assert "| resnet18, 32, 2, cpu | normgrad-conv3x3 |" in table
    targets = check_targets(results)
    assert len(targets) == 2 and all(("met" in t) or ("MISSED" in t) for t in targets)


def test_benchmark_tool_prints_the_table_and_writes_json(tmp_path):
    out = tmp_path / "speed.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "benchmark_speed.py"),
            "--arch",
            "resnet18",
            "--size",
            "32",
            "--batch",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--no-peers",
            "--device",
            "cpu",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "| resnet18, 32, 2, cpu | fwd+bwd (floor) |" in run.stdout
    assert "NormGrad combined speed vs fwd+bwd" in run.stdout
    records = json.loads(out.read_text())
    assert {r["name"] for r in records} >= set(METHODS)
