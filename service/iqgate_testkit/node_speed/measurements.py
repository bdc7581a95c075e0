"""Node speed: end to end through a running node, beside its two ceilings.

Three measurements on the same phantom files, one transfer syntax at a time:

- :func:`receive_ceiling`: K ``storescu`` processes push the files into DCMTK
  ``storescp`` and into the minimal pynetdicom write-through receiver
  (:mod:`iqgate_testkit.soak.receivers`); the faster one is the receive ceiling.
- :func:`engine_ceiling`: the node's own assessment code in this process, with the
  node's models and settings: decode (:func:`iqgate.node.pipeline.decode.decode_file`), then
  :func:`iqgate.node.pipeline.assess.assess_frames` in batches of ``IQGATE_BATCH_MAX`` (resize,
  classify, NormGrad for the frames that need it), then the results
  (:class:`iqgate.node.outputs.results.ResultWriter`), each timed apart. The engine alone
  (decode excluded) is the compute ceiling; engine + decode is given beside it.
- :func:`node_run`: an ``iqgate serve`` process; K ``storescu`` processes push every
  file at once (saturation), and then, optionally, other files one study per
  ``storescu`` call at half the throughput just measured (paced). Throughput runs from
  the first push to the last result written; latency per image from receipt to results
  written comes from the node's job table (``received_at`` to ``finished_at``); where
  the time goes comes from the node's own ``/metrics`` (differences over the phase).

The peers, pushes, metric parsing and spool look-ups are the hardening campaign's
(:mod:`iqgate_testkit.soak.harness`, :mod:`iqgate_testkit.soak.load`,
:mod:`iqgate_testkit.node_state`, :mod:`iqgate_testkit.peers`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import torch
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from iqgate.config import Settings
from iqgate.data.phantoms import generate
from iqgate.data.phantoms.dicom_writer import phantom_dataset
from iqgate.node.ops.relay import RELAY_INTERVAL_S
from iqgate.node.pipeline.assess import assess_frames
from iqgate.node.pipeline.build import Pipeline
from iqgate.node.pipeline.decode import DecodedImage, Decoder
from iqgate.node.pipeline.gpu_decode import DeviceImage, GpuDecoder
from iqgate.node.pipeline.routing import LoadedModel, ModelRegistry
from iqgate.node.store.states import JobState, JobVerdict
from iqgate.routing_rules import HeaderFacts
from iqgate_testkit.node_state import all_finished, job_states, spool_query
from iqgate_testkit.peers import NodeProcess, port_open, start_node
from iqgate_testkit.soak.harness import (
    cpu_seconds,
    descendant_pids,
    free_port,
    histogram_quantile,
    kill_node,
    parse_metrics,
    push,
    quantile,
    wait_for,
)
from iqgate_testkit.soak.load import CSTORE, END_TO_END

REFERENCES = ("pynetdicom", "storescp")
WORKER_STAGES = ("decode", "inference", "explain", "encode")
"""The stages the assessment worker thread spends its time in (``forward`` is another thread)."""


@dataclass(frozen=True)
class Syntax:
    """A transfer syntax the benchmark pushes, and how ``storescu`` must propose it."""

    name: str
    uid: UID
    storescu_options: tuple[str, ...]


SYNTAXES: dict[str, Syntax] = {
    s.name: s
    for s in (
        Syntax("uncompressed", ExplicitVRLittleEndian, ()),
        Syntax("rle", RLELossless, ("-xr",)),
        Syntax("j2k", JPEG2000Lossless, ("-xv",)),
        Syntax("jpegls", JPEGLSLossless, ("-xt",)),
    )
}
"""By name; ``uncompressed`` is explicit VR little endian; the compressed ones are lossless."""


def say(message: str) -> None:
    """Progress, on standard error."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- corpus ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """Phantom chest radiographs (DX and CR) of one syntax, split into three disjoint sets.

    ``saturated`` is pushed all at once (and is what the ceilings see), ``paced`` one
    study at a time, ``warmup`` before anything is measured. Every file has its own UIDs.
    """

    syntax: Syntax
    saturated: list[Path]
    paced: list[Path]
    warmup: list[Path]
    labels: dict[str, int]
    """SOP Instance UID -> phantom label (1 = foreign object drawn)."""
    uids: dict[Path, str]

    def megabytes(self, files: Sequence[Path]) -> float:
        """Size of ``files`` on disk, in MB."""
        return sum(p.stat().st_size for p in files) / 1e6


def write_corpus(
    folder: Path,
    syntax: Syntax,
    *,
    saturated: int,
    paced: int,
    seed: int,
    positive_fraction: float = 0.1,
) -> Corpus:
    """Render and encode the phantoms (kept in ``folder``: a second call reuses them).

    The same samples are written in every syntax (sample ``i`` is the same image), with
    UIDs of their own per syntax so one node can receive every syntax in one run. The
    samples are rendered and encoded in one process per CPU.
    """
    count = saturated + paced + 1
    target = folder / f"cxr-s{seed}-p{positive_fraction}-n{count}" / syntax.name
    index_file = target / "labels.json"
    if not index_file.is_file():
        target.mkdir(parents=True, exist_ok=True)
        jobs = [(target, syntax, seed, positive_fraction, count, i) for i in range(count)]
        workers = min(count, os.cpu_count() or 1)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            written = list(pool.map(_write_phantom, jobs, chunksize=max(1, count // workers // 4)))
        index_file.write_text(json.dumps(dict(written), indent=0))
    index = json.loads(index_file.read_text())
    files = [target / name for name in sorted(index)]
    return Corpus(
        syntax=syntax,
        saturated=files[:saturated],
        paced=files[saturated : saturated + paced],
        warmup=files[-1:],
        labels={str(v["uid"]): int(v["label"]) for v in index.values()},
        uids={target / name: str(v["uid"]) for name, v in index.items()},
    )


def _write_phantom(
    job: tuple[Path, Syntax, int, float, int, int],
) -> tuple[str, dict[str, object]]:
    """Write sample ``index`` of the corpus; its file name and its entry in labels.json."""
    target, syntax, seed, positive_fraction, count, index = job
    sample = generate("cxr", count, seed=seed, positive_fraction=positive_fraction)[index]
    ds = phantom_dataset(sample, syntax.uid)
    # generate_uid joins its sources without a separator: label each so seed 1 index 10
    # and seed 11 index 0 differ
    entropy = ["iqgate-node-bench", syntax.name, f"seed={seed}", f"index={sample.index}"]
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[*entropy, "instance"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*entropy, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*entropy, "series"])
    name = f"{sample.index:05d}.dcm"
    ds.save_as(target / name, enforce_file_format=True)
    return name, {"uid": str(ds.SOPInstanceUID), "label": sample.label}


def split(files: Sequence[Path], clients: int) -> list[list[Path]]:
    """Interleave ``files`` over ``clients`` lists (each client gets DX and CR alike)."""
    return [list(files[i::clients]) for i in range(min(clients, len(files)))]


# -- receive ceiling ---------------------------------------------------------------------------
ANY_SYNTAX_RECEIVER = """
import sys
from pathlib import Path

from pynetdicom import ALL_TRANSFER_SYNTAXES
from pynetdicom.presentation import AllStoragePresentationContexts, build_context

from iqgate_testkit.soak import receivers

receivers.AllStoragePresentationContexts = [
    build_context(c.abstract_syntax, ALL_TRANSFER_SYNTAXES) for c in AllStoragePresentationContexts
]
receivers.serve(int(sys.argv[1]), Path(sys.argv[2]), fsync=False)
"""
"""The campaign's minimal pynetdicom receiver (``receivers.serve``), made to accept every
transfer syntax pynetdicom knows: compressed files are written through as sent. Run with
``python -c``, so that it starts without the benchmark's imports."""


@contextmanager
def reference_receiver(kind: str, folder: Path, clients: int) -> Iterator[int]:
    """Start ``storescp`` or the pynetdicom receiver on a free port, every syntax accepted.

    As :func:`iqgate_testkit.soak.load.reference_receiver` (same options, so the figures compare with
    docs/reliability.md), plus ``+xa`` / all syntaxes: that one takes uncompressed data only.
    """
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "storescp":
        fork = ["--fork"] if clients > 1 else []
        command = ["storescp", "+xa", "+B", "--max-pdu", "131072", *fork]
        command += ["-od", str(folder), str(port)]
    else:
        command = [sys.executable, "-c", ANY_SYNTAX_RECEIVER, str(port), str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), 60, kind)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def receive_ceiling(corpus: Corpus, clients: int, work: Path, repeats: int) -> dict[str, object]:
    """Median images/s of each reference receiver for the saturated files; the faster counts."""
    files = corpus.saturated
    batches = split(files, clients)
    walls: dict[str, list[float]] = {kind: [] for kind in REFERENCES}
    for repeat in range(repeats):
        for kind in REFERENCES if repeat % 2 == 0 else REFERENCES[::-1]:
            target = work / f"rx-{corpus.syntax.name}-{kind}-{repeat}"
            with reference_receiver(kind, target, clients) as port:
                result = push(
                    batches, port, called="ANY-SCP", options=corpus.syntax.storescu_options
                )
            shutil.rmtree(target, ignore_errors=True)
            if result.succeeded != len(files):
                raise RuntimeError(
                    f"reference receiver {kind}: {result.succeeded} of {len(files)} "
                    f"{corpus.syntax.name} files stored; storescu said:\n{result.logs[0][-2000:]}"
                )
            walls[kind].append(result.wall_s)
    rates = {kind: len(files) / statistics.median(w) for kind, w in walls.items()}
    best = max(rates, key=rates.__getitem__)
    return {
        "images": len(files),
        "mb": round(corpus.megabytes(files), 1),
        "repeats": repeats,
        "images_per_s": round(rates[best], 2),
        "receiver": best,
        "by_receiver_images_per_s": {k: round(v, 2) for k, v in rates.items()},
        "mb_per_s": round(corpus.megabytes(files) / statistics.median(walls[best]), 1),
    }


# -- compute ceiling ---------------------------------------------------------------------------
def engine_ceiling(
    pipeline: Pipeline, files: Sequence[Path], settings: Settings
) -> dict[str, object]:
    """The node's assessment code in this process on ``files``, each part timed apart.

    What the worker does per batch (:mod:`iqgate.node.pipeline.worker`), with the
    pipeline :func:`~iqgate.node.pipeline.build.build_pipeline` makes of ``settings``
    (with ``decode_processes`` 0: the CPU decoder in this thread, where the node uses
    ``IQGATE_DECODE_PROCESSES`` processes; nvImageCodec on a CUDA node where it
    applies): batches of ``IQGATE_BATCH_MAX``, ``IQGATE_TORCH_THREADS``, the explain
    policy of the settings, then the results. Decode, assessment and results are timed
    apart.
    """
    registry, decoder, policy, writer = (
        pipeline.registry,
        pipeline.decoder,
        pipeline.policy,
        pipeline.writer,
    )
    device = registry.device
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    seconds = dict.fromkeys(("decode", "engine", "write", "classify", "explain"), 0.0)
    counts = dict.fromkeys(("frames", "flagged", "explained"), 0)
    classifiers: set[str] = set()
    try:
        (warm,) = _decoded(decoder, files[:1], device)
        warm_policy = replace(policy, explain_all=True)
        assess_frames(_route(registry, warm), list(warm.frames), warm_policy, device)
        for start in range(0, len(files), settings.batch_max):
            began = time.perf_counter()
            images = _decoded(decoder, files[start : start + settings.batch_max], device)
            seconds["decode"] += time.perf_counter() - began
            groups: dict[str, list[DecodedImage | DeviceImage]] = {}
            models: dict[str, LoadedModel] = {}
            for image in images:
                model = _route(registry, image)
                models[model.card.name] = model
                groups.setdefault(model.card.name, []).append(image)
            for name, group in groups.items():
                model = models[name]
                classifiers.add(model.classifier)
                frames = [frame for image in group for frame in image.frames]
                began = time.perf_counter()
                assessments = assess_frames(model, frames, policy, device)
                seconds["engine"] += time.perf_counter() - began
                seconds["classify"] += sum(a.timings_ms["inference"] for a in assessments) / 1e3
                seconds["explain"] += (
                    sum(a.timings_ms.get("explain", 0.0) for a in assessments) / 1e3
                )
                counts["frames"] += len(frames)
                counts["flagged"] += sum(a.flagged for a in assessments)
                counts["explained"] += sum(a.saliency is not None for a in assessments)
                began = time.perf_counter()
                offset = 0
                for image in group:
                    host = image.to_host() if isinstance(image, DeviceImage) else image
                    count = host.frames.shape[0]
                    writer.write_image(
                        host.header,
                        host.frames,
                        model.card,
                        assessments[offset : offset + count],
                        sr_per_series=False,
                        timings_ms={},
                    )
                    offset += count
                seconds["write"] += time.perf_counter() - began
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(writer.results_dir, ignore_errors=True)
    n, frames_total, explained = len(files), counts["frames"], counts["explained"]
    pipeline_s = seconds["decode"] + seconds["engine"] + seconds["write"]
    return {
        "images": n,
        "frames": frames_total,
        "flagged_fraction": round(counts["flagged"] / frames_total, 3),
        "explained_fraction": round(explained / frames_total, 3),
        "images_per_s": _rate(n, seconds["engine"]),
        "with_decode_images_per_s": _rate(n, seconds["engine"] + seconds["decode"]),
        "serial_pipeline_images_per_s": _rate(n, pipeline_s),
        "decode_ms_per_image": _ms(seconds["decode"] / n),
        "engine_ms_per_image": _ms(seconds["engine"] / n),
        "classify_ms_per_image": _ms(seconds["classify"] / n),
        "explain_ms_per_explained": _ms(seconds["explain"] / explained) if explained else None,
        "write_ms_per_image": _ms(seconds["write"] / n),
        "decoder": type(decoder).__name__,
        "batch_max": settings.batch_max,
        "torch_threads": settings.torch_threads,
        "precision": settings.precision,
        "classifier": ",".join(sorted(classifiers)),
        "device": str(device),
    }


def _decoded(
    decoder: Decoder | GpuDecoder, files: Sequence[Path], device: torch.device
) -> list[DecodedImage | DeviceImage]:
    """Decode as the worker does; the benchmark's own files must all decode."""
    images = decoder.decode_many(list(files))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    failed = [f"{p}: {i}" for p, i in zip(files, images, strict=True) if isinstance(i, Exception)]
    if failed:
        raise RuntimeError(f"cannot decode benchmark files: {'; '.join(failed)}")
    return images  # type: ignore[return-value]


def _route(registry: ModelRegistry, image: DecodedImage | DeviceImage) -> LoadedModel:
    model, decision = registry.route(HeaderFacts.from_dataset(image.header))
    if model is None:
        raise RuntimeError(f"no model package applies to a benchmark image: {decision.reason}")
    return model


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 2) if seconds > 0 else None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# -- the node ----------------------------------------------------------------------------------
def node_cpu_seconds(node: NodeProcess) -> float:
    """CPU time used so far by the node and every process it started (pipeline, decoders)."""
    pid = node.process.pid
    return sum(cpu_seconds(p) for p in [pid, *descendant_pids(pid)])


def metric_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """``after - before`` per sample (counters and histogram series)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def settled_metrics(node: NodeProcess, before: dict[str, float], images: int) -> dict[str, float]:
    """The node's metrics once every image of the phase shows in them.

    The pipeline process relays its updates every ``RELAY_INTERVAL_S``, so the spool can
    know a job is done a moment before ``/metrics`` does.
    """
    deadline = time.monotonic() + 30 * RELAY_INTERVAL_S + 10
    while True:
        after = parse_metrics(node.metrics())
        delta = metric_delta(before, after)
        done = sum(
            v
            for k, v in delta.items()
            if k.startswith(("iqgate_verdicts_total{", "iqgate_jobs_failed_total{"))
        )
        if done >= images or time.monotonic() > deadline:
            return after
        time.sleep(RELAY_INTERVAL_S)


def stage_breakdown(delta: dict[str, float], images: int, wall_s: float) -> dict[str, object]:
    """Where the time went, from the node's histograms over one phase."""
    stages: dict[str, dict[str, float | None]] = {}
    busy = 0.0
    for stage in (*WORKER_STAGES, "forward"):
        count = delta.get(f'iqgate_stage_seconds_count{{stage="{stage}"}}', 0.0)
        total = delta.get(f'iqgate_stage_seconds_sum{{stage="{stage}"}}', 0.0)
        if stage in WORKER_STAGES:
            busy += total
        stages[stage] = {
            "observations": count,
            "ms_mean": _ms(total / count) if count else None,
            "ms_per_image": _ms(total / images),
        }
    batches = delta.get("iqgate_batch_size_count", 0.0)
    return {
        "stages": stages,
        "worker_busy_fraction": round(busy / wall_s, 3),
        "batches": batches,
        "batch_size_mean": round(delta.get("iqgate_batch_size_sum", 0.0) / batches, 2)
        if batches
        else None,
        "cstore_ms_p50": _ms_or_none(histogram_quantile(delta, CSTORE, 0.5)),
        "cstore_ms_p99": _ms_or_none(histogram_quantile(delta, CSTORE, 0.99)),
        "end_to_end_histogram_p50_s": histogram_quantile(delta, END_TO_END, 0.5),
        "end_to_end_histogram_p99_s": histogram_quantile(delta, END_TO_END, 0.99),
    }


def _ms_or_none(seconds: float | None) -> float | None:
    return None if seconds is None else _ms(seconds)


def outcomes(
    node: NodeProcess, corpus: Corpus, files: Sequence[Path], started_epoch: float
) -> dict[str, object]:
    """Per-image outcome, latency and verdict of ``files`` from the node's job table."""
    with spool_query(node.spool) as query:
        jobs = {job.sop_instance_uid: job for job in query.jobs()}
    latencies: list[float] = []
    finished: list[float] = []
    failed = missing = without_report = flagged = positives = 0
    for path in files:
        uid = corpus.uids[path]
        positives += corpus.labels[uid]
        job = jobs.get(uid)
        if job is None:
            missing += 1
            continue
        if job.state is JobState.FAILED:
            failed += 1
            continue
        delivered = job.state is JobState.DELIVERED and job.finished_at is not None
        if not delivered or not job.report_path or not Path(job.report_path).is_file():
            without_report += 1
            continue
        latencies.append(job.finished_at - job.received_at)
        finished.append(job.finished_at)
        flagged += job.verdict is JobVerdict.FLAGGED
    n = len(files)
    results = len(latencies)
    wall = max(finished) - started_epoch if finished else None
    return {
        "images": n,
        "results": results,
        "lost": n - results,
        "failed": failed,
        "missing": missing,
        "without_report": without_report,
        "flagged_fraction": round(flagged / results, 3) if results else None,
        "positive_fraction": round(positives / n, 3),
        "wall_s": round(wall, 2) if wall else None,
        "images_per_s": round(results / wall, 2) if wall else None,
        "latency_p50_s": round(quantile(latencies, 0.5), 3) if latencies else None,
        "latency_p90_s": round(quantile(latencies, 0.9), 3) if latencies else None,
        "latency_p99_s": round(quantile(latencies, 0.99), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
    }


def wait_done(node: NodeProcess, expected_jobs: int, images: int, what: str) -> None:
    """Wait until the spool holds ``expected_jobs`` jobs, each delivered or failed."""
    timeout_s = 120.0 + 10.0 * images
    try:
        wait_for(lambda: all_finished(node, expected_jobs), timeout_s, what, interval_s=0.2)
    except AssertionError as exc:
        states: dict[str, int] = {}
        for state in job_states(node).values():
            states[state.value] = states.get(state.value, 0) + 1
        raise RuntimeError(f"{exc}; job states now: {states}; node log: {node.log_path}") from None


def saturated_phase(
    node: NodeProcess, corpus: Corpus, clients: int, jobs_before: int
) -> dict[str, object]:
    """Push every saturated file at once from ``clients`` storescu processes; figures."""
    files = corpus.saturated
    time.sleep(4 * RELAY_INTERVAL_S)  # the previous phase's relayed updates arrive first
    before = parse_metrics(node.metrics())
    cpu_before = node_cpu_seconds(node)
    started = time.time()
    pushed = push(split(files, clients), node.port, options=corpus.syntax.storescu_options)
    wait_done(node, jobs_before + len(files), len(files), f"{corpus.syntax.name} results")
    after = settled_metrics(node, before, len(files))
    cpu = node_cpu_seconds(node) - cpu_before
    figures = outcomes(node, corpus, files, started)
    wall = figures["wall_s"] if isinstance(figures["wall_s"], float) else pushed.wall_s
    return {
        **figures,
        "acknowledged": pushed.succeeded,
        "push_images_per_s": round(len(files) / pushed.wall_s, 2),
        "node_cpu_ms_per_image": _ms(cpu / len(files)),
        **stage_breakdown(metric_delta(before, after), len(files), wall),
    }


def paced_push(
    files: Sequence[Path], port: int, options: Sequence[str], rate: float, lanes: int
) -> tuple[int, float]:
    """One ``storescu`` per file (one study each), file ``i`` sent at ``i / rate`` s.

    ``lanes`` threads share the schedule; a lane that falls behind sends at once.
    Returns the files acknowledged and the rate actually offered (images/s).
    """
    started = time.perf_counter()
    acknowledged = [0] * lanes
    sent_at: list[float] = []

    def lane(first: int) -> None:
        for index in range(first, len(files), lanes):
            time.sleep(max(0.0, started + index / rate - time.perf_counter()))
            sent_at.append(time.perf_counter())
            acknowledged[first] += push([[files[index]]], port, options=options).succeeded

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(min(lanes, len(files)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    span = max(sent_at) - min(sent_at)
    offered = (len(files) - 1) / span if span > 0 else rate
    return sum(acknowledged), offered


def paced_phase(
    node: NodeProcess, corpus: Corpus, clients: int, jobs_before: int, rate: float
) -> dict[str, object]:
    """Latency at ``rate`` images/s (half the saturated throughput)."""
    files = corpus.paced
    started = time.time()
    acknowledged, offered = paced_push(
        files, node.port, corpus.syntax.storescu_options, rate, clients
    )
    wait_done(node, jobs_before + len(files), len(files), f"paced {corpus.syntax.name} results")
    figures = outcomes(node, corpus, files, started)
    return {
        **figures,
        "acknowledged": acknowledged,
        "target_images_per_s": round(rate, 2),
        "offered_images_per_s": round(offered, 2),
    }


def node_run(
    corpora: Sequence[Corpus],
    models: Path,
    env: dict[str, str],
    *,
    clients: int,
    paced: bool,
    work: Path,
) -> dict[str, dict[str, object]]:
    """One node, every syntax in turn: warm-up, saturated push, then (optionally) paced."""
    say(f"starting the node (IQGATE_EXPLAIN={env.get('IQGATE_EXPLAIN')})")
    node = start_node(work, models, env)
    figures: dict[str, dict[str, object]] = {}
    try:
        jobs = 0
        for corpus in corpora:
            push([corpus.warmup], node.port, options=corpus.syntax.storescu_options)
        jobs += len(corpora)
        wait_done(node, jobs, len(corpora), "the warm-up results")
        for corpus in corpora:
            name = corpus.syntax.name
            say(f"  {name}: {len(corpus.saturated)} images from {clients} storescu at once")
            figures[name] = saturated_phase(node, corpus, clients, jobs)
            jobs += len(corpus.saturated)
            say(
                f"  {name}: {figures[name]['images_per_s']} images/s end to end, "
                f"p99 {figures[name]['latency_p99_s']} s"
            )
            rate = figures[name]["images_per_s"]
            if paced and corpus.paced and isinstance(rate, float) and rate > 0:
                say(f"  {name}: {len(corpus.paced)} studies paced at {rate / 2:.2f} images/s")
                figures[name]["paced"] = paced_phase(node, corpus, clients, jobs, rate / 2)
                jobs += len(corpus.paced)
    finally:
        kill_node(node)
        shutil.rmtree(work, ignore_errors=True)
    return figures
