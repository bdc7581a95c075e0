"""Library speed-ups the outputs rely on, applied once when the pipeline starts.

highdicom answers "is attribute X part of the IOD of SOP class Y" by walking the
standard's module tables on every call: about 12 ms each, several calls for every SC
and SR it builds, a third of the node's result-writing time. The answer depends only on
the arguments and the standard bundled with highdicom, so :func:`apply_speedups` makes
every highdicom module that asks use one cached answer per question and process. It
replaces a private highdicom function, so it is applied only to the highdicom versions
it was written for (:data:`HIGHDICOM_VERSIONS`); on others highdicom keeps its own
(slower, equally correct) lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import ModuleType

import highdicom

from iqgate.node.ops.logs import get_logger

log = get_logger("outputs")

HIGHDICOM_VERSIONS = ((0, 23), (0, 28))
"""The first and last highdicom minor versions the lookup cache was written for."""
_ASKING_MODULES = ("highdicom._standard_utils", "highdicom.base", "highdicom.sr.content")


def _minor_version(version: str) -> tuple[int, int]:
    major, minor, *_ = version.split(".")
    return int(major), int(minor)


def _asking_modules() -> list[ModuleType]:
    import importlib

    return [importlib.import_module(name) for name in _ASKING_MODULES]


@functools.cache
def _table_walk() -> Callable[..., bool]:
    """highdicom's own ``is_attribute_in_iod`` (taken before anything replaces it)."""
    import highdicom._standard_utils as standard_utils

    return standard_utils.is_attribute_in_iod  # type: ignore[no-any-return]


@functools.cache
def _cached_answer(attribute: str, sop_class_uid: str, exclude: tuple[str, ...] | None) -> bool:
    return bool(_table_walk()(attribute, sop_class_uid, exclude))


def is_attribute_in_iod(
    attribute: str, sop_class_uid: str, exclude_path_elements: Sequence[str] | None = None
) -> bool:
    """highdicom's ``is_attribute_in_iod``, answered from a cache."""
    exclude = tuple(exclude_path_elements) if exclude_path_elements is not None else None
    return _cached_answer(attribute, str(sop_class_uid), exclude)


def apply_speedups() -> bool:
    """Make highdicom use the cached IOD lookup (idempotent); whether it applied."""
    first, last = HIGHDICOM_VERSIONS
    version = _minor_version(highdicom.__version__)
    if not first <= version <= last:
        log.info(
            "highdicom_lookup_cache_skipped",
            highdicom=highdicom.__version__,
            written_for=f"{first[0]}.{first[1]} to {last[0]}.{last[1]}",
        )
        return False
    _table_walk()
    for module in _asking_modules():
        module.is_attribute_in_iod = is_attribute_in_iod  # type: ignore[attr-defined]
    return True
