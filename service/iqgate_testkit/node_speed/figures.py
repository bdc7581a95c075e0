"""Figures of the node speed benchmark: ratios to the ceilings, targets, rounds, the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

HALF = 0.5
P99_TARGET_S = 2.0
TRIAGE_TARGET = 2.0
J2K_GPU_TARGET = 100.0


def ratio(a: object, b: object) -> float | None:
    """``a / b`` rounded, or None where either figure is missing."""
    if isinstance(a, float | int) and isinstance(b, float | int) and b > 0:
        return round(a / b, 3)
    return None


def with_ratios(
    node: dict[str, object], receive: dict[str, object], engine: dict[str, object]
) -> dict[str, object]:
    """End-to-end throughput against each ceiling."""
    e2e, rx = node["images_per_s"], receive["images_per_s"]
    compute, decoded = engine["images_per_s"], engine["with_decode_images_per_s"]
    smaller = min(rx, compute) if isinstance(rx, float) and isinstance(compute, float) else None
    return {
        "smaller_ceiling_images_per_s": smaller,
        "e2e_vs_receive": ratio(e2e, rx),
        "e2e_vs_engine": ratio(e2e, compute),
        "e2e_vs_engine_with_decode": ratio(e2e, decoded),
        "e2e_vs_smaller_ceiling": ratio(e2e, smaller),
    }


def targets(record: dict[str, object], gpu: bool) -> list[dict[str, object]]:
    """Issue 8's targets, each with its value and whether it applies to this device."""
    found: list[dict[str, object]] = []

    def add(name: str, value: object, threshold: float, below: bool, applies: bool) -> None:
        met = None
        if isinstance(value, float | int):
            met = value < threshold if below else value >= threshold
        found.append(
            {
                "target": name,
                "value": value,
                "threshold": threshold,
                "below": below,
                "met": met,
                "applies_here": applies,
            }
        )

    end_to_end: dict = record["end_to_end"]  # type: ignore[assignment]
    for mode, by_syntax in end_to_end.items():
        for syntax, figures in by_syntax.items():
            share = figures["ratios"]["e2e_vs_smaller_ceiling"]
            add(f"{syntax}, explain={mode}: end to end / smaller ceiling", share, HALF, False, True)
    for syntax, figures in end_to_end.get("flagged", {}).items():
        if "paced" in figures:
            p99 = figures["paced"]["latency_p99_s"]
            add(
                f"{syntax}: p99 s at half the maximum throughput (GPU)",
                p99,
                P99_TARGET_S,
                True,
                gpu,
            )
        if syntax == "j2k":
            add(
                "j2k: DX images/s end to end (GPU)",
                figures["images_per_s"],
                J2K_GPU_TARGET,
                False,
                gpu,
            )
    triage: dict = record.get("triage", {})  # type: ignore[assignment]
    for syntax, figures in triage.items():
        add(
            f"{syntax}: triage / explain-all throughput",
            figures["ratio"],
            TRIAGE_TARGET,
            False,
            True,
        )
    return found


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _table(title: str, header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table under a title line."""
    return [
        f"\n{title}\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows),
    ]


THROUGHPUT_COLUMNS = [
    "syntax", "results", "end to end", "p50", "p99", "paced p99", "paced at",
    "receive ceiling", "receiver", "engine (decode excl.)", "engine + decode",
    "decode + engine + results", "e2e / smaller ceiling", "e2e / engine+decode", "flagged",
]  # fmt: skip
STAGE_COLUMNS = [
    "syntax", "C-STORE p50", "decode", "inference", "explain (per explained)", "encode",
    "worker busy", "batch mean", "node CPU", "engine: decode", "engine: assess",
    "engine: write",
]  # fmt: skip


def render(record: dict) -> str:  # type: ignore[type-arg]
    """The tables of a run, in Markdown."""
    lines: list[str] = []
    receive = record["receive_ceiling"]
    for mode, by_syntax in record["end_to_end"].items():
        compute = record["compute_ceiling"][mode]
        throughput, stages = [], []
        for syntax, f in by_syntax.items():
            paced, rx, engine, r = f.get("paced", {}), receive[syntax], compute[syntax], f["ratios"]
            throughput.append(
                [
                    syntax, f"{f['results']}/{f['images']}", f["images_per_s"],
                    f["latency_p50_s"], f["latency_p99_s"], paced.get("latency_p99_s"),
                    paced.get("offered_images_per_s"), rx["images_per_s"], rx["receiver"],
                    engine["images_per_s"], engine["with_decode_images_per_s"],
                    engine["serial_pipeline_images_per_s"], r["e2e_vs_smaller_ceiling"],
                    r["e2e_vs_engine_with_decode"], f["flagged_fraction"],
                ]
            )  # fmt: skip
            s = f["stages"]
            stages.append(
                [
                    syntax, f["cstore_ms_p50"], s["decode"]["ms_per_image"],
                    s["inference"]["ms_per_image"], s["explain"]["ms_mean"],
                    s["encode"]["ms_per_image"], f["worker_busy_fraction"], f["batch_size_mean"],
                    f["node_cpu_ms_per_image"], engine["decode_ms_per_image"],
                    engine["engine_ms_per_image"], engine["write_ms_per_image"],
                ]
            )  # fmt: skip
        lines += _table(
            f"IQGATE_EXPLAIN={mode}: throughput (images/s) and latency (s, receipt to results)",
            THROUGHPUT_COLUMNS,
            throughput,
        )
        lines += _table(
            f"IQGATE_EXPLAIN={mode}: where the time goes (ms per image; node metrics, then "
            "the engine in this process)",
            STAGE_COLUMNS,
            stages,
        )
    if record.get("triage"):
        lines += _table(
            "Triage (IQGATE_EXPLAIN=flagged) against explaining every image (all)",
            ["syntax", "flagged: images/s", "all: images/s", "ratio", "ratio per round",
             "fraction flagged"],
            [
                [s, t["flagged_images_per_s"], t["all_images_per_s"], t["ratio"],
                 " ".join(_cell(r) for r in t["ratios"]), t["flagged_fraction"]]
                for s, t in record["triage"].items()
            ],
        )  # fmt: skip
    lines.append("\nTargets (issue 8)\n")
    for t in record["targets"]:
        verdict = {True: "met", False: "MISSED", None: "no figure"}[t["met"]]
        if not t["applies_here"]:
            verdict += " (a GPU target; this run is not on a GPU)"
        sign = "<" if t["below"] else ">="
        lines.append(f"- {t['target']}: {_cell(t['value'])} ({sign} {t['threshold']}) {verdict}")
    return "\n".join(lines)


Runs = dict[str, dict[str, dict[str, object]]]
"""Node figures of one round: explain mode -> syntax -> figures."""


def median_runs(rounds: Sequence[Runs]) -> Runs:
    """Per mode and syntax, the figures of the round with the median end-to-end throughput.

    The paced phase runs in the first round only and is kept; with more than one round,
    ``rounds_images_per_s`` lists every round's throughput.
    """
    chosen: Runs = {}
    for mode, by_syntax in rounds[0].items():
        chosen[mode] = {}
        for syntax, first in by_syntax.items():
            runs = sorted((r[mode][syntax] for r in rounds), key=_images_per_s)
            figures = dict(runs[(len(runs) - 1) // 2])
            if "paced" in first:
                figures["paced"] = first["paced"]
            if len(rounds) > 1:
                figures["rounds_images_per_s"] = [r[mode][syntax]["images_per_s"] for r in rounds]
            chosen[mode][syntax] = figures
    return chosen


def _images_per_s(figures: dict[str, object]) -> float:
    value = figures["images_per_s"]
    return float(value) if isinstance(value, float | int) else 0.0


def triage(rounds: Sequence[Runs]) -> dict[str, dict[str, object]]:
    """Throughput of the triage path against explaining every image, per syntax.

    Each round's ratio sets its two runs side by side (they ran minutes apart); the
    median ratio is reported, with every round's beside it.
    """
    found = {}
    for syntax, first in rounds[0]["flagged"].items():
        flagged = [r["flagged"][syntax]["images_per_s"] for r in rounds]
        every = [r["all"][syntax]["images_per_s"] for r in rounds]
        ratios = [ratio(f, a) for f, a in zip(flagged, every, strict=True)]
        found[syntax] = {
            "flagged_images_per_s": _median(flagged),
            "all_images_per_s": _median(every),
            "ratio": _median(ratios),
            "ratios": ratios,
            "flagged_fraction": first["flagged_fraction"],
        }
    return found


def _median(values: Sequence[object]) -> float | None:
    numbers = [v for v in values if isinstance(v, float | int)]
    return round(statistics.median(numbers), 3) if len(numbers) == len(values) else None


def lost_images(record: dict[str, object]) -> int:
    """Pushed images without a result, over every node phase of every round."""
    return sum(
        int(f["lost"]) + int(f.get("paced", {}).get("lost", 0))
        for runs in record["rounds"]  # type: ignore[attr-defined]
        for by_syntax in runs.values()
        for f in by_syntax.values()
    )
