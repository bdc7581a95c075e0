"""Deterministic UIDs for the node's outputs, and recognition of those outputs.

Every UID iqgate writes is derived from what it describes (PS3.5 Section 9 and
Annex B: a registered root followed by a number), never drawn at random. When the
node re-assesses a source after a crash, the SC overlay and the SR get the same
Series and SOP Instance UIDs as before, so a second delivery is a duplicate that
PACS recognises, not a second copy of the result.

:data:`IQGATE_UID_ROOT` sits under the pydicom root that the pydicom project hands
out to open-source software. A site that owns a root of its own (from its national
registration authority or a vendor) may pass it as ``root`` everywhere a UID is made;
:func:`is_own_output` must then be given the same root.

Which source identifies which output
------------------------------------
=====================  ============================================================
UID                    derived from (with model name, model version, output kind)
=====================  ============================================================
SC series              source Series Instance UID
SC instance            source SOP Instance UID and frame number
SR series              source Series Instance UID
SR instance            source SOP Instance UID (one SR per radiograph), or the
                       source Series Instance UID (one SR per MR series)
=====================  ============================================================

One model's overlays of one source series thus share an output series, and each
model writes its own series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from pydicom import Dataset
from pydicom.uid import generate_uid

from iqgate.routing_rules import HeaderFacts

IQGATE_UID_ROOT = "1.2.826.0.1.3680043.8.498.7947."
"""UID root of every instance iqgate writes (a site may use its own root instead)."""

IQGATE_MANUFACTURER = "iqgate"
"""Manufacturer written in every output and in its Contributing Equipment Sequence."""


class OutputKind(str, Enum):
    """What a derived UID identifies; part of the hashed parts, so kinds never collide."""

    SC_SERIES = "sc-series"
    SC_INSTANCE = "sc-instance"
    SR_SERIES = "sr-series"
    SR_INSTANCE = "sr-instance"
    SR_SERIES_INSTANCE = "sr-series-instance"


def derive_uid(*parts: str, root: str = IQGATE_UID_ROOT) -> str:
    """A UID under ``root`` that depends only on ``parts``.

    The parts are encoded as a JSON list before hashing (SHA-512, as
    :func:`pydicom.uid.generate_uid` does with ``entropy_srcs``), so ``("ab", "c")``
    and ``("a", "bc")`` give different UIDs.

    Parameters
    ----------
    *parts
        Strings that identify the thing named, e.g. a source UID, a model name, a kind.
    root
        UID root ending in ``"."``, at most 54 characters.

    Returns
    -------
    str
        A valid UID of at most 64 characters.

    Examples
    --------
    >>> derive_uid("1.2.3", "model", "1.0") == derive_uid("1.2.3", "model", "1.0")
    True
    >>> derive_uid("1.2.3").startswith(IQGATE_UID_ROOT)
    True
    """
    if not parts:
        raise ValueError("derive_uid needs at least one part; got none")
    if not root.endswith("."):
        raise ValueError(f"root must end with '.'; got {root!r}. Try {root + '.'!r}")
    return str(generate_uid(prefix=root, entropy_srcs=[json.dumps(list(parts))]))


@dataclass(frozen=True)
class OutputUids:
    """The UIDs of the SC overlay and the SR written for one assessed image."""

    sc_series: str
    sc_instance: str
    sr_series: str
    sr_instance: str

    @classmethod
    def for_image(
        cls,
        *,
        series_instance_uid: str,
        sop_instance_uid: str,
        model_name: str,
        model_version: str,
        frame_number: int | None = None,
        sr_per_series: bool = False,
        root: str = IQGATE_UID_ROOT,
    ) -> OutputUids:
        """Derive the output UIDs of one image (one frame of a multi-frame image).

        Parameters
        ----------
        series_instance_uid, sop_instance_uid
            UIDs of the source image.
        model_name, model_version
            The model that assessed it (from its card).
        frame_number
            1-based frame of a multi-frame source; ``None`` for a single-frame one.
        sr_per_series
            ``True`` when one SR covers the whole source series (MR), so every image of
            the series gets the same SR instance UID.
        root
            UID root, see :data:`IQGATE_UID_ROOT`.
        """
        if frame_number is not None and frame_number < 1:
            raise ValueError(f"frame_number is 1-based; got {frame_number}")
        model = (model_name, model_version)
        frame = "" if frame_number is None else str(frame_number)
        if sr_per_series:
            sr_instance = derive_uid(
                series_instance_uid, *model, OutputKind.SR_SERIES_INSTANCE.value, root=root
            )
        else:
            sr_instance = derive_uid(
                sop_instance_uid, *model, OutputKind.SR_INSTANCE.value, root=root
            )
        return cls(
            sc_series=derive_uid(
                series_instance_uid, *model, OutputKind.SC_SERIES.value, root=root
            ),
            sc_instance=derive_uid(
                sop_instance_uid, frame, *model, OutputKind.SC_INSTANCE.value, root=root
            ),
            sr_series=derive_uid(
                series_instance_uid, *model, OutputKind.SR_SERIES.value, root=root
            ),
            sr_instance=sr_instance,
        )


def is_own_output(ds: Dataset, root: str = IQGATE_UID_ROOT) -> bool:
    """Whether ``ds`` is an SC or SR that iqgate wrote (see :func:`facts_are_own_output`)."""
    return facts_are_own_output(HeaderFacts.from_dataset(ds), root)


def facts_are_own_output(facts: HeaderFacts, root: str = IQGATE_UID_ROOT) -> bool:
    """Whether the image these header facts describe is iqgate's, so it must not be assessed.

    Both must hold: the SOP Instance UID lies under ``root``, and iqgate is named as
    the Manufacturer or in the Contributing Equipment Sequence (PS3.3 C.12.1). A PACS
    that routes the node's outputs back to it thus causes no loop, while an image
    from another system that happens to share the root is still assessed.
    """
    return facts.sop_instance_uid.startswith(root) and IQGATE_MANUFACTURER in facts.manufacturers
