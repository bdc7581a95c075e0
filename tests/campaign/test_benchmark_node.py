"""The node benchmark runs end to end and accounts for every image it pushes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from iqgate_testkit.node_speed import figures
from iqgate_testkit.peers import require

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SYNTAXES = ("uncompressed", "rle", "j2k")
SECTIONS = (
    "command",
    "host",
    "settings",
    "corpus",
    "receive_ceiling",
    "compute_ceiling",
    "end_to_end",
    "triage",
    "targets",
)


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_short_run_reports_every_section_and_loses_no_image(tmp_path):
    require("storescu", "storescp")
    out = tmp_path / "node.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "benchmark_node.py"),
            "--short",
            "--device",
            "cpu",
            "--work",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| syntax |" in run.stdout and "Targets (issue 8)" in run.stdout
    record = json.loads(out.read_text())
    assert set(SECTIONS) <= set(record)
    assert record["host"]["cpus"] >= 1 and record["host"]["torch"]
    assert record["command"].startswith("tools/benchmark_node.py --short")
    for syntax in SYNTAXES:
        receive = record["receive_ceiling"][syntax]
        assert positive(receive["images_per_s"]), receive
        assert set(receive["by_receiver_images_per_s"]) == {"pynetdicom", "storescp"}
        for mode in ("flagged", "all"):
            engine = record["compute_ceiling"][mode][syntax]
            for key in ("images_per_s", "with_decode_images_per_s", "decode_ms_per_image"):
                assert positive(engine[key]), (mode, syntax, key, engine)
            node = record["end_to_end"][mode][syntax]
            assert node["acknowledged"] == node["images"] == node["results"] > 0, node
            assert node["lost"] == node["failed"] == node["missing"] == 0, node
            for key in ("images_per_s", "latency_p50_s", "latency_p99_s", "node_cpu_ms_per_image"):
                assert positive(node[key]), (mode, syntax, key, node)
            assert node["latency_p50_s"] <= node["latency_p99_s"]
            assert node["stages"]["decode"]["observations"] == node["images"]
            assert positive(node["stages"]["inference"]["ms_per_image"])
            assert 0 <= node["flagged_fraction"] <= 1
            assert positive(node["ratios"]["e2e_vs_smaller_ceiling"])
        paced = record["end_to_end"]["flagged"][syntax]["paced"]
        assert paced["acknowledged"] == paced["images"] == paced["results"] > 0, paced
        assert paced["lost"] == 0 and positive(paced["latency_p99_s"])
        assert positive(record["triage"][syntax]["ratio"])
    assert all(t["met"] in (True, False) for t in record["targets"]), record["targets"]


def _round(flagged: float, every: float) -> dict[str, dict[str, dict[str, object]]]:
    """One round of node figures for one syntax: triage path and explain-all."""
    return {
        mode: {"rle": {"images_per_s": rate, "flagged_fraction": 0.1, "lost": 0}}
        for mode, rate in (("flagged", flagged), ("all", every))
    }


def test_rounds_report_the_median_run_and_pair_each_round_for_the_triage_ratio():
    rounds = [_round(20.0, 10.0), _round(12.0, 8.0), _round(19.0, 9.0)]
    rounds[0]["flagged"]["rle"]["paced"] = {"latency_p99_s": 0.3, "lost": 0}
    rounds[1]["all"]["rle"]["lost"] = 2

    chosen = figures.median_runs(rounds)
    assert chosen["flagged"]["rle"]["images_per_s"] == 19.0
    assert chosen["all"]["rle"]["images_per_s"] == 9.0
    assert chosen["flagged"]["rle"]["paced"] == {"latency_p99_s": 0.3, "lost": 0}
    assert chosen["flagged"]["rle"]["rounds_images_per_s"] == [20.0, 12.0, 19.0]
    triage = figures.triage(rounds)["rle"]
    assert triage["ratios"] == [2.0, 1.5, 2.111]
    assert triage["ratio"] == 2.0  # the median round's pairing, not 19 / 9
    assert figures.lost_images({"rounds": rounds}) == 2  # lost in any round counts

    assert "rounds_images_per_s" not in figures.median_runs(rounds[:1])["all"]["rle"]
