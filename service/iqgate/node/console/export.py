"""Export of the images with feedback: their DICOM files and a training manifest.

The export folder holds ``images/<SOP Instance UID>.dcm`` (the kept copies) and
``manifest.csv`` with the columns ``path,label,boxes`` of
:mod:`iqgate.data.manifest`, which ``tools/train.py --data manifest:PATH`` reads: label 1
where the feedback says a defect is present (:func:`~iqgate.node.console.feedback.training_label`),
boxes ``x1 y1 x2 y2`` separated by ``;``. A zip of the folder is written beside it for
download. Images whose kept copy is gone are left out and counted.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iqgate.node.console.feedback import training_label
from iqgate.node.console.index import ConsoleIndex

MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    folder: Path
    archive: Path
    images: int
    missing: int
    sop_instance_uids: tuple[str, ...]


def export_feedback(index: ConsoleIndex, exports_dir: Path) -> ExportResult:
    """Write every image with feedback and its manifest to a new folder under
    ``exports_dir``, and a zip of it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = exports_dir / f"export-{stamp}"
    (folder / "images").mkdir(parents=True)
    exported: list[str] = []
    missing = 0
    with (folder / MANIFEST_NAME).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "boxes"])
        for image in index.with_feedback():
            if (
                image.feedback is None
                or not image.image_path
                or not Path(image.image_path).exists()
            ):
                missing += 1
                continue
            relative = f"images/{image.sop_instance_uid}.dcm"
            shutil.copyfile(image.image_path, folder / relative)
            label = training_label(image.feedback.kind, image.flagged)
            boxes = (
                ";".join(" ".join(map(str, box)) for box in image.feedback.boxes) if label else ""
            )
            writer.writerow([relative, label, boxes])
            exported.append(image.sop_instance_uid)
    archive = Path(shutil.make_archive(str(folder), "zip", root_dir=folder))
    return ExportResult(folder, archive, len(exported), missing, tuple(exported))
