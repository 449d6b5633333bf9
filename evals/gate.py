"""The quality floors ``make test`` enforces, in one place.

    failures = gate_failures(run.systems["ours"].summary)  # [] when the gate passes

Set from a measured run, a little under it so one or two flipped questions do not fail CI
(measured 2026-11-22 on evals/questions.yaml, 159 questions: pass rate 0.943 [0.91–0.97],
must_cite recall 0.971, citation validity 1.0, 0/20 out-of-scope answered, no false refusal).
Never set the pass-rate floor below 0.90; raise the floors when the assistant improves.
"""

from __future__ import annotations

from evals.metrics import Summary

FLOORS: dict[str, float] = {
    "pass_rate": 0.92,
    "must_cite_recall": 0.95,
    "citation_validity": 1.0,
}
CEILINGS: dict[str, float] = {
    "out_of_scope_answered": 0,  # any answered out-of-scope question fails the gate
    "false_refusal_rate": 0.02,
}


def describe() -> str:
    """The gate as one line, for the report."""
    parts = [f"{metric} ≥ {value:g}" for metric, value in FLOORS.items()]
    parts += [f"{metric} ≤ {value:g}" for metric, value in CEILINGS.items()]
    return ", ".join(parts)


def gate_failures(
    summary: Summary,
    floors: dict[str, float] | None = None,
    ceilings: dict[str, float] | None = None,
) -> list[str]:
    """Each floor or ceiling the summary misses, as a sentence; empty when the gate passes."""
    failures: list[str] = []
    for metric, floor in (FLOORS if floors is None else floors).items():
        value = getattr(summary, metric)
        if value is not None and value < floor:
            failures.append(f"{metric} {value:.3f} is below the floor {floor:g}")
    for metric, ceiling in (CEILINGS if ceilings is None else ceilings).items():
        value = getattr(summary, metric)
        if value is not None and value > ceiling:
            if metric == "out_of_scope_answered":
                failures.append(f"{value} out-of-scope question(s) answered (allowed: {ceiling:g})")
            else:
                failures.append(f"{metric} {value:.3f} is above the ceiling {ceiling:g}")
    return failures
