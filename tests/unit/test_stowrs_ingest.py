"""STOW-RS ingest: a DICOMweb client stores into the spool with the SCP's checks, answers
per instance, and proves who it is with a token or a client certificate."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.dataset import Dataset

from iqgate.config import Settings, load_settings, parse_destination
from iqgate.node.delivery.stowrs import StowRsSender, multipart_body
from iqgate.node.ingest.stowrs import StowFailure, StowTokensError, read_tokens, stow_server
from iqgate.node.ops.metrics import NodeMetrics
from iqgate.node.store.records import OutputFile
from iqgate.node.store.spool import Spool
from iqgate.node.store.states import DeliveryState
from iqgate_testkit.certificates import make_pki
from iqgate_testkit.delivery_queue import deliver_once, spool_with_outputs
from iqgate_testkit.dicom_factory import make_image

TOKEN = "token-of-the-cloud-pacs-0123"


@pytest.fixture()
def tokens(tmp_path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# caller token\nCLOUDPACS {TOKEN}\n")
    return path


@contextmanager
def stow_node(tmp_path: Path, **env: str) -> Iterator[tuple[str, Spool, NodeMetrics]]:
    """The STOW-RS endpoint of these settings on a free port: (base URL, spool, metrics)."""
    settings: Settings = load_settings(
        environ={
            "IQGATE_SPOOL_DIR": str(tmp_path / "spool"),
            "IQGATE_STOW_HOST": "127.0.0.1",
            "IQGATE_STOW_PORT": "0",
            **{f"IQGATE_{k.upper()}": v for k, v in env.items()},
        }
    )
    spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes)
    metrics = NodeMetrics()
    server = stow_server(settings, spool, metrics)
    assert server is not None
    server.start()
    scheme = "https" if settings.tls_enabled else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.port}", spool, metrics
    finally:
        server.stop()


def part10(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def post(url: str, files: list[bytes], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """POST ``files`` as STOW-RS; (status, DICOM JSON answer or {})."""
    request = urllib.request.Request(
        url,
        data=multipart_body(files, "b0und4ry"),
        headers={
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=b0und4ry',
            "Authorization": f"Bearer {TOKEN}",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if exc.headers.get_content_type().endswith("json") else {}


def failures(answer: dict) -> dict[str, int]:
    return {
        item.get("00081155", {"Value": [""]})["Value"][0]: item["00081197"]["Value"][0]
        for item in answer.get("00081198", {}).get("Value", [])
    }


def test_a_dicomweb_client_stores_durably_as_the_token_s_caller(tmp_path, tokens):
    images = [make_image(seed=n) for n in range(2)]
    with stow_node(tmp_path, stow_tokens_file=str(tokens)) as (url, spool, metrics):
        client = DICOMwebClient(url, headers={"Authorization": f"Bearer {TOKEN}"})
        answer = client.store_instances(images)
        jobs = spool.query.jobs()
    stored = [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence]
    assert sorted(stored) == sorted(str(ds.SOPInstanceUID) for ds in images)
    assert sorted(j.sop_instance_uid for j in jobs) == sorted(stored)
    assert {j.calling_ae for j in jobs} == {"CLOUDPACS"}
    spooled = dcmread(jobs[0].path)
    assert spooled.file_meta.SourceApplicationEntityTitle == "CLOUDPACS"
    assert spooled.PixelData == next(
        ds.PixelData for ds in images if ds.SOPInstanceUID == spooled.SOPInstanceUID
    )
    assert metrics.stow_instances.labels("stored")._value.get() == 2


def test_large_requests_in_chunked_transfer_coding_are_stored(tmp_path, tokens):
    image = make_image(seed=3, rows=800, columns=800)  # > 1 MB: the client sends chunks
    with stow_node(tmp_path, stow_tokens_file=str(tokens)) as (url, spool, _):
        DICOMwebClient(url, headers={"Authorization": f"Bearer {TOKEN}"}).store_instances([image])
        assert [j.sop_instance_uid for j in spool.query.jobs()] == [str(image.SOPInstanceUID)]


def test_each_refused_instance_has_its_failure_reason_and_the_rest_is_stored(tmp_path, tokens):
    good, truncated = make_image(seed=1), make_image(seed=2)
    truncated.PixelData = truncated.PixelData[:100]
    with stow_node(tmp_path, stow_tokens_file=str(tokens)) as (url, spool, _):
        status, answer = post(f"{url}/studies", [part10(good), part10(truncated), b"not dicom"])
        jobs = spool.query.jobs()
    assert status == 202
    assert failures(answer) == {
        str(truncated.SOPInstanceUID): StowFailure.DATA_SET_DOES_NOT_MATCH,
        "": StowFailure.CANNOT_UNDERSTAND,
    }
    assert [j.sop_instance_uid for j in jobs] == [str(good.SOPInstanceUID)]


def test_instances_of_another_study_than_the_path_s_are_refused(tmp_path, tokens):
    image = make_image(seed=4)
    with stow_node(tmp_path, stow_tokens_file=str(tokens)) as (url, spool, _):
        status, answer = post(f"{url}/studies/1.2.3.4", [part10(image)])
        assert spool.query.jobs() == []
    assert status == 409
    assert failures(answer) == {str(image.SOPInstanceUID): StowFailure.DATA_SET_DOES_NOT_MATCH}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer not-the-token-at-all-000"}, 401),
        ({"Authorization": ""}, 401),
        (
            {"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=b0und4ry'},
            415,
        ),
        ({"Content-Type": "application/dicom"}, 415),
        ({"Accept": "application/dicom+xml"}, 406),
        ({"Content-Type": 'multipart/related; type="application/dicom"'}, 400),
        ({"Content-Type": 'multipart/related; type="application/dicom"; boundary=other'}, 400),
    ],
)
def test_requests_the_node_cannot_take_are_refused_whole(tmp_path, tokens, headers, status):
    with stow_node(tmp_path, stow_tokens_file=str(tokens)) as (url, spool, _):
        assert post(f"{url}/studies", [part10(make_image())], headers)[0] == status
        assert spool.query.jobs() == []


def test_a_caller_outside_the_allow_list_is_refused(tmp_path, tokens):
    with stow_node(tmp_path, stow_tokens_file=str(tokens), allowed_calling_aes="CT1") as (
        url,
        spool,
        _,
    ):
        assert post(f"{url}/studies", [part10(make_image())])[0] == 403
        assert spool.query.jobs() == []


def test_a_body_over_the_limit_is_refused_unread(tmp_path, tokens):
    with stow_node(tmp_path, stow_tokens_file=str(tokens), stow_max_request_bytes="1000") as (
        url,
        spool,
        _,
    ):
        assert post(f"{url}/studies", [part10(make_image())])[0] == 413
        assert spool.query.jobs() == []


def https_session(ca: Path, cert: tuple[str, str] | None) -> requests.Session:
    """A requests session trusting only ``ca`` (not REQUESTS_CA_BUNDLE), with ``cert``."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca)
    session.cert = cert
    return session


def test_over_https_a_client_certificate_names_the_caller(tmp_path):
    pki = make_pki(tmp_path / "pki", client_name="CT1")
    tls = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key), "tls_ca": str(pki.ca)}
    with stow_node(tmp_path, **tls) as (url, spool, _):
        session = https_session(pki.ca, (str(pki.client_cert), str(pki.client_key)))
        DICOMwebClient(url, session=session).store_instances([make_image(seed=5)])
        assert [j.calling_ae for j in spool.query.jobs()] == ["CT1"]
        anonymous = https_session(pki.ca, None)
        with pytest.raises(requests.exceptions.ConnectionError):
            anonymous.post(
                f"{url}/studies",
                data=multipart_body([part10(make_image(seed=6))], "b0und4ry"),
                headers={
                    "Content-Type": 'multipart/related; type="application/dicom"; boundary=b0und4ry'
                },
                timeout=10,
            )
        assert len(spool.query.jobs()) == 1


def test_a_bad_tokens_file_line_is_named(tmp_path):
    (tmp_path / "tokens").write_text("CLOUDPACS short\n")
    with pytest.raises(StowTokensError, match="tokens:1: each line must be 'NAME token'"):
        read_tokens(tmp_path / "tokens")


def test_a_dicomweb_https_destination_delivers_to_the_node_with_its_client_certificate(tmp_path):
    pki = make_pki(tmp_path / "pki", client_name="OTHERNODE")
    tls = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key), "tls_ca": str(pki.ca)}
    path = tmp_path / "results" / "sc.dcm"
    path.parent.mkdir()
    image = make_image(seed=8)
    path.write_bytes(part10(image))
    output = OutputFile("sc", path, str(image.SOPInstanceUID))
    with stow_node(tmp_path, **tls) as (url, spool, _):
        query = f"ca={pki.ca}&cert={pki.client_cert}&key={pki.client_key}"
        destination = parse_destination(f"dicomweb+{url}/?{query}")
        outbox = spool_with_outputs(tmp_path / "outbox", [output], [str(destination)])
        deliver_once(outbox, str(destination), StowRsSender(destination, 10.0))
        assert [(j.sop_instance_uid, j.calling_ae) for j in spool.query.jobs()] == [
            (str(image.SOPInstanceUID), "OTHERNODE")
        ]
    assert outbox.query.deliveries_by_state() == {(str(destination), DeliveryState.DELIVERED): 1}
