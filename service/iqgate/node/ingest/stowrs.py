"""STOW-RS ingest (PS3.18 10.5): ``POST /studies`` and ``POST /studies/{study}``.

The same promise as C-STORE: an instance counts as stored only once its file is fsynced
and its job committed (:meth:`~iqgate.node.store.spool.Spool.accept`), and the answer is
sent after every instance of the request is. The same checks as the SCP: storage SOP
class and transfer syntax accepted by the SCP, the header read up to the pixel data
(:func:`~.header.read_header`, :func:`~.header.instance_problem`), room in the spool.
Callers prove who they are with a bearer token (``IQGATE_STOW_TOKENS_FILE``: one
``NAME token`` a line) or a client certificate signed by ``IQGATE_TLS_CA`` (its common
name); that name is the calling AE the job records and the allow-list checks.

The answer is the Store Instances Response Module as DICOM JSON: Referenced SOP
Sequence (0008,1199) for the stored instances, Failed SOP Sequence (0008,1198) with a
Failure Reason (0008,1197) for the others; 200 when all were stored, 202 when some
were, 409 when none was.
"""

from __future__ import annotations

import hmac
import json
import re
import sqlite3
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from enum import IntEnum
from io import BytesIO
from pathlib import Path

from iqgate.config import AE_TITLE_PATTERN, AllowedCaller, Settings
from iqgate.errors import IqgateError
from iqgate.node.ingest.dimse import ACCEPTED_TRANSFER_SYNTAXES, STORAGE_CLASSES
from iqgate.node.ingest.header import (
    LONG_LENGTH_VRS,
    PARSE_ERRORS,
    file_meta_header,
    instance_info,
    instance_problem,
    read_header,
)
from iqgate.node.ingest.scp import caller_allowed
from iqgate.node.ingest.tls import server_context
from iqgate.node.ops.events import StageEvents
from iqgate.node.ops.http import HttpRequest, OperationsServer, Response
from iqgate.node.ops.logs import get_logger
from iqgate.node.store.spool import Spool

log = get_logger("stowrs")
DICOM_JSON = "application/dicom+json"
OPEN_CALLER = "STOWRS"
"""The calling AE recorded for instances stored without a token or client certificate."""
PART10_META_START = 132
"""Preamble (128 bytes) and ``DICM``: where the file meta group starts (PS3.10 7.1)."""
STUDIES_PATH = re.compile(r"^/studies(?:/(?P<study>[0-9.]{1,64}))?/?$")


class StowFailure(IntEnum):
    """Failure Reason (0008,1197) values of a Store Instances Response (PS3.18 10.5.3)."""

    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122


class StowTokensError(IqgateError):
    """The STOW-RS tokens file cannot be read or has a bad line."""


def read_tokens(path: Path) -> dict[str, str]:
    """token -> caller name, from lines ``NAME token`` (``#`` starts a comment)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise StowTokensError(f"cannot read IQGATE_STOW_TOKENS_FILE {str(path)!r}: {exc}") from None
    tokens: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not AE_TITLE_PATTERN.match(fields[0]) or len(fields[1]) < 16:
            raise StowTokensError(
                f"{path}:{number}: each line must be 'NAME token': NAME a valid AE title, "
                "token at least 16 characters"
            )
        tokens[fields[1]] = fields[0]
    return tokens


@dataclass(frozen=True)
class StoredPart:
    """The outcome of one part: its UIDs (when read) and its failure, None when stored."""

    sop_class_uid: str
    sop_instance_uid: str
    failure: StowFailure | None
    detail: str = ""


class UnsupportedMediaType(ValueError):
    """A request or part whose media type STOW-RS here does not take (HTTP 415)."""


def multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a ``multipart/related; type="application/dicom"`` body (RFC 2387).

    Raises :class:`UnsupportedMediaType` for another media type (of the request or of a
    part), ``ValueError`` for a malformed body (no boundary, no closing delimiter).
    """
    header = Message()
    header["Content-Type"] = content_type
    if header.get_content_type() != "multipart/related":
        raise UnsupportedMediaType(f"Content-Type {content_type!r} is not multipart/related")
    root_type = (header.get_param("type") or "application/dicom").lower()
    if root_type != "application/dicom":
        raise UnsupportedMediaType(
            f"multipart/related type {root_type!r}: only application/dicom is taken"
        )
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart/related without a boundary parameter")
    delimiter = b"--" + boundary.encode()
    chunks = (b"\r\n" + body).split(b"\r\n" + delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body without its closing boundary")
    if len(chunks) == 2:
        raise ValueError("multipart body without a part")
    parts = []
    for chunk in chunks[1:-1]:
        headers, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a multipart part has no header/body separator")
        part_type = _part_type(headers)
        if part_type not in ("", "application/dicom"):
            raise UnsupportedMediaType(
                f"a part of type {part_type!r}: only application/dicom is taken"
            )
        parts.append(data)
    return parts


def _part_type(headers: bytes) -> str:
    for line in headers.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


META_UIDS = {0x0002: "sop_class", 0x0003: "sop_instance", 0x0010: "transfer_syntax"}
"""File meta elements (0002,xxxx) read from a part: the UIDs the checks need."""


def split_part10(data: bytes) -> tuple[dict[str, str], memoryview]:
    """(SOP class, SOP instance and transfer syntax UIDs of the file meta, the data set
    after it) of a DICOM file: PS3.10 (preamble, ``DICM``), or the file meta group alone
    as some clients write it. Raises ``ValueError`` for anything else."""
    if data[128:132] == b"DICM":
        position = PART10_META_START
    elif data[:2] == b"\x02\x00":
        position = 0
    else:
        raise ValueError("not a DICOM file (neither DICM after a preamble nor a file meta group)")
    uids = dict.fromkeys(META_UIDS.values(), "")
    while data[position : position + 2] == b"\x02\x00":
        if len(data) < position + 8:
            raise ValueError("the file meta group is cut short")
        (element,) = struct.unpack("<H", data[position + 2 : position + 4])
        vr = data[position + 4 : position + 6]
        if vr in LONG_LENGTH_VRS:
            (length,) = struct.unpack("<I", data[position + 8 : position + 12])
            start = position + 12
        else:
            (length,) = struct.unpack("<H", data[position + 6 : position + 8])
            start = position + 8
        if element in META_UIDS:
            uids[META_UIDS[element]] = data[start : start + length].decode("ascii").strip("\0 ")
        position = start + length
    if position > len(data):
        raise ValueError("the file meta group is cut short")
    return uids, memoryview(data)[position:]


class StowRsIngest:
    """The STOW-RS POST route: authenticate, store each part like a C-STORE, answer."""

    def __init__(self, settings: Settings, spool: Spool, metrics: StageEvents) -> None:
        self.spool = spool
        self.metrics = metrics
        self.callers: Sequence[AllowedCaller] = settings.allowed_callers
        self.tokens = (
            {} if settings.stow_tokens_file is None else read_tokens(settings.stow_tokens_file)
        )
        self.client_certificates = settings.tls_ca is not None

    def __call__(self, request: HttpRequest) -> Response:
        """Answer one ``POST /studies[/{study}]``."""
        match = STUDIES_PATH.match(request.path)
        if match is None:
            return 404, "text/plain", b"STOW-RS takes POST /studies or /studies/{study}\n"
        caller, refusal = self.caller(request)
        if refusal is not None:
            return refusal
        accept = request.headers.get("Accept", "")
        if accept and not any(t in accept for t in (DICOM_JSON, "application/json", "*/*")):
            return (
                406,
                "text/plain",
                f"the response is {DICOM_JSON}; Accept was {accept!r}\n".encode(),
            )
        try:
            parts = multipart_parts(request.headers.get("Content-Type", ""), request.body)
        except ValueError as exc:
            status = 415 if isinstance(exc, UnsupportedMediaType) else 400
            return status, "text/plain", f"{exc}\n".encode()
        outcomes = [self.store(part, caller, match.group("study")) for part in parts]
        return _response(outcomes)

    def caller(self, request: HttpRequest) -> tuple[str, Response | None]:
        """Who sends (token name, certificate common name, or the open caller), or why not."""
        authorization = request.headers.get("Authorization", "")
        name: str | None = None
        if authorization.startswith("Bearer ") and self.tokens:
            given = authorization.removeprefix("Bearer ").strip()
            name = next((n for t, n in self.tokens.items() if hmac.compare_digest(t, given)), None)
        if name is None and request.client_certificate is not None:
            name = _common_name(request.client_certificate)
            if name is None or not AE_TITLE_PATTERN.match(name):
                return "", (
                    403,
                    "text/plain",
                    b"the client certificate's common name is not a valid AE title\n",
                )
        if name is None and (self.tokens or self.client_certificates):
            return "", (
                401,
                "text/plain",
                b"a valid bearer token or client certificate is required\n",
            )
        name = name or OPEN_CALLER
        if not caller_allowed(self.callers, name, request.client_host):
            log.warning(
                "stow_refused",
                caller=name,
                peer=request.client_host,
                reason="not in IQGATE_ALLOWED_CALLING_AES",
            )
            return name, (403, "text/plain", f"caller {name!r} is not in the allow-list\n".encode())
        return name, None

    def store(self, data: bytes, caller: str, study: str | None) -> StoredPart:
        """Check and store one Part 10 file as ``caller``; see the module docstring."""
        part = self._store(data, caller, study)
        self.metrics.stow_answered("stored" if part.failure is None else part.failure.name.lower())
        if part.failure is not None:
            log.warning(
                "stow_instance_refused",
                caller=caller,
                failure_reason=f"0x{part.failure:04X}",
                reason=part.detail,
                sop_instance_uid=part.sop_instance_uid,
            )
        return part

    def _store(self, data: bytes, caller: str, study: str | None) -> StoredPart:
        try:
            meta, dataset = split_part10(data)
        except (*PARSE_ERRORS, ValueError) as exc:
            return StoredPart("", "", StowFailure.CANNOT_UNDERSTAND, f"cannot parse: {exc}"[:300])
        sop_class, sop_uid, syntax = (
            meta["sop_class"],
            meta["sop_instance"],
            meta["transfer_syntax"],
        )
        if sop_class not in STORAGE_CLASSES:
            return StoredPart(
                sop_class,
                sop_uid,
                StowFailure.SOP_CLASS_NOT_SUPPORTED,
                "not a storage SOP class the node takes",
            )
        if syntax not in ACCEPTED_TRANSFER_SYNTAXES:
            return StoredPart(
                sop_class,
                sop_uid,
                StowFailure.TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"transfer syntax {syntax!r}",
            )
        if not self.spool.has_room_for(len(dataset)):
            return StoredPart(
                sop_class, sop_uid, StowFailure.OUT_OF_RESOURCES, "spool over its limit"
            )
        try:
            header = read_header(BytesIO(dataset), syntax)
            problem = instance_problem(header)
            info = None if problem is not None else instance_info(header.dataset, caller)
        except PARSE_ERRORS as exc:
            return StoredPart(
                sop_class, sop_uid, StowFailure.CANNOT_UNDERSTAND, f"cannot parse: {exc}"[:300]
            )
        if info is None or info.sop_instance_uid != sop_uid or info.sop_class_uid != sop_class:
            detail = problem or "SOP Class or Instance UID differs from the file meta"
            return StoredPart(sop_class, sop_uid, StowFailure.DATA_SET_DOES_NOT_MATCH, detail)
        if study is not None and info.study_uid != study:
            return StoredPart(
                sop_class,
                sop_uid,
                StowFailure.DATA_SET_DOES_NOT_MATCH,
                "Study Instance UID differs from the request's study",
            )
        preamble = file_meta_header(sop_class, sop_uid, syntax, caller)
        try:
            result = self.spool.accept((preamble, dataset), info)
        except (OSError, sqlite3.Error) as exc:
            return StoredPart(
                sop_class, sop_uid, StowFailure.OUT_OF_RESOURCES, f"spool write failed: {exc}"
            )
        self.metrics.instance_stored(time.time())
        log.info(
            "stored",
            calling_ae=caller,
            sop_instance_uid=sop_uid,
            job_id=result.job_id,
            duplicate=result.duplicate,
            via="stow-rs",
        )
        return StoredPart(sop_class, sop_uid, None)


def _common_name(certificate: Mapping[str, object]) -> str | None:
    for rdn in certificate.get("subject", ()):  # type: ignore[union-attr]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _reference(part: StoredPart) -> dict[str, object]:
    item: dict[str, object] = {}
    if part.sop_class_uid:
        item["00081150"] = {"vr": "UI", "Value": [part.sop_class_uid]}
    if part.sop_instance_uid:
        item["00081155"] = {"vr": "UI", "Value": [part.sop_instance_uid]}
    if part.failure is not None:
        item["00081197"] = {"vr": "US", "Value": [int(part.failure)]}
    return item


def _response(outcomes: Sequence[StoredPart]) -> Response:
    stored = [p for p in outcomes if p.failure is None]
    failed = [p for p in outcomes if p.failure is not None]
    document: dict[str, object] = {}
    if failed:
        document["00081198"] = {"vr": "SQ", "Value": [_reference(p) for p in failed]}
    if stored:
        document["00081199"] = {"vr": "SQ", "Value": [_reference(p) for p in stored]}
    status = 200 if not failed else 202 if stored else 409
    return status, DICOM_JSON, json.dumps(document).encode()


def stow_server(settings: Settings, spool: Spool, metrics: StageEvents) -> OperationsServer | None:
    """The STOW-RS endpoint of ``IQGATE_STOW_PORT`` (HTTPS with the TLS settings), not
    started; None when the port is not set."""
    if settings.stow_port is None:
        return None
    ingest = StowRsIngest(settings, spool, metrics)
    if not ingest.tokens and not ingest.client_certificates:
        log.warning(
            "open_stow",
            setting="IQGATE_STOW_TOKENS_FILE or IQGATE_TLS_CA",
            consequence="any client that reaches the STOW-RS port may store images",
        )
    return OperationsServer(
        settings.stow_host,
        settings.stow_port,
        {},
        post_routes={"/studies": ingest},
        max_body_bytes=settings.stow_max_request_bytes,
        ssl_context=server_context(settings),
        timeout_s=settings.network_timeout_s,
    )
