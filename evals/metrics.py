"""Score one reply against its question, and aggregate a run.

    result = score(question, observed, valid_ids=bot.passage_ids())
    summary = summarize([result, ...])

The rules (also printed in the report):

* pass = kind, element and tier match where the question gives them, every ``must_cite``
  phrase occurs in some cited passage, and no ``must_not_cite`` phrase does.
* citation rule = the same without kind, element and tier, but refused if and only if the
  question is out of scope. A system without labels (the baseline) is held to it, and fails
  every out-of-scope question because it never refuses.
* citation precision = share of citations that contain a ``must_cite`` phrase (questions
  with ``must_cite`` and at least one citation).
* citation validity = every ``[n]`` in the text maps to a citation and every cited id exists
  in the index.
* recall@5 = share of ``must_cite`` phrases found in the top-5 retrieved passages; MRR = 1/rank
  of the first retrieved passage containing any of them (0 when none does).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from evals.phrases import found_in_any, normalize
from evals.questions import EvalQuestion

OUT_OF_SCOPE = "out_of_scope"
_MARKER = re.compile(r"\[(\d+)\]")
BOOTSTRAP_SEED = 20240917
BOOTSTRAP_RESAMPLES = 1000


class CitedPassage(BaseModel):
    """One citation as the metrics see it."""

    marker: int
    id: str
    text: str
    title: str = ""


class Observed(BaseModel):
    """What a system produced for one question: its reply and its ranked retrieval."""

    kind: str | None = Field(description="None for a system without labels (the baseline)")
    element: str | None = None
    tier: str | None = None
    text: str
    citations: list[CitedPassage] = Field(default_factory=list)
    refused: bool = False
    retrieved_ids: list[str] = Field(default_factory=list, description="top-5, best first")
    retrieved_texts: list[str] = Field(default_factory=list)
    latency_s: float = 0.0
    error: str | None = Field(default=None, description="the AssistantError message, if any")


class QuestionResult(BaseModel):
    """Every check for one question; the unit ``latest.json`` stores and ``diff`` compares."""

    id: str
    question: str
    expected_kind: str | None
    expected_element: str | None
    expected_tier: str | None
    kind: str | None
    element: str | None
    tier: str | None
    refused: bool
    kind_ok: bool | None
    element_ok: bool | None
    tier_ok: bool | None
    must_cite_found: list[str]
    must_cite_missing: list[str]
    must_not_cite_hits: list[str]
    citation_precision: float | None
    citations_valid: bool
    citation_problems: list[str]
    recall_at_5: float | None
    mrr: float | None
    latency_s: float
    passed: bool
    citation_passed: bool = Field(
        description="the citation rule alone: must_cite found, no must_not_cite, refused iff "
        "out of scope (the rule the baseline is held to)"
    )
    reasons: list[str] = Field(description="why it failed; empty when it passed")
    cited_ids: list[str]
    retrieved_ids: list[str]
    answer: str
    error: str | None = None


class Interval(BaseModel):
    low: float
    high: float


class Summary(BaseModel):
    """Overall numbers for one system; rates are None when no question qualifies."""

    n: int
    passed: int
    pass_rate: float
    pass_ci: Interval | None
    citation_pass_rate: float
    citation_pass_ci: Interval | None
    kind_accuracy: float | None
    element_accuracy: float | None
    tier_accuracy: float | None
    must_cite_recall: float | None
    must_not_cite_violations: int
    citation_precision: float | None
    citation_validity: float | None
    out_of_scope_n: int
    refusal_rate: float | None
    out_of_scope_answered: int
    false_refusal_rate: float | None
    recall_at_5: float | None
    mrr: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None


class Group(BaseModel):
    """Pass rate of one slice (a kind or an element)."""

    name: str
    n: int
    passed: int
    pass_rate: float
    pass_ci: Interval | None
    citation_pass_rate: float


def citation_problems(
    text: str, citations: list[CitedPassage], valid_ids: set[str] | None
) -> list[str]:
    """Markers without a citation, and cited ids missing from the index."""
    problems: list[str] = []
    markers = {c.marker for c in citations}
    for number in sorted({int(m) for m in _MARKER.findall(text)}):
        if number not in markers:
            problems.append(f"marker [{number}] has no citation")
    if valid_ids is not None:
        for citation in citations:
            if citation.id not in valid_ids:
                problems.append(
                    f"citation [{citation.marker}] id {citation.id!r} is not in the index"
                )
    return problems


def _ranking(question: EvalQuestion, texts: list[str]) -> tuple[float | None, float | None]:
    """recall@5 and reciprocal rank of the must_cite phrases in the ranked ``texts``."""
    phrases = question.expect.must_cite
    if not phrases:
        return None, None
    top = texts[:5]
    recall = sum(found_in_any(top, p) for p in phrases) / len(phrases)
    reciprocal = 0.0
    for rank, text in enumerate(top, start=1):
        if any(normalize(p) in normalize(text) for p in phrases):
            reciprocal = 1.0 / rank
            break
    return recall, reciprocal


def score(
    question: EvalQuestion, observed: Observed, *, valid_ids: set[str] | None
) -> QuestionResult:
    """Apply the pass rule and every metric to one observed reply.

    Args:
        question: the validated question.
        observed: the system's reply (``kind=None`` marks a system without labels).
        valid_ids: every passage id in the index, or None to skip the existence check.

    Returns:
        The per-question result, with human-readable ``reasons`` when it failed.
    """
    expect = question.expect
    labelled = observed.kind is not None
    cited_texts = [c.text for c in observed.citations]
    found = [p for p in expect.must_cite if found_in_any(cited_texts, p)]
    missing = [p for p in expect.must_cite if p not in found]
    hits = [p for p in expect.must_not_cite if found_in_any(cited_texts, p)]

    kind_ok = element_ok = tier_ok = None
    if labelled:
        kind_ok = observed.kind == expect.kind if expect.kind is not None else None
        if expect.element is not None:
            element_ok = observed.element == expect.element
        if expect.tier is not None:
            tier_ok = observed.tier == expect.tier

    precision: float | None = None
    if expect.must_cite and observed.citations:
        relevant = sum(
            any(normalize(p) in normalize(c.text) for p in expect.must_cite)
            for c in observed.citations
        )
        precision = relevant / len(observed.citations)

    problems = citation_problems(observed.text, observed.citations, valid_ids)
    recall5, mrr = _ranking(question, observed.retrieved_texts)

    reasons: list[str] = []
    scope_ok = observed.refused == (expect.kind == OUT_OF_SCOPE)
    if observed.error:
        reasons.append(f"error: {observed.error}")
    if expect.kind == OUT_OF_SCOPE and not observed.refused:
        reasons.append("answered an out-of-scope question")
    elif expect.kind != OUT_OF_SCOPE and observed.refused:
        reasons.append("refused an in-scope question")
    elif kind_ok is False:
        reasons.append(f"kind {observed.kind} != {expect.kind}")
    if element_ok is False:
        reasons.append(f"element {observed.element} != {expect.element}")
    if tier_ok is False:
        reasons.append(f"tier {observed.tier} != {expect.tier}")
    if missing:
        reasons.append("not cited: " + "; ".join(repr(p) for p in missing))
    if hits:
        reasons.append("cited but forbidden: " + "; ".join(repr(p) for p in hits))

    return QuestionResult(
        id=question.id,
        question=question.question,
        expected_kind=expect.kind,
        expected_element=expect.element,
        expected_tier=expect.tier,
        kind=observed.kind,
        element=observed.element,
        tier=observed.tier,
        refused=observed.refused,
        kind_ok=kind_ok,
        element_ok=element_ok,
        tier_ok=tier_ok,
        must_cite_found=found,
        must_cite_missing=missing,
        must_not_cite_hits=hits,
        citation_precision=precision,
        citations_valid=not problems,
        citation_problems=problems,
        recall_at_5=recall5,
        mrr=mrr,
        latency_s=observed.latency_s,
        passed=not reasons,
        citation_passed=scope_ok and not missing and not hits and not observed.error,
        reasons=reasons,
        cited_ids=[c.id for c in observed.citations],
        retrieved_ids=observed.retrieved_ids,
        answer=observed.text,
        error=observed.error,
    )


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_ci(
    outcomes: list[bool],
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> Interval | None:
    """Percentile bootstrap interval of the mean of ``outcomes``; same seed, same interval."""
    if not outcomes:
        return None
    rng = random.Random(seed)
    n = len(outcomes)
    values = [1.0 if o else 0.0 for o in outcomes]
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1 - level) / 2 * 100
    low, high = percentile(means, tail), percentile(means, 100 - tail)
    assert low is not None and high is not None
    return Interval(low=low, high=high)


def _mean(values: Iterable[float | bool | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def summarize(results: list[QuestionResult]) -> Summary:
    """Overall numbers for one system's results."""
    out = [r for r in results if r.expected_kind == OUT_OF_SCOPE]
    inside = [r for r in results if r.expected_kind != OUT_OF_SCOPE]
    phrases = sum(len(r.must_cite_found) + len(r.must_cite_missing) for r in results)
    found = sum(len(r.must_cite_found) for r in results)
    latencies = [r.latency_s for r in results]
    passed = sum(r.passed for r in results)
    return Summary(
        n=len(results),
        passed=passed,
        pass_rate=passed / len(results) if results else 0.0,
        pass_ci=bootstrap_ci([r.passed for r in results]),
        citation_pass_rate=_mean(r.citation_passed for r in results) or 0.0,
        citation_pass_ci=bootstrap_ci([r.citation_passed for r in results]),
        kind_accuracy=_mean(r.kind_ok for r in results),
        element_accuracy=_mean(r.element_ok for r in results),
        tier_accuracy=_mean(r.tier_ok for r in results),
        must_cite_recall=found / phrases if phrases else None,
        must_not_cite_violations=sum(bool(r.must_not_cite_hits) for r in results),
        citation_precision=_mean(r.citation_precision for r in results),
        citation_validity=_mean(r.citations_valid for r in results),
        out_of_scope_n=len(out),
        refusal_rate=_mean(r.refused for r in out),
        out_of_scope_answered=sum(not r.refused for r in out),
        false_refusal_rate=_mean(r.refused for r in inside),
        recall_at_5=_mean(r.recall_at_5 for r in results),
        mrr=_mean(r.mrr for r in results),
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
    )


def breakdown(
    results: list[QuestionResult],
    key: Callable[[QuestionResult], str],
    *,
    order: tuple[str, ...] = (),
) -> list[Group]:
    """Pass rate with a bootstrap interval for each value of ``key``; ``order`` first."""
    groups: dict[str, list[QuestionResult]] = {}
    for result in results:
        groups.setdefault(key(result), []).append(result)
    rank = {name: n for n, name in enumerate(order)}
    names = sorted(groups, key=lambda name: (rank.get(name, len(rank)), name))
    return [
        Group(
            name=name,
            n=len(members),
            passed=sum(m.passed for m in members),
            pass_rate=sum(m.passed for m in members) / len(members),
            pass_ci=bootstrap_ci([m.passed for m in members]),
            citation_pass_rate=sum(m.citation_passed for m in members) / len(members),
        )
        for name in names
        for members in [groups[name]]
    ]


def by_kind(result: QuestionResult) -> str:
    return result.expected_kind or "(either kind)"


def by_element(result: QuestionResult) -> str:
    return result.expected_element or "(no element)"
