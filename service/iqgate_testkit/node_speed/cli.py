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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from iqgate.config import Settings, load_settings
from iqgate.node.ops.logs import configure_logging
from iqgate.node.pipeline.build import build_pipeline, choose_device
from iqgate.packages import export_onnx, find_packages, onnx_is_current
from iqgate_testkit import REPO
from iqgate_testkit.node_speed import measurements
from iqgate_testkit.node_speed.figures import (
    Runs,
    lost_images,
    median_runs,
    render,
    targets,
    triage,
    with_ratios,
)
from iqgate_testkit.node_speed.measurements import SYNTAXES, Corpus, say
from iqgate_testkit.soak import harness
from iqgate_testkit.soak.load import node_env

MODES = {"flagged": ["flagged"], "all": ["all"], "both": ["flagged", "all"]}
SHORT = {"clients": 2, "images": 4, "paced": 3, "repeats": 1}
FULL = {"clients": 4, "images": 60, "paced": 60, "repeats": 3}


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
