#!/usr/bin/env python3
"""Does an open console slow the gate? The node's receive rate and end-to-end figures
with N consoles following live updates against none open.

One node with the console on (following the spool either way) receives rounds of fresh
phantom radiographs (uncompressed) from K ``storescu`` processes at once; the two modes
alternate within each round (``none`` first in even rounds, ``live`` first in odd ones).
In ``live`` mode a separate process holds N server-sent-event streams to ``/live``
(logged in through the trusted proxy header) and counts the rows each receives, so the
figures say that every console saw every image. Prints a table and the live/none ratios
of the medians; nothing is asserted.

    .venv/bin/python tools/benchmark_console.py --images 120 --consoles 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import threading
import time
import urllib.request
from contextlib import closing
from functools import partial
from multiprocessing.sharedctypes import SynchronizedArray as Array
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

from iqgate.node.app import CONSOLE_PROCESS_NAME
from iqgate.node.console.index import INDEX_NAME
from iqgate_testkit.node_speed.measurements import SYNTAXES, saturated_phase, say, write_corpus
from iqgate_testkit.peers import NodeProcess, free_port, http_get, start_node, wait_for
from iqgate_testkit.soak.harness import cpu_seconds, descendant_pids, kill_node, push

MODES = ("none", "live")
FIGURES = (
    "push_images_per_s",
    "images_per_s",
    "latency_p50_s",
    "latency_p99_s",
    "node_cpu_ms_per_image",
    "console_cpu_ms_per_image",
)
"""Receive rate (storescu), end-to-end rate, receipt-to-result latency, and CPU time per
image of the whole node and of its console process (less noisy than rates on a busy host)."""
USER_HEADER = "X-Forwarded-User"
SEED = 1000
"""Corpus seeds are SEED + 10 * round + mode: all four digits, since the phantoms' UIDs
hash the seed and the sample index written one after the other (seeds 1 and 11 would
give samples 10 and 0 the same UIDs)."""
ROWS_TIMEOUT_S = 30.0
"""How long the consoles may take to show the last rows once every result is written."""


def follow(url: str, counts: Array, index: int) -> None:
    """One console: read ``/live`` and count the rows it brings."""
    request = urllib.request.Request(url, headers={USER_HEADER: f"viewer{index}"})
    with urllib.request.urlopen(request) as stream:
        for line in stream:
            counts[index] += line.startswith(b"event: image")


def run_consoles(url: str, counts: Array, stop: ProcessEvent) -> None:
    """One live stream per entry of ``counts`` until ``stop``, at the lowest CPU priority
    (the browsers would be on other machines)."""
    os.nice(19)
    threads = [
        threading.Thread(target=follow, args=(url, counts, i), daemon=True)
        for i in range(len(counts))
    ]
    for thread in threads:
        thread.start()
    stop.wait()


def newest_row(index_path: Path) -> int:
    """The newest row of the console's index (rows are numbered from 1 as images are
    indexed), so a console that connects late still receives every row after it."""
    with closing(sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()[0])


def indexed(index_path: Path, images: int) -> bool:
    """Whether the console's index holds ``images`` rows (every image the node assessed)."""
    return newest_row(index_path) >= images


def console_pid(node: NodeProcess) -> int:
    """The node's console process (named ``iqgate-console``)."""
    for pid in descendant_pids(node.process.pid):
        if Path(f"/proc/{pid}/comm").read_text().strip() == CONSOLE_PROCESS_NAME:
            return pid
    raise RuntimeError(f"the node {node.process.pid} has no {CONSOLE_PROCESS_NAME} process")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=120, help="images per phase")
    parser.add_argument("--consoles", type=int, default=20, help="live consoles in 'live'")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="storescu processes at once")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/iqgate-console-bench"))
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()

    console_port = free_port()
    env = {
        "IQGATE_CONSOLE_PORT": str(console_port),
        "IQGATE_CONSOLE_HOST": "127.0.0.1",
        "IQGATE_CONSOLE_DIR": str(args.work / "node" / "console"),
        "IQGATE_CONSOLE_TRUSTED_USER_HEADER": USER_HEADER,
        "IQGATE_CONSOLE_TRUSTED_PROXIES": "127.0.0.1",
    }
    syntax = SYNTAXES["uncompressed"]
    corpora = {
        (r, mode): write_corpus(
            args.work / "corpus", syntax, saturated=args.images, paced=0, seed=SEED + 10 * r + m
        )
        for r in range(args.rounds)
        for m, mode in enumerate(MODES)
    }
    say("starting the node with its console")
    node = start_node(args.work / "node", args.models, env)
    base = f"http://127.0.0.1:{console_port}"
    results: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    try:
        wait_for(lambda: http_get(f"{base}/healthz")[0] == 200, 60, "the console")
        console = console_pid(node)
        index_path = args.work / "node" / "console" / INDEX_NAME
        warmup = next(iter(corpora.values())).warmup
        push([warmup], node.port)
        jobs = 1
        time.sleep(2)
        context = multiprocessing.get_context("spawn")
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                corpus = corpora[(r, mode)]
                stop, counts = context.Event(), context.Array("i", args.consoles)
                viewers = None
                wait_for(partial(indexed, index_path, jobs), 60, "the console's index")
                if mode == "live":
                    url = f"{base}/live?after={newest_row(index_path)}"
                    viewers = context.Process(target=run_consoles, args=(url, counts, stop))
                    viewers.start()
                    time.sleep(2)  # the streams are open
                say(f"round {r + 1}, {mode}: {args.images} images from {args.clients} storescu")
                console_cpu = cpu_seconds(console)
                figures = saturated_phase(node, corpus, args.clients, jobs)
                figures["console_cpu_ms_per_image"] = round(
                    1000 * (cpu_seconds(console) - console_cpu) / args.images, 2
                )
                jobs += args.images
                if figures["results"] != args.images:
                    raise RuntimeError(
                        f"{figures['results']} of {args.images} images have results "
                        f"({figures['without_report']} without a report: not assessed?, "
                        f"{figures['failed']} failed); node log: {node.log_path}"
                    )
                if viewers is not None:
                    deadline = time.monotonic() + ROWS_TIMEOUT_S
                    while min(counts) < args.images and time.monotonic() < deadline:
                        time.sleep(0.1)
                    figures["rows_per_console_min"] = min(counts)
                    stop.set()
                    viewers.join(10)
                results[mode].append(
                    {k: figures[k] for k in (*FIGURES, "rows_per_console_min") if k in figures}
                )
                say(f"  {json.dumps(results[mode][-1])}")
    finally:
        kill_node(node)
    medians = {
        mode: {k: statistics.median(float(run[k]) for run in runs) for k in FIGURES}
        for mode, runs in results.items()
    }
    print(f"{'figure':<22}{'none open':>12}{f'{args.consoles} live':>12}{'live/none':>12}")
    for key in FIGURES:
        none, live = medians["none"][key], medians["live"][key]
        print(f"{key:<22}{none:>12.3f}{live:>12.3f}{live / none:>12.3f}")
    if args.out:
        args.out.write_text(json.dumps({"runs": results, "medians": medians}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
