r"""Aggregation over trials and the Difference of Means (paper sections 4.4 and 4.5).

Every randomisation and repeatability cell of the paper is a mean and standard
deviation over three trials (section 4.4). The paper does not say which standard
deviation; iqgate reports the population one (``ddof=0``, numpy's default) and records
that choice in its results.

The Difference of Means between two architectures A and B (section 4.5) is

.. math::
    \mathrm{DoM} = \left| \overline{PG}_A - \overline{PG}_B \right|

over each architecture's repeated Pointing Game accuracies. The paper rounds its
printed means and its DoM separately, so two of its DoM cells differ by 0.001 from the
difference of the printed means: compare with :data:`DOM_TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DOM_TOLERANCE = 0.001
"""How far a DoM may be from the difference of rounded means and still agree."""
STD_DDOF = 0
"""Delta degrees of freedom of the reported standard deviation (population std)."""


@dataclass(frozen=True)
class TrialSummary:
    """Mean and standard deviation of one score over trials, with the values."""

    mean: float
    std: float
    values: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        """Plain values for JSON."""
        return {
            "mean": self.mean,
            "std": self.std,
            "n": len(self.values),
            "values": list(self.values),
        }


def summarise(values: Sequence[float]) -> TrialSummary:
    """Mean and population standard deviation of per-trial scores.

    >>> summarise([0.5, 0.7]).std
    0.1
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"need one or more finite per-trial scores, got {list(values)!r}")
    return TrialSummary(
        round(float(array.mean()), 12),
        round(float(array.std(ddof=STD_DDOF)), 12),
        tuple(float(v) for v in array),
    )


def difference_of_means(scores_a: Sequence[float], scores_b: Sequence[float]) -> float:
    """DoM: the absolute difference of the mean repeated scores of two architectures.

    >>> difference_of_means([0.6, 0.62, 0.58], [0.61, 0.63, 0.62])
    0.02
    """
    return round(abs(summarise(scores_a).mean - summarise(scores_b).mean), 12)


def dom_agrees(dom: float, mean_a: float, mean_b: float, tolerance: float = DOM_TOLERANCE) -> bool:
    """Whether a DoM matches ``|mean_a - mean_b|`` within ``tolerance`` (rounded means).

    >>> dom_agrees(0.011, 0.839, 0.851)
    True
    """
    return abs(dom - abs(mean_a - mean_b)) <= tolerance + 1e-12
