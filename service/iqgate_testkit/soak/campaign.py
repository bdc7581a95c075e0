"""The hardening campaign: load, faults, bad input against a running node, with figures.

Each part starts its own node (``iqgate serve`` on free ports) and real peers (DCMTK
``storescu``/``storescp``), prints its figures as JSON and can append them to a file.
``--short`` runs small versions of every part (what the test suite runs); without it
the figures for docs/reliability.md are produced (tens of minutes on 2 cores). Run it
on an otherwise idle machine: figures taken under CPU contention say nothing.

Examples::

    tools/soak.py all --short                       # smoke run, about a minute
    tools/soak.py load --clients 4 --images 100     # receive rate vs the references
    tools/soak.py memory --images 10000             # RSS over 10,000 small images
    tools/soak.py kill --trials 10                  # SIGKILL under load, ten trials
    tools/soak.py faults --outage-s 180             # PACS down for three minutes
    tools/soak.py badinput                          # malformed corpus + fuzzing
    tools/soak.py all --out docs/soak-run.json      # everything, figures to a file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from iqgate_testkit.soak import faults, harness, load

Part = Callable[[argparse.Namespace, Path, Path], dict[str, object]]


def run_load(args: argparse.Namespace, work: Path, models: Path) -> dict[str, object]:
    short = args.short
    figures: dict[str, object] = {}
    cases = (
        [(2, 10, 256)]
        if short
        else [(1, 40, 2048), (4, 10, 2048), (1, 400, 256), (4, 200, 256), (8, 100, 256)]
    )
    if args.clients is not None:
        cases = [(args.clients, args.images or 100, args.rows)]
    for clients, images, rows in cases:
        key = f"rate_{clients}x{images}_{rows}px"
        figures[key] = load.receive_rate(
            work,
            models,
            clients=clients,
            images=images,
            rows=rows,
            repeats=1 if short else args.repeats,
        )
        print(json.dumps({key: figures[key]}), flush=True)
    figures["saturated_latency"] = load.saturated_latency(
        work, models, backlog=40 if short else 600, probes=10 if short else 300, rows=256
    )
    print(json.dumps({"saturated_latency": figures["saturated_latency"]}), flush=True)
    return figures


def run_memory(args: argparse.Namespace, work: Path, models: Path) -> dict[str, object]:
    images = 200 if args.short else (args.images or 10_000)
    return {
        "memory": load.memory_soak(
            work,
            models,
            images=images,
            clients=4,
            rows=256,
            housekeeping_s=2.0 if args.short else 10.0,
        )
    }


def run_faults(args: argparse.Namespace, work: Path, models: Path) -> dict[str, object]:
    outage = 5.0 if args.short else args.outage_s
    return {
        "pacs_outage": faults.pacs_outage(
            work, models, images=6 if args.short else 50, outage_s=outage
        ),
        "pacs_failure_status": faults.pacs_failure_status(work, models, images=3),
        "spool_limit": faults.spool_limit(work, models),
        "disk_full": faults.disk_full(work, models),
    }


def run_kill(args: argparse.Namespace, work: Path, models: Path) -> dict[str, object]:
    trials = 2 if args.short else args.trials
    return {
        "sigkill": faults.kill_trials(
            work,
            models,
            trials=trials,
            images=30 if args.short else 120,
            kill_window_s=3.0 if args.short else 10.0,
        )
    }


def run_badinput(args: argparse.Namespace, work: Path, models: Path) -> dict[str, object]:
    return {"bad_input": faults.bad_inputs(work, models, fuzz_examples=50 if args.short else 2000)}


PARTS: dict[str, Part] = {
    "load": run_load,
    "memory": run_memory,
    "faults": run_faults,
    "kill": run_kill,
    "badinput": run_badinput,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("part", choices=[*PARTS, "all"])
    parser.add_argument("--short", action="store_true", help="small, fast versions")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--models", type=Path, help="model packages (default: small random ones)")
    parser.add_argument("--out", type=Path, help="append the figures as one JSON line here")
    parser.add_argument(
        "--node-src", type=Path, help="run the node from this source tree (holding service/)"
    )
    parser.add_argument("--clients", type=int, help="load: one case with this many scanners")
    parser.add_argument("--images", type=int, help="load: images per scanner; memory: in all")
    parser.add_argument("--rows", type=int, default=256, help="load: image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="load: runs per receiver")
    parser.add_argument("--trials", type=int, default=10, help="kill: SIGKILL trials")
    parser.add_argument("--outage-s", type=float, default=180.0, help="faults: PACS down time")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.node_src:
        load.NODE_SOURCE[:] = [args.node_src.resolve()]
    parts = list(PARTS) if args.part == "all" else [args.part]
    with tempfile.TemporaryDirectory(prefix="iqgate-soak-", dir=args.work) as scratch:
        work = Path(scratch)
        models = args.models or harness.build_models(work / "models")
        record: dict[str, object] = {
            "command": " ".join(["tools/soak.py", *(argv or sys.argv[1:])]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": f"{platform.node()} {platform.processor() or platform.machine()}",
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        }
        for part in parts:
            started = time.perf_counter()
            figures = PARTS[part](args, work / part, models)
            figures[f"{part}_wall_s"] = round(time.perf_counter() - started, 1)
            figures[f"{part}_load_average_after"] = os.getloadavg()
            print(json.dumps({part: figures}, indent=1, default=str), flush=True)
            record[part] = figures
    if args.out:
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
    broken, missed = faults.verdict(record)
    for message in missed:
        print(f"target missed: {message}", file=sys.stderr)
    for message in broken:
        print(f"INVARIANT BROKEN: {message}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
