"""What a technologist can say about an assessed image, and the training label it gives."""

from __future__ import annotations

import json
from enum import Enum
from typing import NamedTuple


class FeedbackKind(str, Enum):
    """The technologist's answer to the gate's verdict."""

    AGREE = "agree"
    """The verdict is right (a flag shows a real defect; a pass has none)."""
    FALSE_ALARM = "false_alarm"
    """Flagged, but the image has no defect."""
    MISSED_DEFECT = "missed_defect"
    """The image has a defect the gate did not flag; boxes mark it."""
    REACQUIRED = "reacquired"
    """The image had a defect and was taken again."""

    @property
    def title(self) -> str:
        """The name on the button."""
        return self.value.replace("_", " ")


class Box(NamedTuple):
    """An inclusive pixel box in the source frame (x = column, y = row)."""

    x1: int
    y1: int
    x2: int
    y2: int


def parse_boxes(text: str, columns: int, rows: int) -> tuple[Box, ...]:
    """Boxes from the form's JSON (``[[x1, y1, x2, y2], ...]``), ordered and clipped to a
    ``columns`` x ``rows`` frame.

    Raises
    ------
    TypeError
        When the text is not a JSON list.
    ValueError
        Naming the box that is not four numbers (or when the text is not JSON).
    """
    if not text.strip():
        return ()
    loaded = json.loads(text)
    if not isinstance(loaded, list):
        raise TypeError(f"boxes must be a JSON list of [x1, y1, x2, y2]; got {text[:80]!r}")
    boxes = []
    for number, item in enumerate(loaded, 1):
        if not (isinstance(item, list) and len(item) == 4):
            raise ValueError(f"box {number} {item!r}: expected [x1, y1, x2, y2]")
        x1, y1, x2, y2 = (round(float(v)) for v in item)
        x1, x2 = sorted((min(max(x1, 0), columns - 1), min(max(x2, 0), columns - 1)))
        y1, y2 = sorted((min(max(y1, 0), rows - 1), min(max(y2, 0), rows - 1)))
        boxes.append(Box(x1, y1, x2, y2))
    return tuple(boxes)


def training_label(kind: FeedbackKind, flagged: bool) -> int:
    """The manifest label (1: defect present) that feedback ``kind`` gives an image the
    gate flagged (``flagged``) or passed."""
    if kind is FeedbackKind.AGREE:
        return int(flagged)
    return int(kind is not FeedbackKind.FALSE_ALARM)
