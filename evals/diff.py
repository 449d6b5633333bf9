"""Compare two runs question by question.

    old = load_results(Path("old.json"), RunResults)
    new = load_results(Path("evals/reports/latest.json"), RunResults)
    print(format_diff(diff_runs(old, new), old, new))

Only ids, failure reasons and pass counts are read, so runs written by older versions of the
harness still compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from assistant.errors import InvalidInput


class _Result(BaseModel):
    id: str
    reasons: list[str]


class _Summary(BaseModel):
    n: int
    passed: int
    pass_rate: float


class _System(BaseModel):
    label: str
    summary: _Summary
    results: list[_Result]


class RunResults(BaseModel):
    """The part of a run's JSON that ``diff`` reads."""

    systems: dict[str, _System]


M = TypeVar("M", bound=BaseModel)


class Change(BaseModel):
    """One question whose result differs between two runs of one system."""

    system: str
    id: str
    change: str  # fixed | broke | still failing, differently | added | removed
    before: list[str] | None
    after: list[str] | None


_CHANGES = {
    ("fail", "pass"): "fixed",
    ("pass", "fail"): "broke",
    ("fail", "fail"): "still failing, differently",
    ("absent", "pass"): "added",
    ("absent", "fail"): "added",
    ("pass", "absent"): "removed",
    ("fail", "absent"): "removed",
}


def load_results(path: Path, model: type[M]) -> M:
    """Read the JSON of a run (``latest.json``) as ``model``: ``RunResults`` is the part diff reads."""
    try:
        return model.model_validate_json(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidInput(f"Cannot read {path}: {exc}. Pass the path of a run's JSON.") from exc
    except ValidationError as exc:
        raise InvalidInput(
            f"{path} is not a report written by `python -m evals run`: {str(exc)[:200]}"
        ) from exc


def _status(reasons: list[str] | None) -> str:
    if reasons is None:
        return "absent"
    return "fail" if reasons else "pass"


def diff_runs(old: RunResults | BaseModel, new: RunResults | BaseModel) -> list[Change]:
    """Questions whose pass/fail (or failure reasons) changed, per system present in both."""
    old_run, new_run = _view(old), _view(new)
    changes: list[Change] = []
    for system in [s for s in new_run.systems if s in old_run.systems]:
        before = {r.id: r.reasons for r in old_run.systems[system].results}
        after = {r.id: r.reasons for r in new_run.systems[system].results}
        for qid in [*before, *[q for q in after if q not in before]]:
            was, now = before.get(qid), after.get(qid)
            if was != now:
                change = _CHANGES[(_status(was), _status(now))]
                changes.append(Change(system=system, id=qid, change=change, before=was, after=now))
    return changes


def _view(run: RunResults | BaseModel) -> RunResults:
    """An ``EvalRun`` or ``RunResults`` as ``RunResults``."""
    if isinstance(run, RunResults):
        return run
    return RunResults.model_validate(run.model_dump())


def format_diff(
    changes: list[Change], old: RunResults | BaseModel, new: RunResults | BaseModel
) -> str:
    """Plain-text listing for the console: pass rates, then one line per changed question."""
    old_run, new_run = _view(old), _view(new)
    lines = []
    for name, system in new_run.systems.items():
        if name not in old_run.systems:
            continue
        was, now = old_run.systems[name].summary, system.summary
        lines.append(
            f"{system.label}: pass rate {was.pass_rate:.1%} -> {now.pass_rate:.1%} "
            f"({was.passed}/{was.n} -> {now.passed}/{now.n})"
        )
        for change in (c for c in changes if c.system == name):
            if change.after:
                detail = "; ".join(change.after)
            elif change.before:
                detail = "was: " + "; ".join(change.before)
            else:
                detail = "passes"
            lines.append(f"  {change.id:<10} {change.change:<28} {detail}")
    if not changes:
        lines.append("No question changed result.")
    return "\n".join(lines)
