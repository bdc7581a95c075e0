"""The client side of TLS for every transport: the context a destination's files make."""

from __future__ import annotations

import ssl

from iqgate.destinations import TlsFiles


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2+ client context that checks the peer's certificate and host name against
    ``files.ca`` (else the system's CAs) and presents ``files.cert`` and ``files.key``
    when given."""
    context = ssl.create_default_context(cafile=None if files.ca is None else str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.cert is not None and files.key is not None:
        context.load_cert_chain(str(files.cert), str(files.key))
    return context
