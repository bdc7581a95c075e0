"""Structured JSON logs (structlog) without patient data.

Log events carry UIDs, the calling AE and reasons; never the patient's name, ID, birth
date or the accession number. :func:`scrub` is the last line of defence: it drops any
key that names one of those attributes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

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


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be replaced)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr by default) at ``level``."""
    numeric = getattr(logging, level.upper())
    logging.basicConfig(level=logging.WARNING, stream=stream or sys.stderr, format="%(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            scrub,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or _CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to one component of the node."""
    return structlog.get_logger(component=component)
