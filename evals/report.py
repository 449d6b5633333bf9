"""Write a run as ``latest.md`` (tables), ``latest.json`` (every result) and ``latest.png``.

paths = write_report(run, Path("evals/reports"))
print(console_table(run))
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from assistant.errors import InvalidInput
from evals.diff import load_results
from evals.gate import describe, gate_failures
from evals.harness import BASELINE, LABELS, OURS, EvalRun, SystemRun
from evals.metrics import Group, Interval, Summary

REPORT_STEM = "latest"


class ReportPaths(BaseModel):
    markdown: Path
    json_file: Path
    chart: Path | None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{1000 * value:.0f} ms"


def _ci(interval: Interval | None) -> str:
    return "" if interval is None else f" [{100 * interval.low:.0f}–{100 * interval.high:.0f}]"


# (label, formatter, applies to the baseline)
_ROWS: list[tuple[str, str, bool]] = [
    ("Pass rate (95% CI)", "pass", True),
    ("Pass rate, citation rule only (95% CI)", "citation_pass", True),
    ("Kind accuracy", "kind_accuracy", False),
    ("Element accuracy", "element_accuracy", False),
    ("Tier accuracy", "tier_accuracy", False),
    ("must_cite phrase recall", "must_cite_recall", True),
    ("Questions citing a must_not_cite phrase", "must_not_cite_violations", True),
    ("Citation precision", "citation_precision", True),
    ("Citation validity", "citation_validity", True),
    ("Refusal rate (out of scope)", "refusal_rate", True),
    ("Out-of-scope questions answered", "out_of_scope_answered", True),
    ("False-refusal rate (in scope)", "false_refusal_rate", True),
    ("Retrieval recall@5", "recall_at_5", True),
    ("Retrieval MRR", "mrr", True),
    ("Latency p50", "latency_p50_s", True),
    ("Latency p95", "latency_p95_s", True),
]


def _cell(summary: Summary, field: str, applies: bool) -> str:
    if not applies:
        return "n/a"
    if field == "pass":
        return f"{_pct(summary.pass_rate)}{_ci(summary.pass_ci)} ({summary.passed}/{summary.n})"
    if field == "citation_pass":
        return f"{_pct(summary.citation_pass_rate)}{_ci(summary.citation_pass_ci)}"
    value = getattr(summary, field)
    if field in ("must_not_cite_violations",):
        return str(value)
    if field == "out_of_scope_answered":
        return f"{value}/{summary.out_of_scope_n}"
    if field == "mrr":
        return _num(value)
    if field.startswith("latency"):
        return _ms(value)
    return _pct(value)


def summary_rows(run: EvalRun) -> list[list[str]]:
    """Metric, ours, baseline (when run) — the table the console and the report share."""
    ours = run.systems[OURS].summary
    base = run.systems.get(BASELINE)
    rows = []
    for label, field, applies in _ROWS:
        row = [label, _cell(ours, field, True)]
        if base is not None:
            cell = _cell(base.summary, field, applies)
            row.append(cell + " †" if field == "pass" else cell)
        rows.append(row)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _headers(run: EvalRun, first: str) -> list[str]:
    return [first] + [system.label for system in run.systems.values()]


def _group_headers(run: EvalRun, first: str) -> list[str]:
    header = [first, "n", LABELS[OURS], f"{LABELS[OURS]}, citation rule"]
    if BASELINE in run.systems:
        header.append(f"{LABELS[BASELINE]} (citation rule)")
    return header


def _group_rows(run: EvalRun, attribute: str) -> list[list[str]]:
    ours = {g.name: g for g in getattr(run.systems[OURS], attribute)}
    base = (
        {g.name: g for g in getattr(run.systems[BASELINE], attribute)}
        if BASELINE in run.systems
        else None
    )
    rows = []
    for name, group in ours.items():
        row = [
            name,
            str(group.n),
            f"{_pct(group.pass_rate)}{_ci(group.pass_ci)}",
            _pct(group.citation_pass_rate),
        ]
        if base is not None:
            row.append(f"{_pct(base[name].pass_rate)}{_ci(base[name].pass_ci)}")
        rows.append(row)
    return rows


def chart_series(run: EvalRun, attribute: str) -> list[tuple[str, list[Group], bool]]:
    """(label, groups, use the citation rule) for each bar of the chart."""
    ours: list[Group] = getattr(run.systems[OURS], attribute)
    series = [(LABELS[OURS], ours, False), (f"{LABELS[OURS]}, citation rule", ours, True)]
    if BASELINE in run.systems:
        series.append(
            (
                f"{LABELS[BASELINE]} (citation rule)",
                getattr(run.systems[BASELINE], attribute),
                False,
            )
        )
    return series


def console_table(run: EvalRun) -> str:
    """The short plain-text table a run prints."""
    rows = summary_rows(run)
    header = _headers(run, "Metric")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    return "\n".join(lines)


def _failures(system: SystemRun) -> str:
    failed = [r for r in system.results if not r.passed]
    if not failed:
        return "_None._"
    rows = [
        [
            r.id,
            r.expected_kind or "(either kind)",
            r.question.replace("\n", " "),
            "; ".join(r.reasons),
        ]
        for r in failed
    ]
    return _table(["id", "expected", "question", "why"], rows)


RULES = """\
- **Pass** (Plan Guide): the reply's kind, element and tier equal the expected ones where the
  question gives them, every `must_cite` phrase occurs in some cited passage, and no
  `must_not_cite` phrase does. Phrases match case-insensitively, with markdown stripped,
  whitespace folded and typographic quotes/dashes folded to ASCII.
- **Citation rule**: the pass rule without kind, element and tier, but the reply must refuse
  if and only if the question is out of scope. The naive baseline has no kind, element or
  tier, so its pass rate *is* the citation rule (its four retrieved chunks are its citations).
  It never refuses, so every out-of-scope question fails for it. Its "n/a" rows are checks it
  cannot take. Plan Guide is shown under both rules to compare like for like.
- **Citation precision**: share of citations containing a `must_cite` phrase, averaged over
  questions that have `must_cite` phrases and at least one citation.
- **Citation validity**: share of questions where every `[n]` marker maps to a citation and
  every cited id exists in the index.
- **Refusal rate**: share of out-of-scope questions answered with `out_of_scope`;
  **false-refusal rate**: the same share over all other questions.
- **Recall@5 / MRR**: over questions with `must_cite` phrases, the share of phrases found in
  the top-5 retrieved passages, and 1/rank of the first retrieved passage containing any of
  them (0 when none does). Plan Guide is ranked by `Assistant.retrieve(k=5)`, the baseline by
  its dense search (top-5; it cites the top-4).
- **Latency**: wall time of `Assistant.ask` per question (the baseline: its vector search),
  on the machine that ran the report; noisy when that machine is busy.
- **Intervals**: 95% percentile bootstrap of the pass rate, 1000 resamples, fixed seed.
- **Baseline**: the raw toolkit files split by LangChain's `RecursiveCharacterTextSplitter`
  (1000 characters, 200 overlap), embedded with the same all-MiniLM-L6-v2, stored in a Chroma
  collection, searched dense top-4 with the question alone (no history, no profile).
"""


def markdown(run: EvalRun, *, chart_name: str | None) -> str:
    """The full report."""
    meta = run.meta
    ours = run.systems[OURS]
    parts = [
        "# Plan Guide evaluation",
        "",
        f"- Questions: `{meta.questions_file}` ({meta.n_questions}, sha256 "
        f"`{meta.questions_sha256[:12]}`)",
        f"- Commit: `{meta.git_commit or 'none yet'}` (`+` = with uncommitted changes); "
        f"run at {meta.started_at} in "
        f"{meta.duration_s:.1f} s",
        f"- Systems: {', '.join(s.label for s in run.systems.values())}",
        "",
        "## Summary",
        "",
        _table(_headers(run, "Metric"), summary_rows(run)),
        "",
    ]
    if BASELINE in run.systems:
        parts += [
            "† The baseline has no kind, element or tier, so its pass rate is the citation rule "
            "(see *How it is scored*); compare it with Plan Guide's citation-rule row.",
            "",
        ]
    failures = gate_failures(ours.summary)
    parts += [
        f"Gate (`make test`, `evals/gate.py`): {describe()} — "
        + ("**passing**." if not failures else "**failing**: " + "; ".join(failures) + "."),
        "",
    ]
    if chart_name:
        parts += [f"![Pass rate by element and kind]({chart_name})", ""]
    parts += [
        "## Pass rate by kind",
        "",
        _table(_group_headers(run, "kind"), _group_rows(run, "by_kind")),
        "",
        "## Pass rate by element",
        "",
        _table(_group_headers(run, "element"), _group_rows(run, "by_element")),
        "",
        f"## Failing questions: {ours.label}",
        "",
        _failures(ours),
        "",
    ]
    if BASELINE in run.systems:
        base = run.systems[BASELINE]
        parts += [f"## Failing questions: {base.label}", "", _failures(base), ""]
    if meta.warnings:
        parts += ["## Question-set warnings", ""] + [f"- {w}" for w in meta.warnings] + [""]
    parts += ["## How it is scored", "", RULES]
    return "\n".join(parts)


def chart(run: EvalRun, path: Path) -> Path:
    """Grouped bars of pass rate by element and by kind: ours (both rules) and the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#1f5f7f", "#8fc1d9", "#d4a51c"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), gridspec_kw={"width_ratios": [8, 5]})
    for axis, attribute, title in (
        (axes[0], "by_element", "Pass rate by element"),
        (axes[1], "by_kind", "Pass rate by kind"),
    ):
        series = chart_series(run, attribute)
        names = [g.name for g in series[0][1]]
        width = 0.8 / len(series)
        for index, (label, groups, citation_rule) in enumerate(series):
            by_name = {g.name: g for g in groups}
            xs = [n + (index - (len(series) - 1) / 2) * width for n in range(len(names))]
            ys = [
                by_name[name].citation_pass_rate if citation_rule else by_name[name].pass_rate
                for name in names
            ]
            low, high = [], []
            for name, y in zip(names, ys, strict=True):
                interval = None if citation_rule else by_name[name].pass_ci
                low.append(max(0.0, y - interval.low) if interval else 0.0)
                high.append(max(0.0, interval.high - y) if interval else 0.0)
            axis.bar(
                xs,
                ys,
                width=width,
                label=label,
                color=colours[index % len(colours)],
                yerr=None if citation_rule else [low, high],
                capsize=2,
                error_kw={"elinewidth": 0.8, "alpha": 0.6},
            )
        counts = {g.name: g.n for g in series[0][1]}
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels(
            [f"{name}\n(n={counts[name]})" for name in names], rotation=30, ha="right", fontsize=8
        )
        axis.set_ylim(0, 1.05)
        axis.set_ylabel("pass rate")
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    overall = [run.systems[OURS].summary.pass_rate, run.systems[OURS].summary.citation_pass_rate]
    if BASELINE in run.systems:
        overall.append(run.systems[BASELINE].summary.pass_rate)
    labels = [f"{lab}: {100 * v:.0f}% overall" for lab, v in zip(labels, overall, strict=True)]
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=9, bbox_to_anchor=(0.5, 0.955))
    fig.suptitle(
        f"Plan Guide vs naive baseline: {run.meta.n_questions} questions "
        "(whiskers: 95% bootstrap CI)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.91))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(run: EvalRun, out_dir: Path, *, with_chart: bool = True) -> ReportPaths:
    """Write ``latest.md``, ``latest.json`` and ``latest.png`` into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / f"{REPORT_STEM}.json"
        json_path.write_text(run.model_dump_json(indent=2) + "\n", "utf-8")
        chart_path = chart(run, out_dir / f"{REPORT_STEM}.png") if with_chart else None
        md_path = out_dir / f"{REPORT_STEM}.md"
        md_path.write_text(
            markdown(run, chart_name=chart_path.name if chart_path else None), "utf-8"
        )
    except OSError as exc:
        raise InvalidInput(f"Cannot write the report to {out_dir}: {exc}. Pass --out DIR.") from exc
    return ReportPaths(markdown=md_path, json_file=json_path, chart=chart_path)


def load_run(path: Path) -> EvalRun:
    """Read a ``latest.json`` written by ``write_report``."""
    return load_results(path, EvalRun)
