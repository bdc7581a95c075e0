"""Memoised IOD lookups for highdicom.

highdicom answers "is attribute X part of the IOD of SOP class Y" by walking the
standard's module tables on every call: about 12 ms each, several calls for every SC
and SR it builds, a third of the node's result-writing time. The answer depends only on
the arguments and the standard bundled with highdicom, so :func:`install` makes every
highdicom module that asks use one cached answer per question and process.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import highdicom._standard_utils as standard_utils
import highdicom.base
import highdicom.sr.content

_ASKING_MODULES = (standard_utils, highdicom.base, highdicom.sr.content)
_walk_tables = standard_utils.is_attribute_in_iod


@functools.cache
def _cached_answer(attribute: str, sop_class_uid: str, exclude: tuple[str, ...] | None) -> bool:
    return bool(_walk_tables(attribute, sop_class_uid, exclude))


def is_attribute_in_iod(
    attribute: str, sop_class_uid: str, exclude_path_elements: Sequence[str] | None = None
) -> bool:
    """highdicom's ``is_attribute_in_iod``, answered from a cache."""
    exclude = tuple(exclude_path_elements) if exclude_path_elements is not None else None
    return _cached_answer(attribute, str(sop_class_uid), exclude)


def install() -> None:
    """Make highdicom use the cached lookup (idempotent)."""
    for module in _ASKING_MODULES:
        module.is_attribute_in_iod = is_attribute_in_iod  # type: ignore[attr-defined]
