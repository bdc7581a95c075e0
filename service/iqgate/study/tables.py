"""``tables.md``: our results laid out like the paper's Tables 2 to 6, its numbers beside.

Rendered from a ``results.json`` alone (see :mod:`iqgate.study.results`), so a run's
tables can be redrawn, or checked, without running anything. Each of our cells sits
next to the paper's printed value for the data set the run is compared with; the
paper's single-model and randomisation numbers (Tables 2 to 4) are for its ResNet, so
they are shown beside a ResNet only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from iqgate.study.baselines import BEST_FIXED_POINT, CONTENT_FREE_POINTERS
from iqgate.study.dom import DOM_TOLERANCE, dom_agrees
from iqgate.study.metrics import wilson_interval
from iqgate.study.paper_numbers import (
    ARCHITECTURE_TITLES,
    DATASET_TITLES,
    PAPER_ARCHITECTURES,
    RANDOMISATION,
    ROWS,
    TABLE2,
    TABLE5,
    TABLE6,
    PaperDataset,
    paper_column,
)
from iqgate.study.randomisation import CONDITION_TITLES, CONDITIONS

NOT_RUN = "not run"
NO_PAPER_VALUE = "—"
PAPER_TABLE_NUMBERS: dict[PaperDataset, int] = {"lvot": 3, "object-cxr": 4}
"""The paper's randomisation table for each data set."""


def fmt(value: float | None) -> str:
    """A score with three decimals, as the paper prints them."""
    return NO_PAPER_VALUE if value is None else f"{value:.3f}"


def fmt_mean_std(mean: float, std: float) -> str:
    """``mean ± std`` with three decimals."""
    return f"{mean:.3f} ± {std:.3f}"


def fmt_interval(hits: int, n: int) -> str:
    """The 95 % Wilson interval of ``hits / n`` as ``[low, high]``."""
    interval = wilson_interval(hits, n)
    return NO_PAPER_VALUE if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def _summary_cell(summary: Mapping[str, object] | None) -> str:
    if summary is None:
        return NOT_RUN
    return fmt_mean_std(float(summary["mean"]), float(summary["std"]))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _title(arch: str) -> str:
    return ARCHITECTURE_TITLES.get(arch, arch)


def _paper_title(dataset: PaperDataset, arch: str) -> str:
    return _title(PAPER_ARCHITECTURES[dataset][paper_column(arch)])


class _Results:
    """Read access to the parts of a results.json that the tables use."""

    def __init__(self, results: Mapping[str, object]) -> None:
        self.options: Mapping = results["options"]
        self.aggregates: Mapping = results["aggregates"]
        self.not_run: Mapping = results.get("not_run", {})
        self.dataset: PaperDataset = self.options["compare_with"]
        self.archs: list[str] = list(self.options["archs"])
        self.baselines: Mapping = results.get("baselines", {})

    def summary(
        self,
        condition: str,
        arch: str,
        row: str,
        smoothing: str = "smoothed",
        score: str = "pointing",
    ) -> Mapping[str, object] | None:
        found = self.aggregates[score].get(condition, {}).get(arch)
        return None if found is None else found[row][smoothing]

    def trial_one(
        self,
        arch: str,
        row: str,
        smoothing: str,
        condition: str = "repeated",
        score: str = "pointing",
    ) -> float | None:
        summary = self.summary(condition, arch, row, smoothing, score)
        return None if summary is None else float(summary["values"][0])

    def images(self, condition: str, arch: str) -> int | None:
        """Images explained per model of ``condition`` and ``arch``."""
        return self.aggregates.get("images_explained", {}).get(condition, {}).get(arch)

    def blanks(self, condition: str, arch: str, row: str) -> list[int] | None:
        """Blank smoothed maps per trial."""
        found = self.aggregates.get("blank_maps", {}).get(condition, {}).get(arch)
        return None if found is None else list(found[row]["smoothed"])

    def pooled_interval(self, condition: str, arch: str, row: str) -> str:
        """95 % Wilson interval of the smoothed PG, hits pooled over the trials."""
        summary, n = self.summary(condition, arch, row), self.images(condition, arch)
        if summary is None or not n:
            return NOT_RUN
        values = [float(v) for v in summary["values"]]
        return fmt_interval(round(sum(values) * n), n * len(values))

    def paired_difference(self, condition: str, arch: str, row: str) -> str:
        """Mean over trials of PG(positive) - PG(negative twin), smoothed."""
        twin = self.summary(condition, arch, row, score="twin_pointing")
        ours = self.summary(condition, arch, row)
        if twin is None or ours is None:
            return NO_PAPER_VALUE
        return f"{float(ours['mean']) - float(twin['mean']):+.3f}"


def _header(r: _Results) -> str:
    o = r.options
    settings = o["settings"]
    given = zip(r.archs, o["weights"], strict=True) if o["weights"] else ()
    weights = ", ".join(f"{a}: {w}" for a, w in given if w) or "none"
    return "\n".join(
        [
            "# Pointing Game benchmark",
            "",
            (
                f"Data `{o['data']}`, compared with the paper's {DATASET_TITLES[r.dataset]} columns "
                f"(paper architectures: {', '.join(map(_title, PAPER_ARCHITECTURES[r.dataset]))})."
            ),
            "",
            (
                f"- profile `{o['profile']}`; architectures {', '.join(r.archs)}; trials {o['trials']}; "
                f"input {o['train']['input_size']} px (packages: their own); packages: "
                f"{', '.join(o['packages']) or 'none'}; ImageNet weights: {weights}; training "
                f"augmentation `{o.get('augment', 'paper')}`"
                f"{', bfloat16 autocast on the CPU' if o.get('cpu_bf16') else ''}"
            ),
            (
                f"- target `{settings['target']}`, NormGrad combine `{settings['combine']}`, "
                f"tau {settings['tau']:g} px ({settings.get('tau_rule', 'given')}), pointing-game "
                f"frame `{settings['pg_frame']}`, smoothing sigma {settings['smooth_sigma']:g}"
            ),
            (
                "- Pointing Game accuracy T / (T + F) over the test images with at least one box; "
                "mean ± std over trials (population std); the paper's values as printed."
            ),
            (
                "- Beside every Pointing Game: its 95 % Wilson interval, the blank (constant) maps "
                "(scored as misses), the paired difference PG(positive) - PG(negative twin: the same "
                "image without the target, scored against the positive's boxes) and, below each "
                "table, what content-free pointers score on the same images."
            ),
        ]
    )


def pointer_block(r: _Results) -> str:
    """Content-free pointers on the same test images, per input size."""
    lines = []
    for size, scores in r.baselines.items():
        if not scores:
            continue
        rows = [
            [
                name,
                fmt(scores[name]["pg"]),
                fmt_interval(int(scores[name]["hits"]), int(scores[name]["images"])),
            ]
            for name in (*CONTENT_FREE_POINTERS, BEST_FIXED_POINT)
        ]
        rows.append(["uniform chance", fmt(scores["uniform chance"]["pg"]), NO_PAPER_VALUE])
        lines += [
            f"Content-free pointers on the same test images ({size}, smoothed PG):",
            "",
            markdown_table(["Pointer", "PG", "95 % CI"], rows),
        ]
    return "\n".join(lines)


def table2(r: _Results) -> str:
    """Table 2: one trained model (trial 1), unsmoothed and smoothed, with its chance rows."""
    arch = r.archs[0]
    resnet = paper_column(arch) == 0
    n = r.images("repeated", arch)
    rows = []
    for row in ROWS:
        paper = TABLE2[r.dataset][row.key] if resnet else (None, None)
        smoothed = r.trial_one(arch, row.key, "smoothed")
        twin = r.trial_one(arch, row.key, "smoothed", score="twin_pointing")
        blanks = r.blanks("repeated", arch, row.key)
        rows.append(
            [
                row.label,
                fmt(r.trial_one(arch, row.key, "unsmoothed")),
                fmt(paper[0]),
                fmt(smoothed),
                fmt(paper[1]),
                fmt_interval(round(smoothed * n), n) if smoothed is not None and n else NOT_RUN,
                str(blanks[0]) if blanks else NO_PAPER_VALUE,
                fmt(twin),
                NO_PAPER_VALUE if twin is None or smoothed is None else f"{smoothed - twin:+.3f}",
                fmt(r.trial_one(arch, row.key, "smoothed", condition="fr")),
            ]
        )
    return "\n".join(
        [
            "## Table 2: one trained model, unsmoothed and smoothed",
            "",
            (
                f"Ours: {_title(arch)}, trial 1 ({n} images with boxes). Paper: "
                f"{_title(PAPER_ARCHITECTURES[r.dataset][0])}. CI, blank, twin and FR refer to the "
                "smoothed maps; FR is the fully randomised trial 1."
            ),
            "",
            markdown_table(
                [
                    "Method",
                    "Unsmoothed",
                    "paper",
                    "Smoothed",
                    "paper",
                    "95 % CI",
                    "blank",
                    "twin",
                    "pos − twin",
                    "FR",
                ],
                rows,
            ),
            "",
            pointer_block(r),
        ]
    )


def randomisation_table(r: _Results, arch: str) -> str:
    """Tables 3 and 4: SR, FR and Repeated (smoothed), mean ± std over trials."""
    resnet = paper_column(arch) == 0
    rows = []
    for row in ROWS:
        cells = [row.label]
        for condition in ("sr", "fr", "repeated"):
            cells.append(_summary_cell(r.summary(condition, arch, row.key)))
            paper = RANDOMISATION[r.dataset][row.key][condition]
            cells.append(fmt_mean_std(*paper) if resnet else NO_PAPER_VALUE)
        blanks = [r.blanks(c, arch, row.key) for c in ("fr", "repeated")]
        cells += [
            r.pooled_interval("fr", arch, row.key),
            r.pooled_interval("repeated", arch, row.key),
            " / ".join(NO_PAPER_VALUE if b is None else str(sum(b)) for b in blanks),
            r.paired_difference("repeated", arch, row.key),
        ]
        rows.append(cells)
    header = ["Method"]
    for condition in ("sr", "fr", "repeated"):
        header += [CONDITION_TITLES[condition], "paper"]
    header += ["FR 95 % CI", "Rep. 95 % CI", "blank FR / Rep.", "Rep. pos − twin"]
    reason = r.not_run.get("sr", {}).get(arch)
    notes = [f"SR {NOT_RUN}: {reason}"] if reason else []
    paper_note = (
        f"Paper: {_paper_title(r.dataset, arch)}."
        if resnet
        else "The paper gives these for its ResNet only."
    )
    return "\n".join(
        [
            (
                f"## Table {PAPER_TABLE_NUMBERS[r.dataset]}: randomisation and repeatability, "
                f"{_title(arch)} (smoothed)"
            ),
            "",
            (
                f"Ours: {_title(arch)}. {paper_note} Intervals pool the hits of all trials; blank "
                "maps are summed over trials."
            ),
            "",
            markdown_table(header, rows),
            *(["", *notes] if notes else []),
            "",
            pointer_block(r),
        ]
    )


def table5(r: _Results) -> str:
    """Table 5: repeated PG of two architectures and their Difference of Means."""
    lines = ["## Table 5: two architectures and the Difference of Means (smoothed)", ""]
    dom = r.aggregates.get("dom")
    if len(r.archs) != 2 or dom is None:
        return "\n".join([*lines, f"{NOT_RUN}: the DoM needs two architectures (--arch A B)."])
    rows = []
    for row in ROWS:
        paper = TABLE5[r.dataset][row.key]
        paper_cells = (paper.resnet, paper.efficientnet)
        cells = [row.label]
        for arch in r.archs:
            cells += [
                _summary_cell(r.summary("repeated", arch, row.key)),
                r.pooled_interval("repeated", arch, row.key),
                fmt_mean_std(*paper_cells[paper_column(arch)]),
            ]
        blanks = [r.blanks("repeated", arch, row.key) for arch in r.archs]
        rows.append(
            [
                *cells,
                fmt(dom[row.key]["smoothed"]),
                fmt(paper.dom),
                " / ".join(r.paired_difference("repeated", arch, row.key) for arch in r.archs),
                " / ".join(NO_PAPER_VALUE if b is None else str(sum(b)) for b in blanks),
            ]
        )
    header = ["Method"]
    for arch in r.archs:
        header += [_title(arch), "95 % CI", f"paper {_paper_title(r.dataset, arch)}"]
    agreeing = sum(
        dom_agrees(p.dom, p.resnet[0], p.efficientnet[0]) for p in TABLE5[r.dataset].values()
    )
    return "\n".join(
        [
            *lines,
            markdown_table([*header, "DoM", "paper DoM", "pos − twin", "blank"], rows),
            "",
            (
                f"DoM = |mean repeated PG of {r.archs[0]} - that of {r.archs[1]}|. Compare DoM values "
                f"with a tolerance of {DOM_TOLERANCE}: the paper rounds its means and its DoM "
                f"separately; its printed DoM matches the difference of its printed means within "
                f"{DOM_TOLERANCE} in {agreeing} of {len(TABLE5[r.dataset])} rows."
            ),
            "",
            pointer_block(r),
        ]
    )


def table6(r: _Results) -> str:
    """Table 6: accuracy / AUC of each trained model on the test set."""
    classification = r.aggregates.get("classification", {})
    archs = [a for a in r.archs if a in classification]
    paper = TABLE6[r.dataset]
    trials = max([len(paper)] + [len(classification[a]["trials"]) for a in archs])
    rows = []
    for t in range(trials):
        cells = [f"T{t + 1}"]
        for arch in archs:
            ours = classification[arch]["trials"]
            cells.append(
                f"{fmt(ours[t]['accuracy'])} / {fmt(ours[t]['auc'])}" if t < len(ours) else NOT_RUN
            )
            theirs = paper[t][paper_column(arch)] if t < len(paper) else None
            cells.append(f"{fmt(theirs[0])} / {fmt(theirs[1])}" if theirs else NO_PAPER_VALUE)
        rows.append(cells)
    mean_row = ["mean ± std"]
    for arch in archs:
        accuracy, auc = classification[arch]["accuracy"], classification[arch]["auc"]
        mean_row += [f"{_summary_cell(accuracy)} / {_summary_cell(auc)}", NO_PAPER_VALUE]
    header = ["Trial"]
    for arch in archs:
        header += [_title(arch), f"paper {_paper_title(r.dataset, arch)}"]
    return "\n".join(
        [
            "## Table 6: accuracy / AUC per trial (test set, class 1 at probability >= 0.5)",
            "",
            markdown_table(header, [*rows, mean_row]),
        ]
    )


def objects_table(r: _Results) -> str:
    """Beyond the paper: Pointing Game beside the all-objects score, every condition."""
    columns = [
        (c, a) for a in r.archs for c in CONDITIONS if r.summary(c, a, ROWS[0].key) is not None
    ]
    rows = [
        [
            row.label,
            *(
                f"{float(r.summary(c, a, row.key)['mean']):.3f} / "
                f"{float(r.summary(c, a, row.key, score='objects')['mean']):.3f}"
                for c, a in columns
            ),
        ]
        for row in ROWS
    ]
    return "\n".join(
        [
            "## Beyond the paper: Pointing Game / all-objects score (smoothed, means over trials)",
            "",
            (
                "All-objects score: the fraction of an image's objects (boxes) hit by the top-k peaks "
                "of the map (k = number of objects, peaks at least tau apart), averaged over images. "
                "The Pointing Game counts a hit on any one object."
            ),
            "",
            markdown_table(["Method", *(f"{CONDITION_TITLES[c]} {a}" for c, a in columns)], rows),
        ]
    )


def render_tables(results: Mapping[str, object]) -> str:
    """The whole ``tables.md`` for one results.json."""
    r = _Results(results)
    sections = [
        _header(r),
        table2(r),
        *(randomisation_table(r, a) for a in r.archs),
        table5(r),
        table6(r),
        objects_table(r),
    ]
    return "\n\n".join(sections) + "\n"
