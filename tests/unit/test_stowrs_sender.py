"""The STOW-RS sender's request (multipart/related parts, media types, bearer token) and
how it reads a partial failure, against a local HTTP server that plays the origin."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from iqgate.config import parse_destination
from iqgate.node.delivery.stowrs import StowRsSender, batches
from iqgate.node.store.records import OutputFile
from iqgate.node.store.states import DeliveryState
from iqgate_testkit.delivery_queue import deliver_once, spool_with_outputs

FAILED_SECOND = {
    "00081198": {
        "vr": "SQ",
        "Value": [
            {
                "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
                "00081155": {"vr": "UI", "Value": ["2.25.2"]},
                "00081197": {"vr": "US", "Value": [0xA900]},
            }
        ],
    }
}


@contextmanager
def origin(status: int, answer: dict) -> Iterator[tuple[int, list[tuple[dict, bytes]]]]:
    """A STOW-RS origin on a free port that records requests and answers ``status``."""
    requests: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(({"path": self.path, **dict(self.headers)}, body))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1]), requests
    finally:
        server.shutdown()
        server.server_close()


def outputs(tmp_path, count: int = 2) -> list[OutputFile]:
    files = []
    for n in range(1, count + 1):
        path = tmp_path / f"{n}.dcm"
        path.write_bytes(b"\x00" * 128 + b"DICM" + f"file {n}\r\n--not-a-boundary".encode())
        files.append(OutputFile("sc", path, f"2.25.{n}"))
    return files


def test_a_batch_is_one_multipart_related_request_with_a_bearer_token(tmp_path):
    (tmp_path / "token").write_text("tok-123\n")
    files = outputs(tmp_path)
    with origin(200, {}) as (port, requests):
        destination = parse_destination(
            f"dicomweb+http://127.0.0.1:{port}/dicom-web/?token_file={tmp_path / 'token'}"
        )
        spool = spool_with_outputs(tmp_path / "spool", files, [str(destination)])
        deliver_once(spool, str(destination), StowRsSender(destination, 5.0))
    [(headers, body)] = requests
    assert headers["path"] == "/dicom-web/studies"
    assert headers["Authorization"] == "Bearer tok-123"
    assert headers["Accept"] == "application/dicom+json"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
    )
    assert message.get_content_type() == "multipart/related"
    assert message.get_param("type") == "application/dicom"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["application/dicom"] * 2
    assert [p.get_payload(decode=True) for p in parts] == [f.path.read_bytes() for f in files]
    assert spool.query.deliveries_by_state() == {(str(destination), DeliveryState.DELIVERED): 2}


def test_a_partial_failure_fails_only_the_instances_the_origin_lists(tmp_path):
    with origin(202, FAILED_SECOND) as (port, _):
        destination = parse_destination(f"dicomweb+http://127.0.0.1:{port}/dicom-web")
        spool = spool_with_outputs(tmp_path / "spool", outputs(tmp_path), [str(destination)])
        deliver_once(spool, str(destination), StowRsSender(destination, 5.0))
    states = {d.sop_instance_uid: d for d in spool.query.deliveries()}
    assert spool.query.deliveries_by_state() == {
        (str(destination), DeliveryState.DELIVERED): 1,
        (str(destination), DeliveryState.PENDING): 1,
    }
    assert states["2.25.2"].attempts == 1
    [error] = (
        spool.db.connection()
        .execute("SELECT last_error FROM deliveries WHERE sop_instance_uid = '2.25.2'")
        .fetchone()
    )
    assert error == "HTTP 202: refused, failure reason 0xA900"


def test_an_origin_that_is_down_fails_every_delivery_of_the_batch(tmp_path):
    with origin(200, {}) as (port, _):
        pass  # the port is free again: nothing answers
    destination = parse_destination(f"dicomweb+http://127.0.0.1:{port}/dicom-web")
    spool = spool_with_outputs(tmp_path / "spool", outputs(tmp_path), [str(destination)])
    deliver_once(spool, str(destination), StowRsSender(destination, 5.0))
    assert spool.query.deliveries_by_state() == {(str(destination), DeliveryState.PENDING): 2}


def test_batches_split_at_the_size_limit_and_keep_order(tmp_path):
    spool = spool_with_outputs(tmp_path / "spool", outputs(tmp_path, 3), ["d"])
    deliveries = spool.deliveries.claim("d", 10, 60)
    size = deliveries[0].path.stat().st_size
    assert [[d.sop_instance_uid for d in b] for b in batches(deliveries, 2 * size)] == [
        ["2.25.1", "2.25.2"],
        ["2.25.3"],
    ]
