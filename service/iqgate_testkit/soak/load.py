"""Load: receive rate against reference receivers, C-STORE latency under saturation, memory.

Every figure comes from one of three runs:

- :func:`receive_rate`: N concurrent ``storescu`` processes push the same files into the
  node and into three references (docs/reliability.md): the minimal pynetdicom receiver
  (handler writes ``event.encoded_dataset()`` to a file), the same with fsync of file
  and folder (the durable floor), and DCMTK ``storescp``; receivers alternate within
  each repeat and the median wall time counts.
- :func:`saturated_latency`: a backlog keeps the workers busy while a pynetdicom SCU
  times single C-STOREs on the client side; the node's own histogram gives the server
  side.
- :func:`memory_soak`: thousands of small images through the whole node (assessment,
  delivery to a ``storescp`` PACS, purge as it goes) while the node's RSS is sampled.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE

from iqgate.node.store.states import UNFINISHED
from iqgate_testkit.peers import port_open, start_node, storescp
from iqgate_testkit.soak import receivers
from iqgate_testkit.soak.harness import (
    NODE_AE,
    ForeignLoad,
    RssSampler,
    cpu_seconds,
    finish_push,
    free_port,
    histogram_quantile,
    kill_node,
    parse_metrics,
    push,
    quantile,
    receive_metrics,
    receiving_cpu_seconds,
    start_push,
    wait_for,
    write_corpus,
)

RECEIVERS = ("pynetdicom", "pynetdicom+fsync", "storescp", "iqgate")


@contextmanager
def reference_receiver(kind: str, folder: Path, clients: int) -> Iterator[tuple[int, int]]:
    """Start one reference receiver on a free port; yield its port and process id."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "storescp":
        command = ["storescp", "+B", "--max-pdu", "131072", "-od", str(folder), str(port)]
        if clients > 1:
            command.insert(1, "--fork")
    else:
        command = receivers.command(port, folder, *(["--fsync"] if kind.endswith("+fsync") else []))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), 60, kind)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


NODE_SOURCE: list[Path] = []
"""Where the node's ``iqgate`` package comes from, when not this checkout (``--node-src``:
run the same campaign against another version, e.g. the one before a fix)."""


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Settings of the node under test: the defaults (log level info, one decode process,
    one torch thread), with no free-space floor so that a test spool on a small disk works."""
    source = {"PYTHONPATH": str(NODE_SOURCE[0] / "service")} if NODE_SOURCE else {}
    return {
        **source,
        "IQGATE_DECODE_PROCESSES": "1",
        "IQGATE_TORCH_THREADS": "1",
        "IQGATE_SPOOL_MIN_FREE_BYTES": "0",
        **(extra or {}),
    }


def receive_rate(
    work: Path, models: Path, *, clients: int, images: int, rows: int, repeats: int
) -> dict[str, object]:
    """Median images/s of each receiver for the same files; iqgate's latency and memory."""
    batches = write_corpus(work / f"corpus-{rows}", clients, images, rows, rows, f"{rows}")
    total = clients * images
    walls: dict[str, list[float]] = {kind: [] for kind in RECEIVERS}
    cpu: dict[str, list[float]] = {kind: [] for kind in RECEIVERS}
    node_runs: list[dict[str, float | None]] = []
    with ForeignLoad() as foreign:
        _rate_runs(batches, work, models, clients, total, repeats, walls, cpu, node_runs)
    return _rate_figures(batches, clients, images, rows, repeats, walls, cpu, node_runs, foreign)


def _rate_runs(
    batches: list[list[Path]],
    work: Path,
    models: Path,
    clients: int,
    total: int,
    repeats: int,
    walls: dict[str, list[float]],
    cpu: dict[str, list[float]],
    node_runs: list[dict[str, float | None]],
) -> None:
    for repeat in range(repeats):
        order = RECEIVERS[repeat % len(RECEIVERS) :] + RECEIVERS[: repeat % len(RECEIVERS)]
        for kind in order:
            target = work / f"rx-{kind}-{repeat}"
            if kind == "iqgate":
                node = start_node(target, models, node_env())
                try:
                    cpu_before = receiving_cpu_seconds(node.process.pid)
                    with RssSampler(node.process.pid, 0.5) as rss:
                        result = push(batches, node.port)
                    cpu[kind].append(receiving_cpu_seconds(node.process.pid) - cpu_before)
                    samples = receive_metrics(node, total)
                    node_runs.append(
                        {
                            "p50_ms": _ms(histogram_quantile(samples, CSTORE, 0.5)),
                            "p99_ms": _ms(histogram_quantile(samples, CSTORE, 0.99)),
                            "rss_max_mb": max(b for _, b in rss.samples) / 2**20,
                            "queued": samples.get('iqgate_queue_depth{state="received"}', 0.0),
                        }
                    )
                finally:
                    kill_node(node)
            else:
                with reference_receiver(kind, target, clients) as (port, pid):
                    cpu_before = cpu_seconds(pid)
                    result = push(batches, port, called="ANY-SCP")
                    cpu[kind].append(cpu_seconds(pid) - cpu_before)
            if result.succeeded != total:
                raise RuntimeError(
                    f"{kind}: {result.succeeded} of {total} stored\n{result.logs[0]}"
                )
            walls[kind].append(result.wall_s)
            shutil.rmtree(target, ignore_errors=True)


def _rate_figures(
    batches: list[list[Path]],
    clients: int,
    images: int,
    rows: int,
    repeats: int,
    walls: dict[str, list[float]],
    cpu: dict[str, list[float]],
    node_runs: list[dict[str, float | None]],
    foreign: ForeignLoad,
) -> dict[str, object]:
    total = clients * images
    size_mb = sum(p.stat().st_size for batch in batches for p in batch) / 1e6
    median = {kind: statistics.median(values) for kind, values in walls.items()}
    rate = {kind: total / wall for kind, wall in median.items()}
    return {
        "clients": clients,
        "images_per_client": images,
        "size_px": rows,
        "mb": round(size_mb, 1),
        "repeats": repeats,
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "mb_per_s": {k: round(size_mb / median[k], 1) for k in RECEIVERS},
        "receiver_cpu_ms_per_image": {
            k: round(statistics.median(v) * 1000 / total, 2) for k, v in cpu.items() if v
        },
        "ratio_to_pynetdicom": round(rate["iqgate"] / rate["pynetdicom"], 2),
        "ratio_to_fsync_floor": round(rate["iqgate"] / rate["pynetdicom+fsync"], 2),
        "ratio_to_storescp": round(rate["iqgate"] / rate["storescp"], 2),
        "iqgate_cstore_p50_ms": _median_of(node_runs, "p50_ms"),
        "iqgate_cstore_p99_ms": _median_of(node_runs, "p99_ms"),
        "iqgate_rss_max_mb": _median_of(node_runs, "rss_max_mb"),
        **foreign.summary,
    }


CSTORE = "iqgate_cstore_response_seconds"
END_TO_END = "iqgate_end_to_end_seconds"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _median_of(runs: list[dict[str, float | None]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None  # type: ignore[arg-type]


def timed_stores(port: int, files: list[Path], interval_s: float) -> list[float]:
    """C-STORE each file over one association, one every ``interval_s``; seconds each."""
    datasets = [dcmread(p) for p in files]
    ae = AE(ae_title="PROBE")
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=NODE_AE)
    if not assoc.is_established:
        raise RuntimeError("the latency probe could not associate with the node")
    timings = []
    try:
        for ds in datasets:
            started = time.perf_counter()
            status = assoc.send_c_store(ds)
            timings.append(time.perf_counter() - started)
            if int(status.Status) != 0:
                raise RuntimeError(f"probe C-STORE answered 0x{int(status.Status):04X}")
            time.sleep(interval_s)
    finally:
        assoc.release()
    return timings


def saturated_latency(
    work: Path, models: Path, *, backlog: int, probes: int, rows: int
) -> dict[str, object]:
    """C-STORE response times while a backlog keeps the workers busy."""
    backlog_files = write_corpus(work / "corpus-backlog", 2, backlog // 2, rows, rows, "bl")
    probe_files = write_corpus(work / "corpus-probe", 1, probes, rows, rows, "pr")[0]
    node = start_node(work / "node-latency", models, node_env())
    foreign = ForeignLoad().__enter__()
    try:
        push(backlog_files, node.port)
        before = parse_metrics(node.metrics())
        queued_before = before.get('iqgate_queue_depth{state="received"}', 0.0)
        pushers = start_push([b[: len(b) // 2] for b in backlog_files], node.port)
        started = time.perf_counter()
        timings = timed_stores(node.port, probe_files, interval_s=0.02)
        probe_wall = time.perf_counter() - started
        finish_push(pushers, started)
        after = parse_metrics(node.metrics())
        queued_after = after.get('iqgate_queue_depth{state="received"}', 0.0)
        assessing = after.get('iqgate_queue_depth{state="assessing"}', 0.0)
        return {
            "backlog": backlog,
            "probes": probes,
            "size_px": rows,
            "probe_wall_s": round(probe_wall, 1),
            "queued_at_probe_start": queued_before,
            "queued_at_probe_end": queued_after + assessing,
            "client_p50_ms": round(quantile(timings, 0.5) * 1000, 1),
            "client_p99_ms": round(quantile(timings, 0.99) * 1000, 1),
            "client_max_ms": round(max(timings) * 1000, 1),
            "server_p99_ms": _ms(histogram_quantile(after, CSTORE, 0.99)),
            **foreign.summary,
        }
    finally:
        foreign.__exit__()
        kill_node(node)


def memory_soak(
    work: Path, models: Path, *, images: int, clients: int, rows: int, housekeeping_s: float
) -> dict[str, object]:
    """RSS of the node over ``images`` small images, delivered to PACS and purged as they go."""
    per_client = images // clients
    batches = write_corpus(work / "corpus-soak", clients, per_client, rows, rows, "soak")
    total = per_client * clients
    with storescp(work / "pacs") as pacs:
        env = node_env(
            {
                "IQGATE_PACS": pacs.destination,
                "IQGATE_RETENTION_S": "0",
                "IQGATE_HOUSEKEEPING_INTERVAL_S": str(housekeeping_s),
            }
        )
        node = start_node(work / "node-soak", models, env)
        try:
            with RssSampler(node.process.pid, 1.0) as rss, ForeignLoad(2.0) as foreign:
                started = time.perf_counter()
                pushed = push(batches, node.port)
                done = threading.Event()

                def drained() -> bool:
                    m = parse_metrics(node.metrics())
                    finished = sum(
                        v for k, v in m.items() if k.startswith("iqgate_verdicts_total{")
                    ) + m.get('iqgate_jobs_failed_total{stage="decode"}', 0.0)
                    open_jobs = sum(
                        m.get(f'iqgate_queue_depth{{state="{s}"}}', 0.0)
                        for s in (state.value for state in UNFINISHED)
                    )
                    return finished >= total and open_jobs == 0

                wait_for(drained, 7200, "the soak backlog to drain", interval_s=2.0)
                drain_s = time.perf_counter() - started
                time.sleep(housekeeping_s * 2 + 1)
                done.set()
            metrics = parse_metrics(node.metrics())
        finally:
            kill_node(node)
    series = [(t, b / 2**20) for t, b in rss.samples]
    warm = [mb for t, mb in series if t >= series[-1][0] * 0.1]
    tenth = len(warm) // 10 or 1
    return {
        "images": total,
        "acknowledged": pushed.succeeded,
        "push_s": round(pushed.wall_s, 1),
        "drain_s": round(drain_s, 1),
        "rss_first_tenth_mb": round(statistics.median(warm[:tenth]), 1),
        "rss_last_tenth_mb": round(statistics.median(warm[-tenth:]), 1),
        "rss_max_mb": round(max(mb for _, mb in series), 1),
        "rss_receiving_process_first_tenth_mb": round(
            statistics.median(rss.own[: len(rss.own) // 10 or 1]) / 2**20, 1
        ),
        "rss_receiving_process_last_tenth_mb": round(
            statistics.median(rss.own[-(len(rss.own) // 10 or 1) :]) / 2**20, 1
        ),
        "spool_jobs_left": sum(
            v for k, v in metrics.items() if k.startswith("iqgate_queue_depth{")
        ),
        "spool_bytes_left": metrics.get("iqgate_spool_bytes", -1.0),
        "end_to_end_p50_s": histogram_quantile(metrics, END_TO_END, 0.5),
        "end_to_end_p99_s": histogram_quantile(metrics, END_TO_END, 0.99),
        **foreign.summary,
        "rss_series_mb": [
            (round(t), round(mb, 1)) for t, mb in series[:: max(1, len(series) // 60)]
        ],
    }
