"""Keeping patient identifiers out of log text, whatever wrote the text.

Two defences, both applied to every log event (see :mod:`iqgate.node.ops.logs`):

- :class:`IdentifierRedactor` remembers the words of the identifier values (names, IDs,
  birth dates, accession numbers) of the data sets this process has handled and
  replaces them wherever they stand as words in a string;
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
MAX_REMEMBERED = 16384
"""Identifier words kept per process; the oldest are forgotten first."""

_QUOTED = re.compile(r"""(?<!\w)b?(?:'[^\n]*?'|"[^\n]*?")(?!\w)""")
_WORD = re.compile(r"[^\W_]+")


def redact_quoted(text: str) -> str:
    """``text`` with every quoted literal (``'...'``, ``"..."``, ``b'...'``) replaced."""
    return _QUOTED.sub(f"'{REDACTED}'", text)


def identifier_values(dataset: Dataset) -> set[str]:
    """The identifier values of ``dataset`` as written (attributes that cannot be read
    are skipped)."""
    return {text for keyword in IDENTIFIER_KEYWORDS for text in _texts(dataset, keyword)}


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
    """Replaces the words of remembered identifier values in strings.

    Values are kept as their words (letters and digits, split at anything else, two
    characters or more, case-free): ``FAKE-0001`` is redacted wherever ``FAKE`` or
    ``0001`` stands as a word, and ``Doe^John`` as ``DOE, John``. A lookup per word of
    the text, so the cost does not grow with the number remembered. Thread-safe and
    bounded: the words seen longest ago are forgotten first.
    """

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        self._words: OrderedDict[str, None] = OrderedDict()
        self._max = max_remembered
        self._lock = threading.Lock()

    def remember(self, values: Iterable[str]) -> None:
        """Redact the words of these values from now on."""
        with self._lock:
            for value in values:
                for word in _WORD.findall(value):
                    if len(word) < 2:
                        continue
                    key = word.casefold()
                    self._words[key] = None
                    self._words.move_to_end(key)
            while len(self._words) > self._max:
                self._words.popitem(last=False)

    def remember_dataset(self, dataset: Dataset) -> None:
        """Redact the identifiers of ``dataset`` from now on."""
        self.remember(identifier_values(dataset))

    def redact(self, text: str) -> str:
        """``text`` with every remembered word replaced by ``[redacted]``."""
        if not self._words:
            return text
        words = self._words
        return _WORD.sub(lambda m: REDACTED if m.group().casefold() in words else m.group(), text)


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
