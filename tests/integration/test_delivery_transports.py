"""Each transport through the delivery loop to a real peer: C-STORE over TLS to DCMTK
storescp, STOW-RS to Orthanc's DICOMweb plugin, signed reports to a webhook receiver."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom import dcmread

from iqgate.config import load_settings
from iqgate.node.delivery.build import sender_for
from iqgate.node.store.records import OutputFile
from iqgate.node.store.states import DeliveryState
from iqgate_testkit.certificates import make_pki
from iqgate_testkit.delivery_queue import deliver_once, spool_with_outputs
from iqgate_testkit.dicom_factory import write_image
from iqgate_testkit.peers import orthanc, require, storescp, wait_for
from iqgate_testkit.webhook_receiver import WebhookReceiver

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def dicom_outputs(folder: Path, count: int = 2) -> list[OutputFile]:
    """``count`` small DICOM files standing in for result files."""
    outputs = []
    for n in range(count):
        path = write_image(folder / f"out{n}.dcm", seed=n, sop_uid=f"2.25.7{n}")
        outputs.append(OutputFile("sr", path, f"2.25.7{n}"))
    return outputs


def states(spool, destination: str) -> dict[DeliveryState, int]:
    return {
        state: count
        for (name, state), count in spool.query.deliveries_by_state().items()
        if name == destination
    }


def last_error(spool) -> str:
    """The last error recorded for the (one) delivery of ``spool``."""
    [row] = spool.db.connection().execute("SELECT last_error FROM deliveries").fetchall()
    return str(row["last_error"])


def deliver(tmp_path: Path, url: str, outputs: list[OutputFile]):
    """Queue ``outputs`` for the destination ``url`` and run one delivery round."""
    settings = load_settings(environ={"IQGATE_PACS": url})
    [destination] = settings.destinations
    spool = spool_with_outputs(tmp_path / "spool", outputs, [str(destination)])
    deliver_once(spool, str(destination), sender_for(destination, settings))
    return spool, str(destination)


def test_dicoms_delivers_over_tls_with_a_client_certificate(tmp_path):
    pki = make_pki(tmp_path / "pki")
    tls = ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca), "-rc"]
    with storescp(tmp_path, options=tls) as pacs:
        url = (
            f"dicoms://{pacs.ae_title}@127.0.0.1:{pacs.port}"
            f"?ca={pki.ca}&cert={pki.client_cert}&key={pki.client_key}"
        )
        spool, name = deliver(tmp_path, url, dicom_outputs(tmp_path / "results"))
        assert states(spool, name) == {DeliveryState.DELIVERED: 2}
        wait_for(lambda: len(pacs.files()) == 2, 30, "both files at storescp")
        received = sorted(
            str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in pacs.files()
        )
        assert received == ["2.25.70", "2.25.71"]


def test_dicoms_refuses_a_peer_its_ca_did_not_sign(tmp_path):
    pki, other = make_pki(tmp_path / "pki"), make_pki(tmp_path / "other")
    tls = ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca), "-ic"]
    with storescp(tmp_path, options=tls) as pacs:
        url = f"dicoms://{pacs.ae_title}@127.0.0.1:{pacs.port}?ca={other.ca}"
        spool, name = deliver(tmp_path, url, dicom_outputs(tmp_path / "results", 1))
        assert states(spool, name) == {DeliveryState.PENDING: 1}
        assert "association not established" in last_error(spool)
        assert pacs.files() == []


@contextmanager
def dicomweb_orthanc(tmp_path: Path) -> Iterator[object]:
    """Orthanc with its DICOMweb plugin at /dicom-web and one user, iqgate:s3cret."""
    require("Orthanc")
    if not DICOMWEB_PLUGIN.is_file():
        pytest.skip("needs Orthanc's DICOMweb plugin (Debian orthanc-dicomweb, in .ci/run)")
    settings = {
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "AuthenticationEnabled": True,
        "RegisteredUsers": {"iqgate": "s3cret"},
    }
    with orthanc(tmp_path, settings) as server:
        yield server


def orthanc_get(server, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}{path}",
        headers={"Authorization": "Basic " + base64.b64encode(b"iqgate:s3cret").decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def stow_to(server, tmp_path: Path, password: str, count: int):
    """Deliver ``count`` files to Orthanc by STOW-RS as user iqgate with ``password``."""
    (tmp_path / "password").write_text(f"{password}\n")
    url = (
        f"dicomweb+http://iqgate@127.0.0.1:{server.http_port}/dicom-web"
        f"?password_file={tmp_path / 'password'}"
    )
    return deliver(tmp_path, url, dicom_outputs(tmp_path / "results", count))


def test_stowrs_stores_every_file_at_orthanc_with_basic_authentication(tmp_path):
    with dicomweb_orthanc(tmp_path) as server:
        spool, name = stow_to(server, tmp_path, "s3cret", 2)
        assert states(spool, name) == {DeliveryState.DELIVERED: 2}
        stored = orthanc_get(server, "/instances?expand")
        assert sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in stored) == [
            "2.25.70",
            "2.25.71",
        ]


def test_stowrs_with_a_wrong_password_is_a_failed_attempt(tmp_path):
    with dicomweb_orthanc(tmp_path) as server:
        spool, name = stow_to(server, tmp_path, "wrong", 1)
        assert states(spool, name) == {DeliveryState.PENDING: 1}
        assert last_error(spool).startswith("HTTP 401")
        assert orthanc_get(server, "/instances") == []


def report_output(folder: Path) -> OutputFile:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "2.25.1001.report.json"
    path.write_text(json.dumps([{"verdict": "flagged", "probability": 0.93}]))
    return OutputFile("report", path, "2.25.1001")


def test_webhook_posts_signed_reports_and_retries_a_failed_post(tmp_path):
    (tmp_path / "secret").write_text("hook-secret\n")
    output = report_output(tmp_path / "results")
    with WebhookReceiver(b"hook-secret", fail_first=1) as receiver:
        url = f"webhook+http://127.0.0.1:{receiver.port}/hooks/iqgate?secret_file={tmp_path / 'secret'}"
        settings = load_settings(environ={"IQGATE_PACS": url})
        [destination] = settings.destinations
        spool = spool_with_outputs(tmp_path / "spool", [output], [str(destination)])
        sender = sender_for(destination, settings)
        deliver_once(spool, str(destination), sender)
        assert states(spool, str(destination)) == {DeliveryState.PENDING: 1}
        assert last_error(spool).startswith("HTTP 500")
        deliver_once(spool, str(destination), sender)
        assert states(spool, str(destination)) == {DeliveryState.DELIVERED: 1}
    [(headers, body)] = receiver.accepted
    assert body == output.path.read_bytes() and receiver.rejected == 0
    assert headers["Content-Type"] == "application/json"


def test_webhook_signed_with_another_secret_is_refused_by_the_receiver(tmp_path):
    (tmp_path / "secret").write_text("not-the-shared-one\n")
    output = report_output(tmp_path / "results")
    with WebhookReceiver(b"hook-secret") as receiver:
        url = f"webhook+http://127.0.0.1:{receiver.port}/hook?secret_file={tmp_path / 'secret'}"
        spool, _ = deliver(tmp_path, url, [output])
    assert receiver.rejected == 1 and receiver.accepted == []
    assert last_error(spool).startswith("HTTP 401")
