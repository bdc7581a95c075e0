"""Node speed: images/s end to end through a running node, beside its two ceilings.

K concurrent DCMTK ``storescu`` processes push phantom chest radiographs (a tenth with
foreign objects) into an ``iqgate serve`` process, one transfer syntax at a time
(uncompressed, RLE, JPEG 2000). Reported per syntax: images/s from the first push to
the last result written, latency from receipt to results written (p50, p99; at
saturation, and paced at half that throughput), where the node's worker spends its time
(its own /metrics), and beside it, on the same files: the receive ceiling (the faster of
DCMTK ``storescp`` and a minimal pynetdicom write-through receiver) and the compute
ceiling (the node's own assessment code in this process, same models and settings;
decode excluded, and with decode beside it). ``--explain both`` runs the node twice
(IQGATE_EXPLAIN=flagged, the default triage path, then all) and prints the ratio;
``--rounds R`` alternates the two R times and reports medians, so that a host whose
speed drifts weighs on both modes alike.
Details and recorded figures: docs/node-speed.md. Progress goes to standard error, the
table to standard output, every figure to ``--out``.

Examples::

    tools/benchmark_node.py --short                          # smoke run (the test), ~1-2 min
    tools/benchmark_node.py --out runs/node-cpu.json         # full run on the CPU
    tools/benchmark_node.py --device cuda --clients 8 --images 400 --out runs/node-gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from iqgate.config import Settings, load_settings
from iqgate.node.ops.logs import configure_logging
from iqgate.node.pipeline.build import build_pipeline, choose_device
from iqgate.packages import export_onnx, find_packages, onnx_is_current
from iqgate_testkit import REPO
from iqgate_testkit.node_speed import measurements
from iqgate_testkit.node_speed.measurements import SYNTAXES, Corpus, say
from iqgate_testkit.soak import harness
from iqgate_testkit.soak.load import node_env

MODES = {"flagged": ["flagged"], "all": ["all"], "both": ["flagged", "all"]}
SHORT = {"clients": 2, "images": 4, "paced": 3, "repeats": 1}
FULL = {"clients": 4, "images": 60, "paced": 60, "repeats": 3}
HALF = 0.5
P99_TARGET_S = 2.0
TRIAGE_TARGET = 2.0
J2K_GPU_TARGET = 100.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--short", action="store_true", help="small, fast run (the test)")
    parser.add_argument("--clients", type=int, help="concurrent storescu processes (K; 4)")
    parser.add_argument("--images", type=int, help="images per syntax pushed at once (60)")
    parser.add_argument(
        "--paced", type=int, help="images per syntax paced at half throughput (60; 0: skip)"
    )
    parser.add_argument("--repeats", type=int, help="runs per reference receiver (3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="node runs per explain mode, the modes alternating; medians reported (1)",
    )
    parser.add_argument(
        "--syntaxes", default="uncompressed,rle,j2k", help=f"comma list of {', '.join(SYNTAXES)}"
    )
    parser.add_argument("--explain", choices=sorted(MODES), default="both")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--models", type=Path, help="model packages (default: models/; --short: tiny random ones)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="IQGATE_X=VALUE",
        help="a node setting for the node and the compute ceiling (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=20261127, help="phantom seed")
    parser.add_argument("--work", type=Path, help="scratch folder; phantoms are kept there")
    parser.add_argument("--out", type=Path, help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    for key, value in (SHORT if args.short else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.clients, args.images, args.repeats, args.rounds) < 1 or args.paced < 0:
        parser.error("--clients, --images, --repeats and --rounds must be >= 1, --paced >= 0")
    unknown = [s for s in args.syntaxes.split(",") if s not in SYNTAXES]
    if unknown:
        parser.error(f"--syntaxes: unknown {unknown}; choose from {', '.join(SYNTAXES)}")
    bad = [e for e in args.env if "=" not in e or not e.startswith("IQGATE_")]
    if bad:
        parser.error(f"--env takes IQGATE_NAME=VALUE; got {bad}")
    return args


def host_facts(device: torch.device) -> dict[str, object]:
    """What the figures depend on: cores, library versions, the device."""
    try:
        import onnxruntime

        onnx = {"onnxruntime": onnxruntime.__version__}
        onnx["onnx_providers"] = ",".join(onnxruntime.get_available_providers())
    except ImportError:
        onnx = {"onnxruntime": None}
    dcmtk = subprocess.run(["storescu", "--version"], capture_output=True, text=True, check=False)
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        **onnx,
        "dcmtk": dcmtk.stdout.strip().splitlines()[0] if dcmtk.stdout else None,
        "load_average_at_start": os.getloadavg(),
    }


def prepare_models(models: Path, settings: Settings) -> None:
    """Export ``model.onnx`` where missing, once, before anything is timed (as the node
    would on its first start)."""
    if settings.classifier != "onnx":
        return
    for package in find_packages(models):
        if not onnx_is_current(package):
            say(f"exporting {package / 'model.onnx'} (once)")
            try:
                export_onnx(package)
            except OSError as exc:
                say(f"cannot export {package.name} ({exc}); the node will classify with torch")


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


def describe_corpus(corpora: list[Corpus]) -> dict[str, dict[str, object]]:
    """Per syntax: what was pushed, its size and the fraction drawn with foreign objects."""
    return {
        c.syntax.name: {
            "transfer_syntax": str(c.syntax.uid),
            "images": len(c.saturated),
            "paced": len(c.paced),
            "mb": round(c.megabytes(c.saturated), 1),
            "positive_fraction": round(
                sum(c.labels[c.uids[p]] for p in c.saturated) / len(c.saturated), 3
            ),
        }
        for c in corpora
    }


NODE_SETTINGS = {
    "device", "classifier", "overlays", "batch_max", "batch_wait_ms", "decode_processes",
    "torch_threads", "normgrad_variant", "normgrad_layers", "precision",
}  # fmt: skip
"""The node settings the figures depend on, recorded with them."""


def compute_ceilings(
    corpora: list[Corpus], models: Path, settings: dict[str, Settings], work: Path
) -> dict[str, dict[str, dict[str, object]]]:
    """The engine in this process, per explain mode and syntax, with the node's models
    and the node's pipeline (:func:`~iqgate.node.pipeline.build.build_pipeline`)."""
    compute: dict[str, dict[str, dict[str, object]]] = {}
    device = torch.device("cpu")
    for mode, mode_settings in settings.items():
        pipeline = build_pipeline(
            mode_settings.model_copy(
                update={
                    "models_dir": models,
                    "results_dir": work / "engine-results",
                    "decode_processes": 0,
                }
            )
        )
        device = pipeline.device
        say(f"compute ceiling: models loaded on {device}")
        compute[mode] = {}
        for corpus in corpora:
            say(f"compute ceiling, {corpus.syntax.name}, explain={mode}")
            compute[mode][corpus.syntax.name] = measurements.engine_ceiling(
                pipeline, corpus.saturated, mode_settings
            )
        pipeline.close()
        del pipeline
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the node gets the GPU to itself
    return compute


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


def measure(args: argparse.Namespace, work: Path, record: dict[str, object]) -> None:
    """Every measurement of a run, into ``record``."""
    modes = MODES[args.explain]
    syntaxes = [SYNTAXES[s] for s in args.syntaxes.split(",")]
    extra = dict(e.split("=", 1) for e in args.env)
    envs = {
        m: node_env({"IQGATE_DEVICE": args.device, **extra, "IQGATE_EXPLAIN": m}) for m in modes
    }
    settings = {m: load_settings(environ=env) for m, env in envs.items()}
    models = args.models or (
        harness.build_models(work / "models") if args.short else REPO / "models"
    )
    prepare_models(models, settings[modes[0]])
    record["settings"] = {
        "clients": args.clients,
        "images_per_syntax": args.images,
        "paced_per_syntax": args.paced,
        "repeats": args.repeats,
        "syntaxes": [s.name for s in syntaxes],
        "explain": modes,
        "models": str(models),
        "node_env": envs,
        "node": settings[modes[0]].model_dump(include=NODE_SETTINGS, mode="json"),
    }
    say(f"writing the phantoms ({args.images} + {args.paced} + 1 per syntax)")
    corpora = [
        measurements.write_corpus(
            (args.work or work) / "corpus",
            s,
            saturated=args.images,
            paced=args.paced,
            seed=args.seed,
        )
        for s in syntaxes
    ]
    record["corpus"] = describe_corpus(corpora)
    receive: dict[str, dict[str, object]] = {}
    for corpus in corpora:
        say(f"receive ceiling, {corpus.syntax.name}")
        receive[corpus.syntax.name] = measurements.receive_ceiling(
            corpus, args.clients, work, args.repeats
        )
    record["receive_ceiling"] = receive
    compute = compute_ceilings(corpora, models, settings, work)
    record["compute_ceiling"] = compute
    rounds: list[Runs] = []
    record["rounds"] = rounds
    for round_index in range(args.rounds):
        runs: Runs = {}
        for index, mode in enumerate(modes):
            runs[mode] = measurements.node_run(
                corpora,
                models,
                envs[mode],
                clients=args.clients,
                paced=index == 0 and round_index == 0 and args.paced > 0,
                work=work / f"node-{mode}-{round_index}",
            )
            for syntax, figures in runs[mode].items():
                figures["ratios"] = with_ratios(figures, receive[syntax], compute[mode][syntax])
        rounds.append(runs)
    record["end_to_end"] = median_runs(rounds)
    if len(modes) == 2:
        record["triage"] = triage(rounds)


def lost_images(record: dict[str, object]) -> int:
    """Pushed images without a result, over every node phase of every round."""
    return sum(
        int(f["lost"]) + int(f.get("paced", {}).get("lost", 0))
        for runs in record["rounds"]  # type: ignore[attr-defined]
        for by_syntax in runs.values()
        for f in by_syntax.values()
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("warning")  # the node's loggers, used here by the compute ceiling
    started = time.perf_counter()
    device = choose_device(args.device)
    record: dict[str, object] = {
        "command": shlex.join(
            ["tools/benchmark_node.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host_facts(device),
    }
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="iqgate-node-bench-", dir=args.work) as scratch,
        harness.ForeignLoad(interval_s=2.0) as foreign,
    ):
        measure(args, Path(scratch), record)
    record["foreign_load"] = foreign.summary
    record["targets"] = targets(record, device.type == "cuda")
    record["wall_s"] = round(time.perf_counter() - started, 1)
    record["load_average_at_end"] = os.getloadavg()
    print(render(record))
    print(f"\n{record['wall_s']} s in all on {device}; {os.cpu_count()} CPUs")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1, default=str) + "\n")
        say(f"figures written to {args.out}")
    lost = lost_images(record)
    if lost:
        print(f"IMAGES LOST: {lost} pushed images have no result", file=sys.stderr)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
