"""Flag rates by object kind: what the phantoms say each object is, and how it is counted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iqgate.data.phantom_dataset import PhantomDataset
from iqgate.data.phantoms import generate
from iqgate.study.kind_rates import flag_rates_by_kind, kind_rate_table
from iqgate_testkit import REPO
from iqgate_testkit.package_factory import tiny_package

CXR_FORMS = {
    "button",
    "coin",
    "clip-frame",
    "clip-bar",
    "wire",
    "jewellery-ring",
    "jewellery-pendant",
    "ecg-electrode",
}


def test_each_radiograph_object_has_a_kind_and_negatives_have_none():
    seen = set()
    for sample in generate("cxr", 12, seed=11):
        assert len(sample.kinds) == len(sample.boxes) and bool(sample.kinds) == bool(sample.label)
        seen.update(sample.kinds)
    assert seen and seen <= CXR_FORMS


def test_a_positive_cardiac_frame_carries_one_lvot():
    kinds = PhantomDataset("cmr", 4, seed=3, size=32).object_kinds()
    assert kinds == [["lvot"] if i % 2 else [] for i in range(4)]


def test_an_image_counts_for_each_kind_it_carries_and_alone_only_for_its_only_kind():
    kinds = [["coin"], ["coin", "wire"], ["wire", "wire"], [], ["coin"]]
    flagged = [True, False, True, True, False]
    rates = {rate.kind: rate for rate in flag_rates_by_kind(kinds, flagged)}
    assert list(rates) == ["coin", "wire"]
    coin, wire = rates["coin"], rates["wire"]
    assert (coin.images, coin.flagged, coin.alone_images, coin.alone_flagged) == (3, 1, 2, 1)
    assert (wire.images, wire.flagged, wire.alone_images, wire.alone_flagged) == (2, 1, 1, 1)


def test_kinds_and_flags_must_pair_up():
    with pytest.raises(ValueError, match="2 kind lists for 1 flags"):
        flag_rates_by_kind([["coin"], []], [True])


def test_the_table_gives_rates_with_wilson_intervals_and_a_dash_for_no_image():
    table = kind_rate_table(flag_rates_by_kind([["coin", "wire"], ["coin"]], [True, True]))
    assert "| coin | 1.00 [0.34, 1.00] (2/2) | 1.00 [0.21, 1.00] (1/1) |" in table
    assert "| wire | 1.00 [0.21, 1.00] (1/1) | - |" in table


def test_the_tool_scores_a_package_on_fresh_phantoms(tmp_path):
    package = tiny_package(tmp_path, "flags-all", modalities=("MR",), threshold=0.0)
    out = tmp_path / "rates.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "kind_rates.py"),
            *("--package", str(package), "--data", "phantoms-cmr", "--n", "6"),
            *("--seed", "9", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| lvot | 1.00 [0.44, 1.00] (3/3) |" in run.stdout
    figures = json.loads(out.read_text())
    assert figures["kinds"] == [
        {"kind": "lvot", "images": 3, "flagged": 3, "alone_images": 3, "alone_flagged": 3}
    ]
    assert (figures["false_positives"], figures["negatives"]) == (3, 3)
