"""Which objects a model misses: the flag rate of phantom positives by object kind.

A phantom knows what each of its objects is (:attr:`~iqgate.data.phantoms.Sample.kinds`),
so a model's sensitivity can be split by kind, as a model card splits performance by
subgroup. An image counts for every kind it carries, and separately ("alone") for a
kind when all its objects are of that kind, which isolates the kind from the others.
"""

from __future__ import annotations

from collections.abc import Sequence

from iqgate.packages import KindCounts
from iqgate.study.metrics import wilson_interval


def flag_rates_by_kind(kinds: Sequence[Sequence[str]], flagged: Sequence[bool]) -> list[KindCounts]:
    """Flag counts per object kind, sorted by kind; images without objects are skipped.

    ``kinds[i]`` lists the kinds of image ``i``'s objects and ``flagged[i]`` says
    whether the model flagged it.
    """
    if len(kinds) != len(flagged):
        raise ValueError(f"{len(kinds)} kind lists for {len(flagged)} flags")
    rates = []
    for kind in sorted({k for image_kinds in kinds for k in image_kinds}):
        carrying = [bool(f) for ks, f in zip(kinds, flagged, strict=True) if kind in ks]
        alone = [bool(f) for ks, f in zip(kinds, flagged, strict=True) if ks and set(ks) == {kind}]
        rates.append(
            KindCounts(
                kind=kind,
                images=len(carrying),
                flagged=sum(carrying),
                alone_images=len(alone),
                alone_flagged=sum(alone),
            )
        )
    return rates


def _rate(hits: int, n: int) -> str:
    interval = wilson_interval(hits, n)
    if interval is None:
        return "-"
    return f"{hits / n:.2f} [{interval[0]:.2f}, {interval[1]:.2f}] ({hits}/{n})"


def kind_rate_table(rates: Sequence[KindCounts]) -> str:
    """A Markdown table of ``rates`` with 95 % Wilson intervals."""
    lines = [
        "| kind | flagged, any image with it [95 % CI] | flagged, images with it alone [95 % CI] |",
        "|---|---|---|",
    ]
    lines += [
        f"| {r.kind} | {_rate(r.flagged, r.images)} | {_rate(r.alone_flagged, r.alone_images)} |"
        for r in rates
    ]
    return "\n".join(lines)
