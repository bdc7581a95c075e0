"""A webhook endpoint for tests: checks the HMAC-SHA256 signature of each POST."""

from __future__ import annotations

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class WebhookReceiver:
    """A webhook endpoint that checks each POST's signature; answers 500 to the first
    ``fail_first`` requests."""

    def __init__(self, secret: bytes, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Iqgate-Signature", "")
                if not hmac.compare_digest(expected, given):
                    receiver.rejected += 1
                    status = 401
                elif receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    status = 500
                else:
                    receiver.accepted.append((dict(self.headers), body))
                    status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
