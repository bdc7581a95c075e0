"""Which images a model applies to: a card's routing rules, a site's changes to them.

A model package's card carries :class:`Routing`; a site can extend or narrow it without
repackaging through a routing file (:class:`SiteRouting`, YAML). Rules are evaluated on
:class:`HeaderFacts`, the few header attributes routing reads, so the decision can be
made from a stored header summary as well as from a data set. Every rule that fails
gives a reason naming the attribute, its value and what the rule wanted; the reason's
rule name (:class:`Rule`) is what metrics count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydicom.dataset import Dataset

from iqgate.errors import RoutingFileError

SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)
"""Secondary Capture Image Storage SOP classes (PS3.4 B.5): images made, not acquired."""


class Rule(str, Enum):
    """The routing rules, in the order they are checked."""

    MODALITY = "modality"
    SOP_CLASS = "sop_class"
    PHOTOMETRIC = "photometric"
    DERIVED = "derived"
    BODY_PART = "body_part"
    DESCRIPTION = "description"


@dataclass(frozen=True)
class HeaderFacts:
    """What routing reads of an image header, upper-cased where DICOM is case-free."""

    modality: str = ""
    sop_class_uid: str = ""
    photometric: str = ""
    image_type: tuple[str, ...] = ()
    body_part: str = ""
    anatomic_regions: tuple[str, ...] = ()
    """Code meanings of the Anatomic Region Sequence."""
    descriptions: tuple[str, ...] = ()
    """Study Description, Series Description, Protocol Name (as written, non-empty)."""
    sop_instance_uid: str = ""
    manufacturers: tuple[str, ...] = ()
    """Manufacturer and those of the Contributing Equipment Sequence (as written,
    non-empty): with the SOP Instance UID, they tell iqgate's own results apart."""

    def to_json(self) -> str:
        """The facts as a JSON object, as the spool keeps them with the job."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> HeaderFacts:
        """Facts written by :meth:`to_json`; unknown keys are ignored."""
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in values.items()
                if key in known
            }
        )

    @classmethod
    def from_dataset(cls, ds: Dataset) -> HeaderFacts:
        """The facts of ``ds``; absent or empty attributes give empty values."""

        def text(keyword: str) -> str:
            return str(ds.get(keyword, "") or "").strip()

        image_type = ds.get("ImageType", []) or []
        if isinstance(image_type, str):
            image_type = image_type.split("\\")
        regions = [
            str(item.get("CodeMeaning", "") or "").strip()
            for item in ds.get("AnatomicRegionSequence", []) or []
        ]
        manufacturers = [text("Manufacturer")] + [
            str(item.get("Manufacturer", "") or "").strip()
            for item in ds.get("ContributingEquipmentSequence", []) or []
        ]
        return cls(
            modality=text("Modality").upper(),
            sop_class_uid=text("SOPClassUID"),
            photometric=text("PhotometricInterpretation").upper(),
            image_type=tuple(str(v).strip().upper() for v in image_type),
            body_part=text("BodyPartExamined").upper(),
            anatomic_regions=tuple(r for r in regions if r),
            descriptions=tuple(
                d
                for d in (text("StudyDescription"), text("SeriesDescription"), text("ProtocolName"))
                if d
            ),
            sop_instance_uid=text("SOPInstanceUID"),
            manufacturers=tuple(m for m in manufacturers if m),
        )

    @property
    def derived(self) -> bool:
        """Whether the image was made from others: ImageType DERIVED/SECONDARY, or an SC."""
        pixel_data_characteristics = self.image_type[:1]
        patient_examination_characteristics = self.image_type[1:2]
        return (
            "DERIVED" in pixel_data_characteristics
            or "SECONDARY" in patient_examination_characteristics
            or self.sop_class_uid in SECONDARY_CAPTURE_CLASSES
        )


def _checked_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` unchanged, once each compiles as a regular expression."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {pattern!r} ({exc})") from None
    return patterns


class Routing(BaseModel):
    """Which images a model applies to; an empty list means any value.

    - ``modalities``, ``sop_class_uids``, ``photometric_interpretations``: the value
      must be one of the list.
    - ``accept_derived``: whether derived and secondary images (ImageType DERIVED or
      SECONDARY, Secondary Capture) are assessed.
    - ``body_parts``: Body Part Examined must be one of them; where it is empty,
      ``body_part_patterns`` (regular expressions, case-free) must match an Anatomic
      Region code meaning, the Study or Series Description or the Protocol Name. With
      no patterns, an empty Body Part Examined does not match.
    - ``description_patterns``: one must match the Study or Series Description or the
      Protocol Name (for example the 4-chamber view of a cardiac MR).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    modalities: list[str] = Field(default_factory=list)
    sop_class_uids: list[str] = Field(default_factory=list)
    photometric_interpretations: list[str] = Field(
        default_factory=lambda: ["MONOCHROME1", "MONOCHROME2"]
    )
    accept_derived: bool = False
    body_parts: list[str] = Field(default_factory=list)
    body_part_patterns: list[str] = Field(default_factory=list)
    description_patterns: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("description_patterns", "series_description_patterns"),
    )

    @field_validator("body_part_patterns", "description_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return _checked_patterns(patterns)

    def mismatch(self, facts: HeaderFacts) -> tuple[Rule, str] | None:
        """The first rule ``facts`` fail, with the reason; None when the model applies."""
        for rule, value, allowed in (
            (Rule.MODALITY, facts.modality, self.modalities),
            (Rule.SOP_CLASS, facts.sop_class_uid, self.sop_class_uids),
            (Rule.PHOTOMETRIC, facts.photometric, self.photometric_interpretations),
        ):
            if allowed and value not in {a.upper() for a in allowed}:
                return rule, f"{rule.value} {value or '(empty)'} not in {list(allowed)}"
        if facts.derived and not self.accept_derived:
            kind = (
                "Secondary Capture"
                if facts.sop_class_uid in SECONDARY_CAPTURE_CLASSES
                else ("ImageType " + "\\".join(facts.image_type))
            )
            return Rule.DERIVED, f"derived image ({kind}) and derived images are not accepted"
        if self.body_parts:
            reason = self._body_part_mismatch(facts)
            if reason:
                return Rule.BODY_PART, reason
        if self.description_patterns and not _any_match(
            self.description_patterns, facts.descriptions
        ):
            return Rule.DESCRIPTION, (
                f"no description or protocol name matches {self.description_patterns}"
            )
        return None

    def _body_part_mismatch(self, facts: HeaderFacts) -> str | None:
        if facts.body_part:
            if facts.body_part in {b.upper() for b in self.body_parts}:
                return None
            return f"body part {facts.body_part} not in {self.body_parts}"
        if self.body_part_patterns and _any_match(
            self.body_part_patterns, facts.anatomic_regions + facts.descriptions
        ):
            return None
        return (
            f"body part empty and no anatomic region or description matches "
            f"{self.body_part_patterns}"
        )


def _any_match(patterns: list[str], texts: tuple[str, ...]) -> bool:
    return any(re.search(p, t, re.IGNORECASE) for p in patterns for t in texts)


class RoutingChange(BaseModel):
    """A site's change to one model's rules: values replaced, or lists extended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replace: dict[str, object] = Field(default_factory=dict)
    extend: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _applies_to_a_card(self) -> RoutingChange:
        """Unknown rules, wrong types and bad patterns are found when the file is read."""
        self.apply(Routing())
        return self

    def apply(self, routing: Routing) -> Routing:
        """``routing`` with this change made (validated as a whole)."""
        fields = routing.model_dump()
        unknown = (self.replace.keys() | self.extend.keys()) - fields.keys()
        if unknown:
            raise ValueError(f"unknown routing rules {sorted(unknown)}; known: {sorted(fields)}")
        fields.update(self.replace)
        for key, values in self.extend.items():
            if not isinstance(fields[key], list):
                raise ValueError(f"'extend' needs a list rule; {key} is not one")  # noqa: TRY004
            fields[key] = [*fields[key], *(v for v in values if v not in fields[key])]
        return Routing.model_validate(fields)


class SiteRouting(BaseModel):
    """A routing file: per model name, the site's change to the card's rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, RoutingChange] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> SiteRouting:
        """Read and check a routing file; a bad file raises naming what is wrong."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise RoutingFileError(f"routing file {path}: {exc}") from None

    def apply(self, card_rules: Mapping[str, Routing]) -> dict[str, Routing]:
        """Every model's rules with the site's changes; a change for a model that is not
        there raises (a typing error in a model name would otherwise go unnoticed)."""
        unknown = self.models.keys() - card_rules.keys()
        if unknown:
            raise RoutingFileError(
                f"routing file names models that are not loaded: {sorted(unknown)}; "
                f"loaded: {sorted(card_rules)}"
            )
        return {name: self.routing_for(name, rules) for name, rules in card_rules.items()}

    def routing_for(self, model_name: str, routing: Routing) -> Routing:
        """The rules for ``model_name``: its card's ``routing`` with the site's change."""
        change = self.models.get(model_name)
        if change is None:
            return routing
        try:
            return change.apply(routing)
        except (ValueError, ValidationError) as exc:
            raise RoutingFileError(f"routing file, model {model_name}: {exc}") from None


@dataclass(frozen=True)
class RouteDecision:
    """Which model assesses an image, or why none does.

    ``excluded`` is set when no model was asked (an iqgate result, not an image): its
    metric label and its reason. Otherwise ``refusals`` holds every model that does not
    apply, and ``model`` is the first that does (None when none does).
    """

    model: str | None
    refusals: dict[str, tuple[Rule, str]]
    """Per model that does not apply, in the order of the rules: the rule, the reason."""
    excluded: tuple[str, str] | None = None

    @property
    def reason(self) -> str:
        """Why no model assesses the image, in one line (empty when one does)."""
        if self.excluded is not None:
            return self.excluded[1]
        if self.model is None and not self.refusals:
            return "no model packages loaded"
        if self.model is not None:
            return ""
        return "; ".join(f"{name}: {reason}" for name, (_, reason) in self.refusals.items())

    @property
    def label(self) -> str:
        """What metrics count a not-assessed image by: the exclusion, or the rule of the
        refusal that came furthest (a knee radiograph fails the chest model's body part,
        not the cardiac model's modality)."""
        if self.excluded is not None:
            return self.excluded[0]
        if not self.refusals:
            return "no model applies"
        order = list(Rule)
        closest = max((rule for rule, _ in self.refusals.values()), key=order.index)
        return f"no model applies: {closest.value}"


def decide_route(rules: Mapping[str, Routing], facts: HeaderFacts) -> RouteDecision:
    """Every model's rules checked; the first model (in ``rules`` order) that applies."""
    refusals: dict[str, tuple[Rule, str]] = {}
    chosen: str | None = None
    for name, routing in rules.items():
        mismatch = routing.mismatch(facts)
        if mismatch is not None:
            refusals[name] = mismatch
        elif chosen is None:
            chosen = name
    return RouteDecision(chosen, refusals)


CHEST_RADIOGRAPHS = Routing(
    modalities=["DX", "CR"],
    body_parts=["CHEST"],
    body_part_patterns=[r"(?<![a-z])(chest|thorax|thoracic|cxr|lungs?)(?![a-z])"],
)
"""The foreign-object model's images: chest radiographs, by body part or, where that is
empty, by anatomic region or description; never derived images. Patterns are
case-free and delimited by anything but a letter (``Chest_PA`` matches)."""

CARDIAC_FOUR_CHAMBER_MR = Routing(
    modalities=["MR"],
    description_patterns=[
        r"(?<![\d.])4[\s_-]*ch(?![a-z])",
        r"(?<![\d.])(4|four)[\s_-]*chamber",
        r"(?<![a-z])hla(?![a-z])",
    ],
)
"""The LVOT model's images: cardiac MR 4-chamber views, by the series description or
protocol name sites use (4CH, 4 CH, 4-chamber, HLA)."""
