"""The node under faults, bad input and strangers, against real peers.

The scenarios are the hardening campaign's own (iqgate_testkit.soak), run small: the campaign
runs them with real minutes and many trials and writes the figures to
docs/reliability.md; these tests assert the invariants on every run.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from iqgate_testkit.dicom_factory import write_image
from iqgate_testkit.peers import http_get, require, running_node, storescu, wait_for

ROOT = Path(__file__).resolve().parents[2]
from iqgate_testkit.soak import faults
from iqgate_testkit.soak.harness import build_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return build_models(tmp_path_factory.mktemp("models"), input_size=32)


def test_malformed_inputs_get_their_defined_outcome_and_leak_no_identifiers(tmp_path, models_dir):
    require("storescu")
    figures = faults.bad_inputs(tmp_path, models_dir, fuzz_examples=10)
    assert figures["wrong_outcomes"] == [], json.dumps(figures["outcomes"], indent=1)
    assert figures["node_alive"] and figures["good_image_after_acknowledged"] == 1
    assert figures["identifiers_leaked"] == []
    failing = [o for o in figures["outcomes"].values() if o["outcome"].startswith("failed:")]
    assert figures["jobs_failed_decode"] == len(failing) > 0
    assert figures["fuzz"]["unexpected"] == []


def test_results_wait_out_a_pacs_outage_and_arrive_exactly_once(tmp_path, models_dir):
    require("storescu", "storescp")
    figures = faults.pacs_outage(tmp_path, models_dir, images=3, outage_s=3.0)
    assert figures["acknowledged"] == 3 and figures["forward_failures_during_outage"] > 0
    assert figures["outputs"] >= 6  # an SC overlay and an SR per image
    assert (figures["missing"], figures["duplicates"]) == (0, 0)


def test_failure_statuses_from_pacs_become_visible_dead_letters_and_retry_delivers(
    tmp_path, models_dir
):
    require("storescu")
    figures = faults.pacs_failure_status(tmp_path, models_dir, images=2)
    deliveries = figures["deliveries"]
    assert deliveries >= 2
    assert figures["dead_letters_metric"] == figures["dead_letters_listed"] == deliveries
    assert figures["received_after_retry"] == deliveries


def test_a_spool_over_its_limit_answers_out_of_resources_and_recovers(tmp_path, models_dir):
    require("storescu")
    figures = faults.spool_limit(tmp_path, models_dir)
    assert 1 <= figures["first_push_acknowledged"] < 8
    assert figures["refused_0xA700"] == 8 - figures["first_push_acknowledged"]
    assert figures["refused_again"] == 0


def test_a_full_disk_answers_out_of_resources_loses_nothing_and_recovers(tmp_path, models_dir):
    require("storescu")
    figures = faults.disk_full(tmp_path, models_dir, images=16)
    if "skipped" in figures:
        pytest.skip(figures["skipped"])
    assert 0 < figures["first_push_acknowledged"] < 16 and figures["refused_0xA700"] > 0
    assert figures["acknowledged_but_missing"] == 0
    assert figures["files_without_job"] == figures["temporary_files_left"] == 0
    assert figures["jobs_in_the_end"] == 16


def test_sigkill_at_random_moments_loses_no_acknowledged_instance(tmp_path, models_dir):
    require("storescu", "storescp")
    figures = faults.kill_trials(tmp_path, models_dir, trials=2, images=12, seed=11)
    assert figures["acknowledged_lost"] == 0
    assert figures["outputs_missing_at_pacs"] == 0
    assert figures["processes_left_by_killed_nodes"] == 0
    for trial in figures["trials"]:
        assert trial["outputs_sent_twice"] <= 2 * 32  # only deliveries in flight repeat


# -- security ---------------------------------------------------------------------------
def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def certificate(folder: Path, name: str, ca: str, extension: str) -> tuple[Path, Path]:
    key, csr, crt = (folder / f"{name}.{s}" for s in ("key", "csr", "crt"))
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={name}",
    )
    ext = folder / f"{name}.ext"
    ext.write_text(extension)
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        f"{folder / ca}.crt",
        "-CAkey",
        f"{folder / ca}.key",
        "-CAcreateserial",
        "-out",
        str(crt),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return key, crt


def authority(folder: Path, name: str) -> Path:
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(folder / f"{name}.key"),
        "-out",
        str(folder / f"{name}.crt"),
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
    )
    return folder / f"{name}.crt"


def test_tls_client_certificates_allow_list_private_spool_and_http_bind(tmp_path, models_dir):
    require("storescu", "openssl")
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = authority(pki, "hospital-ca")
    authority(pki, "rogue-ca")
    server_key, server_crt = certificate(
        pki, "iqgate", "hospital-ca", "subjectAltName=IP:127.0.0.1"
    )
    client_key, client_crt = certificate(
        pki, "scanner", "hospital-ca", "extendedKeyUsage=clientAuth"
    )
    rogue_key, rogue_crt = certificate(pki, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth")
    image = write_image(tmp_path / "in" / "dx.dcm", seed=41)
    env = {
        "IQGATE_TLS_CERT": str(server_crt),
        "IQGATE_TLS_KEY": str(server_key),
        "IQGATE_TLS_CA": str(ca),
        "IQGATE_ALLOWED_CALLING_AES": "SCANNER@127.0.0.1,CT1@10.9.9.9",
        "IQGATE_HTTP_HOST": "127.0.0.2",
    }

    def tls(key: Path, crt: Path) -> list[str]:
        return ["+tls", str(key), str(crt), "+cf", str(ca)]

    with running_node(tmp_path / "node", models_dir, env) as node:
        assert storescu([image], node.port, options=tls(client_key, client_crt)).returncode == 0
        refusals = {
            "plain TCP": storescu([image], node.port),
            "TLS without a client certificate": storescu(
                [image], node.port, options=["+tla", "+cf", str(ca)]
            ),
            "a certificate from another CA": storescu(
                [image], node.port, options=tls(rogue_key, rogue_crt)
            ),
            "an allowed AE from the wrong host": storescu(
                [image], node.port, calling="CT1", options=tls(client_key, client_crt)
            ),
        }
        accepted = [name for name, run in refusals.items() if run.returncode == 0]
        assert accepted == []
        assert storescu([image], node.port, options=tls(client_key, client_crt)).returncode == 0
        url = f"http://127.0.0.2:{node.http_port}/metrics"
        wait_for(  # extra receiving processes relay their counts every 0.25 s
            lambda: b'iqgate_associations_total{outcome="rejected"} 1.0' in http_get(url)[1],
            10,
            "the rejected association in /metrics, served on 127.0.0.2",
        )
        assert http_get(f"http://127.0.0.1:{node.http_port}/metrics")[0] == 0
        assert '"calling_ae": "CT1"' in node.logs() and node.process.poll() is None
        spool = node.spool
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [spool, *spool.rglob("*")]}
        assert any(p.suffix == ".dcm" for p in modes)
        assert {str(p): oct(m) for p, m in modes.items() if m & 0o077} == {}


def test_the_campaign_runs_from_one_command(tmp_path):
    require("storescu", "storescp")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "soak.py"),
            "load",
            "--short",
            "--work",
            str(tmp_path),
            "--out",
            str(tmp_path / "figures.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((tmp_path / "figures.jsonl").read_text().splitlines()[-1])
    rate = next(v for k, v in record["load"].items() if k.startswith("rate_"))
    assert set(rate["images_per_s"]) == {"pynetdicom", "pynetdicom+fsync", "storescp", "iqgate"}
    assert record["load"]["saturated_latency"]["client_p99_ms"] > 0
