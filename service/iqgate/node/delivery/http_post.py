"""One HTTP POST for the HTTP transports (STOW-RS, webhook), with its failure as text."""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from iqgate.destinations import TlsFiles
from iqgate.node.delivery.tls import client_context

ANSWER_LIMIT_BYTES = 1 << 20
"""Of an answer's body, at most this much is read (STOW-RS answers are small)."""


@dataclass(frozen=True)
class HttpAnswer:
    """What the peer answered: status, content type and (the start of) the body."""

    status: int
    content_type: str
    body: bytes


def post(
    url: str, body: bytes, headers: dict[str, str], tls: TlsFiles, timeout_s: float
) -> HttpAnswer:
    """POST ``body`` to ``url`` (https: checked against ``tls``); raises ``OSError`` (and
    ``http.client.HTTPException``) when no answer comes."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout_s, context=client_context(tls)
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(
            response.status,
            response.getheader("Content-Type", ""),
            response.read(ANSWER_LIMIT_BYTES),
        )
    finally:
        connection.close()


POST_ERRORS = (OSError, ssl.SSLError, http.client.HTTPException)
"""What :func:`post` raises when the peer cannot be reached or breaks the exchange."""
