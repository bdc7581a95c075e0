"""The JSON report written for each assessed image, and its JSON schema.

The report is what machines other than PACS read (the results folder, the outbox,
``iqgate assess``). It names the source by its UIDs only: no patient name, patient ID,
birth date or accession number, so it can be logged and shared inside the department.
Coordinates follow :mod:`iqgate.node.outputs.findings` (source pixels, pixel centre at integer
positions). The schema is committed as ``docs/report.schema.json``; regenerate it with
``python -m iqgate.node.outputs.report docs/report.schema.json`` after changing a model here.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydicom import Dataset

from iqgate.node.outputs.uids import OutputUids
from iqgate.packages import ModelCard

SCHEMA_VERSION: Final = "1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Uid = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Verdict(str, Enum):
    """The gate's decision for one image."""

    FLAGGED = "flagged"
    PASS = "pass"

    @classmethod
    def decide(cls, probability: float, threshold: float) -> Verdict:
        """``FLAGGED`` when the defect probability reaches the model's threshold."""
        return cls.FLAGGED if probability >= threshold else cls.PASS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceImageRef(_Frozen):
    """The assessed image (one frame of it for a multi-frame image)."""

    study_instance_uid: Uid
    series_instance_uid: Uid
    sop_instance_uid: Uid
    sop_class_uid: Uid
    frame_number: int | None = Field(
        ge=1, description="1-based frame of a multi-frame image; null for a single frame"
    )
    modality: str
    rows: int = Field(ge=1, description="rows of the assessed frame")
    columns: int = Field(ge=1, description="columns of the assessed frame")

    @classmethod
    def from_dataset(cls, ds: Dataset, frame_number: int | None = None) -> SourceImageRef:
        """Reference ``ds`` (only its header is read)."""
        return cls(
            study_instance_uid=ds.StudyInstanceUID,
            series_instance_uid=ds.SeriesInstanceUID,
            sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID,
            frame_number=frame_number,
            modality=ds.get("Modality", ""),
            rows=ds.Rows,
            columns=ds.Columns,
        )


class ModelRef(_Frozen):
    """The model package that made the assessment."""

    name: str
    version: str
    task: str

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelRef:
        """Take name, version and task from a model card."""
        return cls(name=card.name, version=card.version, task=card.task)


class SaliencyResult(_Frozen):
    """Where the explanation points, in source pixel coordinates (pixel centre = integer)."""

    method: str = Field(description='e.g. "normgrad-conv1x1 combined"')
    peak_xy: tuple[float, float] | None = Field(
        description="(x, y) = (column, row) of the saliency peak; null when not explained"
    )
    hotspot_box: tuple[float, float, float, float] | None = Field(
        description="(x1, y1, x2, y2) outer edges of the hot spot around the peak; "
        "null when not explained"
    )

    @model_validator(mode="after")
    def _box_needs_peak(self) -> SaliencyResult:
        if self.hotspot_box is not None and self.peak_xy is None:
            raise ValueError(f"hotspot_box {self.hotspot_box} is given without a peak_xy")
        return self


class OutputRefs(_Frozen):
    """UIDs of the DICOM objects written for this image; the SC ones are null without one."""

    sr_series_instance_uid: Uid
    sr_sop_instance_uid: Uid
    sc_series_instance_uid: Uid | None
    sc_sop_instance_uid: Uid | None

    @classmethod
    def from_uids(cls, uids: OutputUids, *, overlay_written: bool) -> OutputRefs:
        """Record ``uids``; the SC UIDs only when an overlay was written."""
        return cls(
            sr_series_instance_uid=uids.sr_series,
            sr_sop_instance_uid=uids.sr_instance,
            sc_series_instance_uid=uids.sc_series if overlay_written else None,
            sc_sop_instance_uid=uids.sc_instance if overlay_written else None,
        )


class AssessmentReport(_Frozen):
    """The result of assessing one image with one model."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    source: SourceImageRef
    model: ModelRef
    probability: Probability = Field(description="probability of the defect class")
    threshold: Probability = Field(description="the model's decision threshold")
    verdict: Verdict = Field(description="flagged when probability >= threshold")
    defect_class: str = Field(description="name of the class explained (the defect)")
    explained: bool = Field(description="whether saliency.peak_xy was found")
    saliency: SaliencyResult
    outputs: OutputRefs
    timings_ms: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        description="milliseconds per stage, e.g. decode, inference, explain, encode"
    )
    created_at: str = Field(description="ISO 8601 date and time with a UTC offset")

    @field_validator("created_at")
    @classmethod
    def _iso_with_offset(cls, value: str) -> str:
        problem = (
            f"created_at must be ISO 8601 with a UTC offset; got {value!r}. "
            "Use datetime.now(timezone.utc).isoformat()"
        )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as error:
            raise ValueError(problem) from error
        if parsed.tzinfo is None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AssessmentReport:
        expected = Verdict.decide(self.probability, self.threshold)
        if self.verdict is not expected:
            raise ValueError(
                f"verdict {self.verdict.value!r} contradicts probability {self.probability} "
                f"and threshold {self.threshold}: expected {expected.value!r}"
            )
        if self.explained != (self.saliency.peak_xy is not None):
            raise ValueError(
                f"explained={self.explained} but saliency.peak_xy={self.saliency.peak_xy}; "
                "set explained exactly when a peak was found"
            )
        return self


def report_json_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of the report as it is written."""
    schema = AssessmentReport.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def schema_text() -> str:
    """:func:`report_json_schema` as the text committed in ``docs/report.schema.json``."""
    return json.dumps(report_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: str | Path) -> None:
    """Write :func:`schema_text` to ``path``."""
    Path(path).write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":
    write_schema(sys.argv[1] if len(sys.argv) > 1 else "docs/report.schema.json")
