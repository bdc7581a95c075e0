"""The server side of TLS for the node's DICOM and STOW-RS ports, from the TLS settings."""

from __future__ import annotations

import ssl

from iqgate.config import Settings


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server context of ``IQGATE_TLS_CERT`` and ``IQGATE_TLS_KEY`` (None without
    them), TLS 1.2 or later; with ``IQGATE_TLS_CA``, clients must present a certificate
    it signed."""
    if not settings.tls_enabled:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    if settings.tls_ca is not None:
        context.load_verify_locations(str(settings.tls_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context
