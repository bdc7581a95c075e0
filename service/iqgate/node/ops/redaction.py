"""Keeping patient identifiers out of log text, whatever wrote the text.

Two defences, both applied to every log event (see :mod:`iqgate.node.ops.logs`):

- :class:`IdentifierRedactor` remembers the identifier values (names, IDs, birth dates,
  accession numbers) of the data sets this process has handled and replaces them, and
  every name component, wherever they appear in a string;
- :func:`redact_quoted` replaces every quoted literal in text that libraries wrote
  (warnings, stdlib log records, tracebacks): pydicom, highdicom and pynetdicom quote the
  values they complain about (``Invalid value for VR PN: 'DOE'``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

IDENTIFIER_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
)
"""Attributes whose values never reach a log line."""
REDACTED = "[redacted]"
MAX_REMEMBERED = 4096
"""Identifier values kept per process; the oldest are forgotten first."""

_QUOTED = re.compile(r"""(?<!\w)b?(?:'[^\n]*?'|"[^\n]*?")(?!\w)""")
_NAME_SEPARATORS = re.compile(r"[\^=]")


def redact_quoted(text: str) -> str:
    """``text`` with every quoted literal (``'...'``, ``"..."``, ``b'...'``) replaced."""
    return _QUOTED.sub(f"'{REDACTED}'", text)


def identifier_values(dataset: Dataset) -> set[str]:
    """The identifier values of ``dataset``: whole values and name components.

    Whole values are kept as written; name components (split at ``^`` and ``=``) of
    two characters or more are kept too, since libraries print names reformatted
    (``DOE, JOHN``). Attributes that cannot be read are skipped.
    """
    values: set[str] = set()
    for keyword in IDENTIFIER_KEYWORDS:
        for text in _texts(dataset, keyword):
            values.add(text)
            values.update(p.strip() for p in _NAME_SEPARATORS.split(text) if len(p.strip()) > 1)
    return values


def _texts(dataset: Dataset, keyword: str) -> list[str]:
    """The non-empty values of one attribute as text; none when it cannot be read."""
    try:
        value = dataset.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value is no identifier to remember
        return []
    if value is None:
        return []
    items = value if isinstance(value, MultiValue | list | tuple) else [value]
    return [text for item in items if (text := str(item).strip())]


class IdentifierRedactor:
    """Replaces remembered identifier values in strings (thread-safe, bounded)."""

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._max = max_remembered
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, values: Iterable[str]) -> None:
        """Redact these values from now on."""
        with self._lock:
            for value in values:
                if value in self._values:
                    self._values.move_to_end(value)
                    continue
                self._values[value] = None
                self._pattern = None
            while len(self._values) > self._max:
                self._values.popitem(last=False)

    def remember_dataset(self, dataset: Dataset) -> None:
        """Redact the identifiers of ``dataset`` from now on."""
        self.remember(identifier_values(dataset))

    def redact(self, text: str) -> str:
        """``text`` with every remembered value (as a whole word) replaced."""
        pattern = self._compiled()
        return text if pattern is None else pattern.sub(REDACTED, text)

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._values:
                words = sorted(self._values, key=len, reverse=True)
                alternatives = "|".join(re.escape(w) for w in words)
                self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
            return self._pattern


REDACTOR = IdentifierRedactor()
"""This process's redactor: what the node reads of a patient, its logs never print."""


def redact_values(value: Any, redact: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it (lists, tuples, dicts)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(redact_values(v, redact) for v in value)
    if isinstance(value, dict):
        return {k: redact_values(v, redact) for k, v in value.items()}
    return value
