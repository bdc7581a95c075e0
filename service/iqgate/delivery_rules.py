"""What goes where: per-destination rules over an output's kind and its image's verdict,
modality and calling AE title.

A rule names one destination (as written in ``IQGATE_PACS``) and, optionally, the output
kinds, verdicts, modalities and calling AE titles it takes; a field left out matches
anything. A destination without a rule of its own takes its transport's default
(:data:`DEFAULT_KINDS`: DICOM peers every DICOM output of every image, a webhook the
report of each flagged image). An output goes to every destination that has a
matching rule; an image that matches no rule of any destination goes nowhere, and the
caller counts it. :meth:`DeliveryRules.destinations_for` and :meth:`DeliveryRules.plan`
are pure functions of their arguments, so the same image always goes to the same places.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

OutputKind = Literal["sr", "sc", "original", "report"]
"""What the node delivers: the TID 1500 SR, the SC overlay, the received image, the JSON report."""
VerdictName = Literal["flagged", "pass", "not_assessed"]
DICOM_KINDS: frozenset[str] = frozenset({"sr", "sc", "original"})
REPORT_KINDS: frozenset[str] = frozenset({"report"})
DEFAULT_KINDS: dict[str, frozenset[str]] = {
    "dicom": DICOM_KINDS,
    "dicomweb": DICOM_KINDS,
    "webhook": REPORT_KINDS,
}
"""Transport -> the output kinds it can carry (and takes by default)."""
DEFAULT_VERDICTS: dict[str, frozenset[str] | None] = {
    "dicom": None,
    "dicomweb": None,
    "webhook": frozenset({"flagged"}),
}
"""Transport -> the verdicts its default rule takes (None: all)."""


class HasKind(Protocol):
    """An output as the rules see it: its kind (the node's ``OutputFile``)."""

    @property
    def kind(self) -> str: ...


O = TypeVar("O", bound=HasKind)


def _json_list(value: object) -> object:
    """Rules given as one JSON string (an environment variable) are decoded first."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else []
        except json.JSONDecodeError as exc:
            raise ValueError(f"delivery rules must be a JSON list of rules: {exc}") from None
    return value


class DeliveryRule(BaseModel):
    """One rule: ``destination`` takes these ``kinds`` of outputs for images with these
    ``verdicts``, ``modalities`` and ``calling_aes`` (left out: any)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    destination: str
    kinds: tuple[OutputKind, ...] | None = None
    verdicts: tuple[VerdictName, ...] | None = None
    modalities: tuple[str, ...] | None = None
    calling_aes: tuple[str, ...] | None = None


RuleList = Annotated[list[DeliveryRule], BeforeValidator(_json_list)]
"""The ``delivery_rules`` setting: YAML list, or a JSON list in the environment."""


@dataclass(frozen=True)
class ResolvedRule:
    """A rule bound to its destination's name and transport, its kinds filled in."""

    destination: str
    kinds: frozenset[str]
    verdicts: frozenset[str] | None
    modalities: frozenset[str] | None
    calling_aes: frozenset[str] | None

    def takes_image(self, verdict: str, modality: str, calling_ae: str) -> bool:
        """Whether the rule matches an image's verdict, modality and calling AE."""
        return (
            (self.verdicts is None or verdict in self.verdicts)
            and (self.modalities is None or modality.upper() in self.modalities)
            and (self.calling_aes is None or calling_ae.strip() in self.calling_aes)
        )


def _optional(values: Sequence[str] | None, normalise=str) -> frozenset[str] | None:
    return None if values is None else frozenset(normalise(v) for v in values)


@dataclass(frozen=True)
class DeliveryRules:
    """The rules of every destination, resolved once from the settings."""

    rules: tuple[ResolvedRule, ...]

    @classmethod
    def resolve(
        cls, destinations: Sequence[tuple[str, str]], rules: Sequence[DeliveryRule]
    ) -> DeliveryRules:
        """Bind ``rules`` to ``destinations`` ((name, transport) pairs, transport one of
        :data:`DEFAULT_KINDS`); a destination without a rule gets its transport's default.

        ``DeliveryRule.destination`` is matched against the names as parsed, so it may be
        written as in ``IQGATE_PACS``; raises ``ValueError`` for a rule naming no
        destination or asking a transport for an output kind it cannot carry.
        """
        transports = dict(destinations)
        resolved: list[ResolvedRule] = []
        for rule in rules:
            name = rule.destination
            if name not in transports:
                raise ValueError(
                    f"delivery rule for {name!r}: no such destination "
                    f"(destinations: {', '.join(transports) or 'none'})"
                )
            carried = DEFAULT_KINDS[transports[name]]
            kinds = carried if rule.kinds is None else frozenset(rule.kinds)
            if not kinds <= carried:
                raise ValueError(
                    f"delivery rule for {name!r}: a {transports[name]} destination cannot "
                    f"take {', '.join(sorted(kinds - carried))} (it takes {', '.join(sorted(carried))})"
                )
            resolved.append(
                ResolvedRule(
                    name,
                    kinds,
                    _optional(rule.verdicts),
                    _optional(rule.modalities, str.upper),
                    _optional(rule.calling_aes, str.strip),
                )
            )
        ruled = {rule.destination for rule in rules}
        for name, transport in destinations:
            if name not in ruled:
                resolved.append(
                    ResolvedRule(
                        name, DEFAULT_KINDS[transport], DEFAULT_VERDICTS[transport], None, None
                    )
                )
        return cls(tuple(resolved))

    def destinations_for(
        self, kind: str, verdict: str, modality: str, calling_ae: str
    ) -> tuple[str, ...]:
        """Where an output of ``kind`` of an image with this verdict, modality and calling
        AE goes: each destination with a matching rule, once, in rule order."""
        names = (
            rule.destination
            for rule in self.rules
            if kind in rule.kinds and rule.takes_image(verdict, modality, calling_ae)
        )
        return tuple(dict.fromkeys(names))

    def plan(
        self, outputs: Sequence[O], verdict: str, modality: str, calling_ae: str
    ) -> list[tuple[O, str]]:
        """(output, destination) for every output of one image and every destination it
        goes to, in the order of ``outputs``."""
        return [
            (output, name)
            for output in outputs
            for name in self.destinations_for(output.kind, verdict, modality, calling_ae)
        ]

    def unrouted(self, verdict: str, modality: str, calling_ae: str) -> bool:
        """Whether there are destinations but no rule matches the image: it goes nowhere,
        and the caller counts it."""
        return bool(self.rules) and not any(
            rule.takes_image(verdict, modality, calling_ae) for rule in self.rules
        )
