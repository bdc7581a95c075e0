"""Faults and bad input: PACS outage and failure statuses, a full spool, SIGKILL, malformed DICOM.

Every function starts its own node and peers, drives one fault, and returns figures
that include the invariants the tests assert (``missing``, ``duplicates``, ...).
:func:`failed_checks` reads a campaign record and lists every invariant broken and
every target missed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE, _config

from iqgate.node.ops.relay import RELAY_INTERVAL_S
from iqgate.node.store.states import DeliveryState, JobState, JobVerdict
from iqgate_testkit.bad_inputs import PHANTOM_IDENTIFIERS, Expect, corpus, write_file
from iqgate_testkit.node_state import all_finished, delivery_uids, job_states, spool_query
from iqgate_testkit.peers import NodeProcess, port_open, start_node, storescp
from iqgate_testkit.soak import receivers
from iqgate_testkit.soak.fuzzing import attribute_outcomes, mutated_file_outcomes
from iqgate_testkit.soak.harness import (
    NODE_AE,
    descendant_pids,
    finish_push,
    free_port,
    kill_node,
    parse_metrics,
    push,
    receive_metrics,
    run_cli,
    start_push,
    wait_for,
    write_corpus,
)
from iqgate_testkit.soak.load import node_env

ORPHAN_GRACE_S = 20.0


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def sop_uid_of(path: Path, cache: dict[Path, str] | None = None) -> str | None:
    """SOP Instance UID of a received file (None while it is still being written)."""
    if cache is not None and path in cache:
        return cache[path]
    try:
        uid = str(dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)
    except (AttributeError, OSError, EOFError, ValueError):
        return None
    if cache is not None:
        cache[path] = uid
    return uid


@contextmanager
def reference_scp(port: int, folder: Path, status: int = 0) -> Iterator[None]:
    """The reference receiver on ``port``: a pynetdicom PACS answering ``status`` to every C-STORE."""
    process = subprocess.Popen(
        receivers.command(port, folder, "--status", hex(status)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port), 60, "the reference PACS")
        yield
    finally:
        process.terminate()
        process.wait(10)


# -- PACS faults ----------------------------------------------------------------------------
def forward_failures(node: NodeProcess) -> float:
    """Failed deliveries so far, from the node's ``/metrics``."""
    return sum(
        v
        for k, v in parse_metrics(node.metrics()).items()
        if k.startswith("iqgate_forwards_total{") and "failure" in k
    )


def pacs_outage(work: Path, models: Path, *, images: int, outage_s: float) -> dict[str, object]:
    """PACS down while images arrive, then back: every result delivered, none twice."""
    port = free_port()
    files = write_corpus(work / "in-outage", 1, images, 256, 256, f"outage-{time.time()}")[0]
    env = node_env(
        {
            "IQGATE_PACS": f"STORESCP@127.0.0.1:{port}",
            "IQGATE_OVERLAYS": "all",
            "IQGATE_RETRY_BASE_S": "0.5",
            "IQGATE_RETRY_MAX_S": str(max(1.0, min(30.0, outage_s / 6))),
            "IQGATE_RETRY_LIMIT": "1000",
        }
    )
    node = start_node(work / "node-outage", models, env)
    try:
        pushed = push([files], node.port)
        time.sleep(outage_s)
        # On a busy host the first result may not be ready yet: the outage lasts until
        # the node has tried (and failed) to deliver at least once.
        wait_for(lambda: forward_failures(node) > 0, 300, "a delivery tried during the outage")
        failures = forward_failures(node)
        with storescp(work / "pacs-outage", port) as pacs:
            back = time.monotonic()
            wait_for(lambda: all_finished(node, images), 300 + outage_s, "every result delivered")
            delivered_s = time.monotonic() - back
            time.sleep(1.0)
            received = [sop_uid_of(p) for p in pacs.files()]
        expected = delivery_uids(node)
        return {
            "images": images,
            "acknowledged": pushed.succeeded,
            "outage_s": outage_s,
            "forward_failures_during_outage": failures,
            "outputs": len(expected),
            "received_at_pacs": len(received),
            "missing": len(expected - set(received)),
            "duplicates": len(received) - len(set(received)),
            "delivered_within_s_of_pacs_back": round(delivered_s, 1),
        }
    finally:
        kill_node(node)


def pacs_failure_status(work: Path, models: Path, *, images: int) -> dict[str, object]:
    """A PACS answering 0xA700: dead letters, visible; retried once the PACS heals."""
    port = free_port()
    files = write_corpus(work / "in-dead", 1, images, 256, 256, f"dead-{time.time()}")[0]
    destination = f"SICKPACS@127.0.0.1:{port}"
    env = node_env(
        {
            "IQGATE_PACS": destination,
            "IQGATE_RETRY_LIMIT": "3",
            "IQGATE_RETRY_BASE_S": "0.2",
            "IQGATE_RETRY_MAX_S": "0.5",
        }
    )
    node = start_node(work / "node-dead", models, env)
    try:
        with reference_scp(port, work / "sick", status=0xA700):
            push([files], node.port)

            def all_dead() -> bool:
                with spool_query(node.spool) as query:
                    counts = query.deliveries_by_state()
                dead = sum(n for (_, state), n in counts.items() if state is DeliveryState.DEAD)
                return dead >= images and dead == sum(counts.values())

            wait_for(all_dead, 120, "every delivery to become a dead letter")
            metrics = parse_metrics(node.metrics())
            listing = run_cli(node.env, "jobs", "list")
        dead_gauge = metrics.get(f'iqgate_dead_letters{{destination="{destination}"}}', 0.0)
        with reference_scp(port, work / "healed"):
            retried = run_cli(node.env, "jobs", "retry")
            wait_for(lambda: all_finished(node, images), 120, "delivery after the retry")
            received = len(list((work / "healed").glob("*.dcm")))
        return {
            "images": images,
            "deliveries": len(delivery_uids(node)),
            "dead_letters_metric": dead_gauge,
            "dead_letters_listed": listing.count("dead letter"),
            "retry_output": retried.strip(),
            "received_after_retry": received,
        }
    finally:
        kill_node(node)


# -- a full spool ----------------------------------------------------------------------------
def spool_limit(work: Path, models: Path) -> dict[str, object]:
    """IQGATE_SPOOL_MAX_BYTES reached: 0xA700 answered; room again once jobs are purged."""
    files = write_corpus(work / "in-limit", 1, 8, 256, 256, f"limit-{time.time()}")[0]
    size = files[0].stat().st_size
    env = node_env(
        {
            "IQGATE_SPOOL_MAX_BYTES": str(int(size * 3.5)),
            "IQGATE_RETENTION_S": "0",
            "IQGATE_HOUSEKEEPING_INTERVAL_S": "0.5",
        }
    )
    node = start_node(work / "node-limit", models, env)
    try:
        first = push([files], node.port, options=["--no-halt"])
        refused = [f for f in files if f not in set(first.acknowledged)]
        counted = receive_metrics(node, len(files))
        wait_for(lambda: not job_states(node), 120, "the accepted jobs to be purged")
        retried = refused[:3]  # what fits under the limit once the spool is empty
        second = push([retried], node.port, options=["--no-halt"])
        return {
            "limit_bytes": int(size * 3.5),
            "image_bytes": size,
            "first_push_acknowledged": first.succeeded,
            "refused_0xA700": int(
                counted.get('iqgate_instances_total{outcome="out_of_resources"}', 0)
            ),
            "retried_after_purge": len(retried),
            "retried_acknowledged": second.succeeded,
            "refused_again": len(retried) - second.succeeded,
        }
    finally:
        kill_node(node)


def _mount_tmpfs(folder: Path, size: str) -> str | None:
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if run.returncode == 0 else (run.stderr.strip() or "mount failed")


def disk_full(work: Path, models: Path, *, images: int = 16) -> dict[str, object]:
    """The spool's file system fills up: 0xA700, nothing half-written, recovery on growth."""
    mountpoint = work / "smallfs"
    problem = _mount_tmpfs(mountpoint, "1200k")
    if problem is not None:
        return {"skipped": f"cannot mount a small tmpfs for the spool ({problem})"}
    files = write_corpus(work / "in-full", 1, images, 256, 256, f"full-{time.time()}")[0]
    env = node_env({"IQGATE_SPOOL_DIR": str(mountpoint / "spool")})
    node = None
    try:
        node = start_node(work / "node-full", models, env)
        first = push([files], node.port, options=["--no-halt"])
        spool = mountpoint / "spool"
        with spool_query(node.spool) as query:
            recorded = query.recorded_paths()
        on_disk = {str(p.relative_to(spool)) for p in (spool / "objects").glob("*/*.dcm")}
        leftovers = list((spool / "tmp").iterdir())
        acked_uids = {sop_uid_of(p) for p in first.acknowledged}
        missing = acked_uids - set(job_states(node))
        subprocess.run(["mount", "-o", "remount,size=16m", str(mountpoint)], check=True)
        refused = [f for f in files if f not in set(first.acknowledged)]
        second = push([refused], node.port, options=["--no-halt"])
        counted = receive_metrics(node, images + len(refused))
        return {
            "images": images,
            "first_push_acknowledged": first.succeeded,
            "refused_0xA700": int(
                counted.get('iqgate_instances_total{outcome="out_of_resources"}', 0)
            ),
            "files_without_job": len(on_disk - recorded),
            "jobs_without_file": len(recorded - on_disk),
            "temporary_files_left": len(leftovers),
            "acknowledged_but_missing": len(missing),
            "second_push_acknowledged": second.succeeded,
            "jobs_in_the_end": len(job_states(node)),
        }
    finally:
        if node is not None:
            kill_node(node)
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


# -- SIGKILL under load ------------------------------------------------------------------------
def kill_trials(
    work: Path,
    models: Path,
    *,
    trials: int,
    images: int,
    seed: int = 6,
    kill_window_s: float = 3.0,
) -> dict[str, object]:
    """SIGKILL the node at random moments under load; restart; nothing acknowledged lost.

    Each trial kills at a uniform random time in (0.2 s, ``kill_window_s``) after three
    scanners start pushing: while receiving, assessing or forwarding.
    """
    rng = random.Random(seed)
    per_trial: list[dict[str, object]] = []
    cache: dict[Path, str] = {}
    with storescp(work / "pacs-kill") as pacs:
        for trial in range(trials):
            batches = write_corpus(
                work / f"in-kill-{trial}", 3, images // 3, 256, 256, f"kill-{trial}-{time.time()}"
            )
            env = node_env({"IQGATE_PACS": pacs.destination, "IQGATE_BATCH_MAX": "4"})
            node = start_node(work / f"node-kill-{trial}", models, env)
            pushers = start_push(batches, node.port)
            started = time.perf_counter()
            kill_at = rng.uniform(0.2, kill_window_s)
            time.sleep(kill_at)
            children = descendant_pids(node.process.pid)
            node.kill()  # SIGKILL the node alone: what it leaves behind is measured
            pushed = finish_push(pushers, started)
            # A decode process still starting (importing torch) checks on its parent
            # only once started: allow for that before calling it orphaned.
            deadline = time.monotonic() + ORPHAN_GRACE_S
            while time.monotonic() < deadline and any(alive(pid) for pid in children):
                time.sleep(0.2)
            orphans = [pid for pid in children if alive(pid)]
            for pid in orphans:  # measured; now out of the way of the next trial
                os.kill(pid, signal.SIGKILL)
            acked = {sop_uid_of(p) for p in pushed.acknowledged}
            restarted = start_node(
                work / f"node-kill-{trial}", models, env | {"IQGATE_PORT": str(node.port)}
            )
            try:
                wait_for(
                    lambda node=restarted, wanted=acked: (
                        wanted <= set(job_states(node)) and all_finished(node, len(wanted))
                    ),
                    600,
                    "every acknowledged instance delivered after the restart",
                )
                expected = delivery_uids(restarted)
                time.sleep(1.0)
                received = [u for p in pacs.files() if (u := sop_uid_of(p, cache)) in expected]
                per_trial.append(
                    {
                        "kill_at_s": round(kill_at, 2),
                        "acknowledged": len(acked),
                        "jobs_after_restart": len(job_states(restarted)),
                        "acknowledged_lost": len(acked - set(job_states(restarted))),
                        "outputs": len(expected),
                        "outputs_missing_at_pacs": len(expected - set(received)),
                        "outputs_sent_twice": len(received) - len(set(received)),
                        "processes_left_by_the_killed_node": len(orphans),
                    }
                )
                restarted.terminate()
            finally:
                if restarted.process.poll() is None:
                    kill_node(restarted)
    return {
        "kill_window_s": kill_window_s,
        "trials": per_trial,
        "acknowledged_lost": sum(int(t["acknowledged_lost"]) for t in per_trial),
        "outputs_missing_at_pacs": sum(int(t["outputs_missing_at_pacs"]) for t in per_trial),
        "outputs_sent_twice": sum(int(t["outputs_sent_twice"]) for t in per_trial),
        "processes_left_by_killed_nodes": sum(
            int(t["processes_left_by_the_killed_node"]) for t in per_trial
        ),
    }


# -- bad input ---------------------------------------------------------------------------------
def store_raw(path: Path, port: int, sop_class: str, syntax: str) -> int | None:
    """C-STORE a file's data set bytes as they are; the status, or None without an answer."""
    _config.STORE_SEND_CHUNKED_DATASET = True  # send the file's bytes, never decode them
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title=NODE_AE)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(path)
        return int(status.Status) if "Status" in status else None
    finally:
        if assoc.is_established:
            assoc.release()


def bad_inputs(work: Path, models: Path, *, fuzz_examples: int) -> dict[str, object]:
    """Send the malformed corpus; every case gets its defined outcome; the node serves on."""
    cases = corpus()
    node = start_node(work / "node-bad", models, node_env())
    try:
        outcomes: dict[str, dict[str, object]] = {}
        for case in cases:
            path = write_file(case, work / "corpus")
            status = store_raw(path, node.port, case.sop_class_uid, case.transfer_syntax)
            outcomes[case.name] = {"status": None if status is None else f"0x{status:04X}"}
        good = write_corpus(work / "in-good", 1, 1, 64, 64, f"good-{time.time()}")[0]
        after = push([good], node.port)
        stored = [c for c in cases if c.expect is not Expect.REFUSED]
        wait_for(lambda: all_finished(node, len(stored) + 1), 120, "the stored cases to finish")
        with spool_query(node.spool) as query:
            jobs = {j.sop_instance_uid: (j.state, j.verdict, j.reason or "") for j in query.jobs()}
        logs = node.logs()
        time.sleep(2 * RELAY_INTERVAL_S)  # the pipeline's last counter updates reach /metrics
        metrics = node.metrics()
        wrong = []
        for case in cases:
            outcome = outcomes[case.name]
            status = outcome["status"]
            state, verdict, reason = jobs.get(case.sop_instance_uid, (None, None, ""))
            if case.expect is Expect.REFUSED:
                ok = status is not None and int(str(status), 16) in case.statuses
                ok = ok and state is None and case.reason in logs
                outcome["outcome"] = "refused"
            elif case.expect is Expect.FAILED:
                ok = status == "0x0000" and state is JobState.FAILED and case.reason in reason
                outcome["outcome"] = f"failed: {reason[:160]}"
            else:
                ok = status == "0x0000" and verdict is JobVerdict.NOT_ASSESSED
                outcome["outcome"] = "not assessed"
            if not ok:
                wrong.append(case.name)
        leaked = [v for v in PHANTOM_IDENTIFIERS.values() if v in logs or v in metrics]
        figures = {
            "cases": len(cases),
            "outcomes": outcomes,
            "wrong_outcomes": wrong,
            "good_image_after_acknowledged": after.succeeded,
            "node_alive": node.process.poll() is None,
            "identifiers_leaked": leaked,
            "jobs_failed_decode": parse_metrics(metrics).get(
                'iqgate_jobs_failed_total{stage="decode"}', 0.0
            ),
        }
    finally:
        kill_node(node)
    figures["fuzz"] = fuzz_decode_path(fuzz_examples)
    return figures


def fuzz_decode_path(examples: int, seed: int = 0) -> dict[str, object]:
    """Mutated files and random attributes; decoding must raise only ImagingError."""
    files = mutated_file_outcomes(examples, seed)
    attributes = attribute_outcomes(examples, seed)
    return {
        "mutated_files": files,
        "random_attributes": attributes,
        "unexpected": [*files["unexpected"], *attributes["unexpected"]],  # type: ignore[misc]
    }


# -- verdict of a campaign run -------------------------------------------------------------------
def verdict(record: dict[str, object]) -> tuple[list[str], list[str]]:
    """(invariants broken, targets missed) in a campaign record; empty lists: all held.

    Invariants (nothing acknowledged lost, defined outcomes, no crash) hold on any
    machine; targets (rates, latency, memory) are figures that mean something only on
    an idle machine, so they are reported, not enforced, by the exit code.
    """
    broken: list[str] = []
    missed: list[str] = []

    def invariant(condition: bool, message: str) -> None:
        if not condition:
            broken.append(message)

    def target(condition: bool, message: str) -> None:
        if not condition:
            missed.append(message)

    load = record.get("load") or {}
    for key, figures in load.items():  # type: ignore[union-attr]
        if key.startswith("rate_"):
            target(figures["ratio_to_storescp"] > 1.0, f"{key}: not above storescp")
            target(figures["ratio_to_pynetdicom"] >= 0.8, f"{key}: below 0.8x pynetdicom")
    latency = load.get("saturated_latency") if isinstance(load, dict) else None
    if latency:
        target(latency["client_p99_ms"] < 100, "C-STORE p99 not under 100 ms while saturated")
        target(latency["queued_at_probe_end"] > 0, "workers were not saturated during the probe")
    memory = (record.get("memory") or {}).get("memory")  # type: ignore[union-attr]
    if memory:
        growth = memory["rss_last_tenth_mb"] - memory["rss_first_tenth_mb"]
        target(growth < max(50.0, 0.1 * memory["rss_first_tenth_mb"]), "memory grew")
        invariant(memory["acknowledged"] == memory["images"], "soak: an image was refused")
        invariant(memory["spool_jobs_left"] == 0, "soak: delivered jobs were not purged")
    faults = record.get("faults") or {}
    if faults:
        outage = faults["pacs_outage"]  # type: ignore[index]
        invariant(outage["missing"] == 0, "a result was lost in the PACS outage")
        invariant(outage["duplicates"] == 0, "a result was delivered twice after the outage")
        dead = faults["pacs_failure_status"]  # type: ignore[index]
        invariant(dead["dead_letters_metric"] == dead["deliveries"], "dead letters not in metrics")
        invariant(dead["dead_letters_listed"] == dead["deliveries"], "dead letters not listed")
        invariant(dead["received_after_retry"] == dead["deliveries"], "retry did not deliver")
        limit = faults["spool_limit"]  # type: ignore[index]
        invariant(limit["refused_0xA700"] > 0 and limit["refused_again"] == 0, "spool limit")
        full = faults["disk_full"]  # type: ignore[index]
        if "skipped" not in full:
            invariant(full["acknowledged_but_missing"] == 0, "disk full: acknowledged image lost")
            invariant(full["files_without_job"] == 0, "disk full: files without a job")
            invariant(full["temporary_files_left"] == 0, "disk full: temporary files left")
            invariant(full["jobs_in_the_end"] == full["images"], "disk full: no recovery")
    kill = (record.get("kill") or {}).get("sigkill")  # type: ignore[union-attr]
    if kill:
        invariant(kill["acknowledged_lost"] == 0, "SIGKILL: an acknowledged instance was lost")
        invariant(kill["outputs_missing_at_pacs"] == 0, "SIGKILL: a result never reached PACS")
        invariant(kill["processes_left_by_killed_nodes"] == 0, "SIGKILL: orphaned processes")
    bad = (record.get("badinput") or {}).get("bad_input")  # type: ignore[union-attr]
    if bad:
        invariant(not bad["wrong_outcomes"], f"bad input outcomes: {bad['wrong_outcomes']}")
        invariant(bad["node_alive"] and bad["good_image_after_acknowledged"] == 1, "node died")
        invariant(not bad["identifiers_leaked"], "patient identifiers in logs or metrics")
        invariant(not bad["fuzz"]["unexpected"], "fuzzing found unexpected exceptions")
    return broken, missed
