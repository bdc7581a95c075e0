"""Structured JSON logs (structlog) without patient data.

Log events carry UIDs, the calling AE and reasons; never the patient's name, ID, birth
date or the accession number. Everything a process writes as a log goes through one
JSON renderer: our events, Python warnings from any library (``library_warning``) and
stdlib log records of libraries such as pynetdicom (``library_log``). On the way,
:func:`scrub` drops any key that names an identifier, the process's
:data:`~iqgate.node.ops.redaction.REDACTOR` replaces identifier values it has seen, and the
text of library messages and tracebacks has its quoted literals replaced.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from iqgate.node.ops.redaction import REDACTOR, redact_quoted, redact_values

FORBIDDEN_KEYS = frozenset(
    {
        "patient_name",
        "patient_id",
        "patient_birth_date",
        "accession_number",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "AccessionNumber",
    }
)


def scrub(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor that removes patient-identifying keys."""
    for key in FORBIDDEN_KEYS & event.keys():
        del event[key]
    return event


NODE_VALUE_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "component",
        "logger",
        "category",
        "source",
        "model",
        "models",
        "version",
        "package",
        "classifier",
        "sop_instance_uid",
        "series_uid",
        "study_uid",
        "job_id",
        "calling_ae",
        "peer",
        "destination",
        "kind",
        "verdict",
        "stage",
        "worker",
        "status",
        "outcome",
        "device",
    }
)
"""Keys whose values the node makes itself (names, UIDs, states): never redacted, so a
patient called ``PHANTOM^CXR`` does not blank the model name ``cxr-foreign-object``."""


def redact_identifiers(
    _: object, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: remembered identifier values replaced in every free-text
    value (every key but :data:`NODE_VALUE_KEYS`)."""
    for key, value in event.items():
        if key not in NODE_VALUE_KEYS:
            event[key] = redact_values(value, REDACTOR.redact)
    if isinstance(event.get("exception"), str):
        event["exception"] = redact_quoted(event["exception"])
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be replaced)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _LibraryRecords(logging.Handler):
    """Hands stdlib log records of libraries to structlog as ``library_log`` events."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact_quoted(record.getMessage())
        except Exception:  # noqa: BLE001 - a record that cannot format is logged without its text
            text = "(unformattable message)"
        get_logger("library").log(record.levelno, "library_log", logger=record.name, message=text)


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` replacement: a ``library_warning`` event, text redacted."""
    get_logger("library").warning(
        "library_warning",
        category=category.__name__,
        source=f"{filename}:{lineno}",
        message=redact_quoted(str(message)),
    )


_configured_level = "info"


def configured_level() -> str:
    """The level this process's logging was configured with (for child processes)."""
    return _configured_level


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default) at ``level``, library output included.

    Libraries log at ``warning`` and above whatever ``level`` is (their info output is
    noise for operators); Python warnings are logged every time they are raised in a
    new place, as by default.
    """
    global _configured_level
    numeric = getattr(logging, level.upper())
    _configured_level = level
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_LibraryRecords())
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    warnings.showwarning = _log_warning
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            redact_identifiers,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or _CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to one component of the node."""
    return structlog.get_logger(component=component)
