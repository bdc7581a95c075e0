"""HTTP destinations of results and the TLS files any destination may use.

A destination is written as a URL in ``IQGATE_PACS`` (``iqgate.config`` parses the list):

- ``dicom://AE@host:port`` and ``dicoms://AE@host:port?ca=...&cert=...&key=...``
  (DICOM C-STORE, plain or over TLS; :class:`iqgate.config.DicomDestination`);
- ``dicomweb+https://[user@]host[:port]/path`` (STOW-RS, :class:`DicomWebDestination`);
- ``webhook+https://host[:port]/path?secret_file=...`` (JSON reports, :class:`WebhookDestination`).

``+http`` variants exist for closed networks and tests. Secrets are never written in
the URL: a password, token or HMAC secret is read from a file named by a query
parameter (a Kubernetes or compose secret). ``str()`` of a destination is its URL
without query or secrets: it names the destination in the delivery table, logs and
metrics.
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import SplitResult, parse_qs, urlsplit

TLS_PARAMETERS = ("ca", "cert", "key")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a TLS connection: CA bundle to trust, client certificate and key."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def from_query(cls, text: str, query: dict[str, str]) -> TlsFiles:
        """The ``ca``, ``cert`` and ``key`` parameters of a destination URL ``text``."""
        files = cls(*(Path(query[name]) if name in query else None for name in TLS_PARAMETERS))
        if (files.cert is None) != (files.key is None):
            raise ValueError(f"destination {text!r}: cert= and key= must be given together")
        for name in TLS_PARAMETERS:
            path = getattr(files, name)
            if path is not None and not path.is_file():
                raise ValueError(f"destination {text!r}: {name}={str(path)!r} is not a file")
        return files


def query_of(text: str, query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The ``query`` parameters of the destination URL ``text``, each once and each one of
    ``allowed``."""
    parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    unknown = sorted(set(parsed) - set(allowed))
    if unknown:
        raise ValueError(
            f"destination {text!r}: unknown parameter {', '.join(unknown)} "
            f"(allowed: {', '.join(allowed)})"
        )
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise ValueError(f"destination {text!r}: parameter {', '.join(repeated)} given twice")
    return {name: values[0] for name, values in parsed.items()}


def read_secret(path: Path, what: str) -> str:
    """The first line of a secret file, which must not be empty."""
    try:
        secret = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {str(path)!r}: {exc}") from None
    if not secret or not secret[0].strip():
        raise ValueError(f"the {what} file {str(path)!r} is empty")
    return secret[0].strip()


def _http_url(text: str, prefix: str, allowed: tuple[str, ...]) -> tuple[SplitResult, dict]:
    """Split ``prefix+http(s)://host/path?query``, checking scheme, host and parameters."""
    if not text.startswith(f"{prefix}+"):
        raise ValueError(
            f"destination {text!r} must start with {prefix}+https:// or {prefix}+http://"
        )
    url = urlsplit(text.strip().removeprefix(f"{prefix}+"))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(
            f"destination {text!r} must look like {prefix}+https://host[:port]/path "
            f"({prefix}+http:// on a closed network)"
        )
    if url.password is not None:
        raise ValueError(
            f"destination {text!r}: no password in the URL; name a file with password_file="
        )
    if url.fragment:
        raise ValueError(f"destination {text!r}: a fragment (#...) means nothing here")
    try:
        url.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"destination {text!r}: {exc}") from None
    return url, query_of(text, url.query, allowed)


def _without_secrets(url: SplitResult) -> str:
    """``scheme://host[:port]/path`` of ``url`` (no user, query or fragment)."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.hostname}]" if ":" in (url.hostname or "") else url.hostname
    return f"{url.scheme}://{host}{port}{url.path.rstrip('/')}"


@dataclass(frozen=True)
class DicomWebDestination:
    """A DICOMweb origin server taking results by STOW-RS (PS3.18 10.5).

    ``dicomweb+https://[user@]host[:port]/path`` where ``/path`` is the service root
    (instances are POSTed to ``<root>/studies``). Authentication: HTTP basic with the
    URL's user and ``password_file=``, or a bearer token from ``token_file=``; TLS
    files with ``ca=``, ``cert=``, ``key=``.
    """

    scheme: ClassVar[str] = "dicomweb"
    parameters: ClassVar[tuple[str, ...]] = ("password_file", "token_file", *TLS_PARAMETERS)
    root: str
    """``http(s)://host[:port]/path``, no credentials."""
    user: str | None = None
    password_file: Path | None = None
    token_file: Path | None = None
    tls: TlsFiles = TlsFiles()

    @classmethod
    def parse(cls, text: str) -> DicomWebDestination:
        """Parse ``dicomweb+http(s)://...``; see the class docstring."""
        url, query = _http_url(text, cls.scheme, cls.parameters)
        password = Path(query["password_file"]) if "password_file" in query else None
        token = Path(query["token_file"]) if "token_file" in query else None
        if (url.username is None) != (password is None):
            raise ValueError(
                f"destination {text!r}: basic authentication needs both a user in the URL "
                "(user@host) and password_file="
            )
        if password is not None and token is not None:
            raise ValueError(f"destination {text!r}: use password_file= or token_file=, not both")
        for secret, what in ((password, "password"), (token, "token")):
            if secret is not None:
                read_secret(secret, what)
        return cls(
            _without_secrets(url), url.username, password, token, TlsFiles.from_query(text, query)
        )

    def authorization(self) -> str | None:
        """The ``Authorization`` header value (reads the secret file), or None."""
        if self.token_file is not None:
            return f"Bearer {read_secret(self.token_file, 'token')}"
        if self.password_file is not None:
            pair = f"{self.user}:{read_secret(self.password_file, 'password')}"
            return f"Basic {b64encode(pair.encode()).decode()}"
        return None

    def __str__(self) -> str:
        return f"{self.scheme}+{self.root}"


@dataclass(frozen=True)
class WebhookDestination:
    """A URL that takes the JSON report of an image by POST, signed with HMAC-SHA256.

    ``webhook+https://host[:port]/path?secret_file=...``: the body is signed with the
    shared secret read from ``secret_file`` (``X-Iqgate-Signature: sha256=<hex>``); TLS
    files with ``ca=``, ``cert=``, ``key=``.
    """

    scheme: ClassVar[str] = "webhook"
    parameters: ClassVar[tuple[str, ...]] = ("secret_file", *TLS_PARAMETERS)
    url: str
    secret_file: Path
    tls: TlsFiles = TlsFiles()

    @classmethod
    def parse(cls, text: str) -> WebhookDestination:
        """Parse ``webhook+http(s)://...?secret_file=...``."""
        url, query = _http_url(text, cls.scheme, cls.parameters)
        if url.username is not None:
            raise ValueError(f"destination {text!r}: a webhook URL takes no user")
        if "secret_file" not in query:
            raise ValueError(
                f"destination {text!r} needs secret_file= (the shared HMAC secret, one line)"
            )
        secret = Path(query["secret_file"])
        read_secret(secret, "webhook secret")
        return cls(_without_secrets(url), secret, TlsFiles.from_query(text, query))

    def secret(self) -> bytes:
        """The shared HMAC secret (read from its file)."""
        return read_secret(self.secret_file, "webhook secret").encode()

    def __str__(self) -> str:
        return f"{self.scheme}+{self.url}"
