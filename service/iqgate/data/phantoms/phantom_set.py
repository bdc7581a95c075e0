"""``generate``: a lazy, reproducible set of phantom samples."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import overload

from iqgate.data.phantoms.cmr import render_cmr
from iqgate.data.phantoms.cxr import render_cxr
from iqgate.data.phantoms.sample import Sample, Task, label_for

_RENDERERS: dict[Task, Callable[[int, int, int], Sample]] = {
    Task.CXR: render_cxr,
    Task.CMR: render_cmr,
}


class PhantomSet(Sequence[Sample]):
    """``n`` phantom samples of one task, each rendered when it is indexed.

    Sample ``i`` depends only on the task, the seed, ``i`` and the positive fraction,
    so a set can be indexed in any order, by several workers, and re-created.
    """

    def __init__(self, task: Task, n: int, seed: int, positive_fraction: float) -> None:
        self.task = task
        self.n = n
        self.seed = seed
        self.positive_fraction = positive_fraction

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        position = operator.index(index)
        if position < 0:
            position += self.n
        if not 0 <= position < self.n:
            raise IndexError(f"sample index {index} is out of range for a set of {self.n}")
        label = label_for(position, self.positive_fraction)
        return _RENDERERS[self.task](self.seed, position, label)

    def __repr__(self) -> str:
        return (
            f"PhantomSet(task={self.task.value!r}, n={self.n}, seed={self.seed}, "
            f"positive_fraction={self.positive_fraction})"
        )


def generate(task: Task | str, n: int, *, seed: int, positive_fraction: float = 0.5) -> PhantomSet:
    """A reproducible set of ``n`` synthetic images with labels and boxes.

    Parameters
    ----------
    task : {"cxr", "cmr"}
        ``"cxr"``: chest radiographs, label 1 = foreign objects (Object-CXR stand-in).
        ``"cmr"``: 4-chamber cardiac MR frames, label 1 = LV outflow tract visible.
    n : int
        Number of samples.
    seed : int
        Non-negative seed; sample ``i`` is drawn from ``SeedSequence([seed, i, task code])``.
    positive_fraction : float
        Fraction of positives; any first ``k`` samples hold ``floor(k * fraction)``.

    Returns
    -------
    PhantomSet
        A lazy sequence of :class:`Sample`.

    Examples
    --------
    >>> samples = generate("cmr", 2, seed=0)
    >>> [s.label for s in samples]
    [0, 1]
    """
    task = Task.coerce(task)
    n = _non_negative_int("n", n)
    seed = _non_negative_int("seed", seed)
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(
            f"positive_fraction must lie in [0, 1]; got positive_fraction={positive_fraction!r}"
        )
    return PhantomSet(task, n, seed, float(positive_fraction))


def _non_negative_int(name: str, value: int) -> int:
    """``value`` as an ``int`` >= 0; the error names the argument and shows the value."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not a bool; got {name}={value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int; got {name}={value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must be >= 0; got {name}={number}")
    return number
