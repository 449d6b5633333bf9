"""Fit the query stage from the labelled questions, and measure how it generalizes.

    python -m evals fit               # refit, save, print the leave-one-writer-out table
    python -m evals fit --if-stale    # refit only when an example file changed (make index)
    python -m evals fit --no-folds    # refit and save only

Examples are every question file directly in ``evals/writers/`` (one file per writer) plus the gated
sets (``evals/questions.yaml``, ``evals/samples/*.yaml``); a file is a group. Leave-one-writer-out
refits everything (heads and thresholds) without one group, then runs the real assistant over
that group's questions and scores them with the evaluation rules: that is the generalization
figure. The in-set figure scores every group with the model fitted on all of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from assistant.classifier import (
    Example,
    Featurizer,
    Heads,
    examples_digest,
    fit_heads,
    tier_features,
)
from assistant.config import Settings
from assistant.guards import Rules
from assistant.progress import ProgressReader, account_clauses
from evals.phrases import normalize
from evals.questions import EvalQuestion, load_questions

if TYPE_CHECKING:
    from assistant.chat import Assistant

HERE = Path(__file__).resolve().parent
EXAMPLE_GLOBS = ("writers/*.yaml", "questions.yaml", "samples/*.yaml")
REPORT = HERE / "reports" / "generalization.md"
FIRST_CONTACT = HERE / "first_contact.yaml"
# What the fit's JSON keeps of each held-out question's result.
RESULT_FIELDS = {
    "id",
    "question",
    "expected_kind",
    "expected_element",
    "expected_tier",
    "kind",
    "element",
    "tier",
    "refused",
    "passed",
    "reasons",
}


def example_files(root: Path = HERE) -> list[Path]:
    files: list[Path] = []
    for pattern in EXAMPLE_GLOBS:
        files += sorted(root.glob(pattern))
    return files


def group_name(path: Path) -> str:
    return {"questions": "team", "holdout": "team-holdout", "fresh": "team-fresh"}.get(
        path.stem, path.stem
    )


def to_example(question: EvalQuestion, group: str) -> Example:
    expect = question.expect
    return Example(
        id=question.id,
        group=group,
        question=question.question,
        history=list(question.history),
        profile=dict(question.profile),
        kind=expect.kind,
        element=expect.element,
        tier=expect.tier,
        refusal=expect.refusal,
    )


class Training(BaseModel):
    """The examples with everything the heads are fitted on, computed once."""

    model_config = {"arbitrary_types_allowed": True}

    questions: list[EvalQuestion]
    examples: list[Example]
    features: Any
    tier_rows: Any
    named: list[str | None]
    languages: list[tuple[str, float]]
    digest: str

    def subset(self, rows: Sequence[int]) -> Training:
        return Training(
            questions=[self.questions[i] for i in rows],
            examples=[self.examples[i] for i in rows],
            features=self.features[list(rows)],
            tier_rows=self.tier_rows[list(rows)],
            named=[self.named[i] for i in rows],
            languages=[self.languages[i] for i in rows],
            digest=self.digest,
        )

    def fit(self) -> Heads:
        return fit_heads(
            self.examples,
            self.features,
            tier_rows=self.tier_rows,
            named=self.named,
            languages=self.languages,
            digest=self.digest,
        )


def _embed_cached(texts: list[str], embed: Callable[[list[str]], Any], cache: Path) -> np.ndarray:
    """Embeddings of ``texts``, reusing earlier ones kept in ``cache`` (keyed by text hash)."""
    keys = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
    known: dict[str, np.ndarray] = {}
    if cache.is_file():
        try:
            with np.load(cache) as data:
                known = {str(k): v for k, v in zip(data["keys"], data["vectors"], strict=True)}
        except (OSError, ValueError, KeyError):
            known = {}
    missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in known})
    if missing:
        vectors = np.asarray(embed(missing), dtype=np.float32)
        for text, vector in zip(missing, vectors, strict=True):
            known[hashlib.sha256(text.encode()).hexdigest()[:24]] = vector
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys]).astype(np.float32)


def prepare(
    files: Sequence[Path],
    *,
    featurizer: Featurizer,
    embed: Callable[[list[str]], Any],
    rules: Rules,
    cache: Path,
) -> Training:
    questions: list[EvalQuestion] = []
    examples: list[Example] = []
    passage_texts = [(p.id, normalize(p.text)) for p in featurizer.passages]
    for path in files:
        for question in load_questions(path):
            questions.append(question)
            example = to_example(question, group_name(path))
            # Read as the assistant reads a question: with staff shorthand spelled out.
            examples.append(
                example.model_copy(
                    update={
                        "question": rules.spelled_out(example.question),
                        "cites": cited_passages(question, passage_texts),
                    }
                )
            )
    vectors = _embed_cached([e.question for e in examples], embed, cache)
    features = featurizer.features(
        vectors,
        texts=[e.question for e in examples],
        rules=rules,
        follow_ups=[bool(e.history) for e in examples],
    )
    named = [rules.tier_named(e.question) for e in examples]
    return Training(
        questions=questions,
        examples=examples,
        features=features,
        tier_rows=_tier_rows(examples, features, named, featurizer, rules, embed, cache),
        named=named,
        languages=[rules.language(e.question) for e in examples],
        digest=examples_digest(files),
    )


def cited_passages(question: EvalQuestion, passages: Sequence[tuple[str, str]]) -> list[str]:
    """The ids of ``passages`` (id, normalized text) that hold a phrase a correct answer to
    ``question`` must quote (none for a follow-up, whose answer depends on the earlier turn,
    or a refusal)."""
    if question.history or question.expect.kind in (None, "out_of_scope"):
        return []
    phrases = [normalize(phrase) for phrase in question.expect.must_cite]
    return [pid for pid, text in passages if any(phrase in text for phrase in phrases)]


def _tier_rows(
    examples: Sequence[Example],
    features: np.ndarray,
    named: Sequence[str | None],
    featurizer: Featurizer,
    rules: Rules,
    embed: Callable[[list[str]], Any],
    cache: Path,
) -> np.ndarray:
    """The tier head's input for every example: its described progress matched as in a reply."""
    reader = ProgressReader(passages=featurizer.passages, rules=rules, embed=embed)
    clauses = [account_clauses(e.question) for e in examples]
    flat = [c for group in clauses for c in group]
    vectors = (
        _embed_cached(flat, embed, cache) if flat else np.zeros((0, featurizer.vectors.shape[1]))
    )
    rows, start = [], 0
    for example, own, row, tier in zip(examples, clauses, features, named, strict=True):
        progress = reader.read(example.question, example.element, vectors[start : start + len(own)])
        start += len(own)
        rows.append(tier_features(row[None, :], tier, progress.evidence())[0])
    return np.stack(rows)


class Score(BaseModel):
    """One group's scores under the evaluation rules."""

    group: str
    n: int
    kind: float | None
    element: float | None
    tier: float | None
    strict: float
    refused: float | None
    false_refusals: float | None
    counts: dict[str, int] = Field(
        default_factory=dict, description="how many questions each rate is over"
    )
    results: list[dict[str, Any]] = Field(
        default_factory=list,
        exclude=True,
        description="per question: what was expected, what came back, and why it failed",
    )


def _rate(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def score_group(bot: Assistant, group: str, questions: Sequence[EvalQuestion]) -> Score:
    """Run the real assistant over ``questions`` and score them with the evaluation rules."""
    from evals.harness import observe_assistant
    from evals.metrics import OUT_OF_SCOPE, score

    valid = bot.passage_ids()
    results = [score(q, observe_assistant(bot, q), valid_ids=valid) for q in questions]
    checks = {
        "kind": [r.kind_ok for r in results if r.kind_ok is not None],
        "element": [r.element_ok for r in results if r.element_ok is not None],
        "tier": [r.tier_ok for r in results if r.tier_ok is not None],
        "strict": [r.passed for r in results],
        "refused": [r.refused for r in results if r.expected_kind == OUT_OF_SCOPE],
        "false_refusals": [r.refused for r in results if r.expected_kind != OUT_OF_SCOPE],
    }
    return Score(
        group=group,
        n=len(results),
        kind=_rate(checks["kind"]),
        element=_rate(checks["element"]),
        tier=_rate(checks["tier"]),
        strict=_rate(checks["strict"]) or 0.0,
        refused=_rate(checks["refused"]),
        false_refusals=_rate(checks["false_refusals"]),
        counts={name: len(values) for name, values in checks.items()},
        results=[
            {
                "group": group,
                "follow_up": bool(q.history),
                **r.model_dump(include=RESULT_FIELDS),
            }
            for q, r in zip(questions, results, strict=True)
        ],
    )


def pooled(scores: Sequence[Score], name: str) -> Score:
    """Totals over groups: each rate over all the questions it is measured on (out-of-scope
    refusals over the out-of-scope questions, tier over the questions with a tier, ...)."""

    def mean(attr: str) -> float | None:
        pairs = [
            (getattr(s, attr), s.counts.get(attr, s.n))
            for s in scores
            if getattr(s, attr) is not None
        ]
        total = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / total if total else None

    return Score(
        group=name,
        n=sum(s.n for s in scores),
        kind=mean("kind"),
        element=mean("element"),
        tier=mean("tier"),
        strict=mean("strict") or 0.0,
        refused=mean("refused"),
        false_refusals=mean("false_refusals"),
        counts={
            key: sum(s.counts.get(key, 0) for s in scores)
            for key in {k for s in scores for k in s.counts}
        },
    )


def leave_one_writer_out(bot: Assistant, training: Training, heads: Heads) -> list[Score]:
    """For each group: refit without it, answer its questions with the real assistant."""
    groups = sorted({e.group for e in training.examples})
    scores: list[Score] = []
    try:
        for group in groups:
            train = [i for i, e in enumerate(training.examples) if e.group != group]
            test = [i for i, e in enumerate(training.examples) if e.group == group]
            bot.use_heads(training.subset(train).fit())
            scores.append(score_group(bot, group, [training.questions[i] for i in test]))
    finally:
        bot.use_heads(heads)
    return scores


def in_set(bot: Assistant, training: Training) -> list[Score]:
    groups = sorted({e.group for e in training.examples})
    return [
        score_group(
            bot,
            g,
            [q for q, e in zip(training.questions, training.examples, strict=True) if e.group == g],
        )
        for g in groups
    ]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def table(held_out: Sequence[Score], inside: Sequence[Score]) -> str:
    """The leave-one-writer-out table, with the in-set strict pass beside it."""
    strict_in = {s.group: s.strict for s in inside}
    lines = [
        "| writer (held out) | n | kind | element | tier | strict pass | OOS refused (n) | false refusals (n) | in-set strict pass |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*held_out, pooled(held_out, "**all writers**")]
    strict_in["**all writers**"] = pooled(inside, "all").strict
    for s in rows:
        lines.append(
            f"| {s.group} | {s.n} | {_pct(s.kind)} | {_pct(s.element)} | {_pct(s.tier)} | "
            f"{_pct(s.strict)} | {_pct(s.refused)} ({s.counts.get('refused', 0)}) | "
            f"{_pct(s.false_refusals)} ({s.counts.get('false_refusals', 0)}) | "
            f"{_pct(strict_in.get(s.group))} |"
        )
    return "\n".join(lines)


def first_contact_table(path: Path = FIRST_CONTACT) -> str:
    import yaml

    if not path.is_file():
        return "(no first-contact sets recorded yet)"
    rows = yaml.safe_load(path.read_text("utf-8")) or []
    lines = [
        "| round | set | date | writer brief | n | strict pass at first contact | OOS refused | false refusals |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.get('round', '–')} | {row['set']} | {row['date']} | {row['brief']} | "
            f"{row['n']} | {row['strict']} | "
            f"{row.get('refused', '–')} | {row.get('false_refusals', '–')} |"
        )
    return "\n".join(lines)


def write_report(held_out: Sequence[Score], inside: Sequence[Score], heads: Heads) -> Path:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        "# Generalization of the query stage\n\n"
        "Written by `python -m evals fit`. Leave-one-writer-out: the heads and thresholds are "
        "refitted without one writer's file, then the real assistant answers that writer's "
        "questions and the evaluation rules score them (strict pass = kind, element, tier and "
        "every phrase rule). In-set: fitted on every file.\n\n"
        f"Fitted on {heads.n_examples} questions from {len(heads.groups)} files "
        f"(sha256 {heads.examples_sha256[:12]}); refusal threshold "
        f"{heads.refuse_threshold:.3f}, language threshold {heads.language_threshold}.\n\n"
        f"{table(held_out, inside)}\n\n"
        "## First contact\n\nEach set was scored once, before any of its failures was read; "
        "it joined the training data afterwards.\n\n"
        f"{first_contact_table()}\n",
        "utf-8",
    )
    return REPORT


class FitSummary(BaseModel):
    path: str
    refitted: bool
    seconds: float
    description: str


def fit(settings: Settings, *, if_stale: bool = False) -> FitSummary:
    """Fit and save the heads (unless ``if_stale`` and the saved ones match the examples)."""
    from assistant.classifier import describe

    files = example_files()
    path = settings.resolved_query_model
    clock = time.perf_counter()
    if if_stale and path.is_file():
        try:
            saved = Heads.load(path)
            if saved.examples_sha256 == examples_digest(files):
                return FitSummary(
                    path=str(path), refitted=False, seconds=0.0, description=describe(saved)
                )
        except Exception:  # unreadable: refit below
            pass
    training = open_training(settings, files)
    heads = training.fit()
    heads.save(path)
    return FitSummary(
        path=str(path),
        refitted=True,
        seconds=round(time.perf_counter() - clock, 1),
        description=describe(heads),
    )


def open_training(settings: Settings, files: Sequence[Path]) -> Training:
    """The examples of ``files`` with their features, from the index's toolkit passages."""
    from assistant.chat import TOOLKIT_SOURCES
    from assistant.embeddings import make_embeddings
    from assistant.store import Store

    embeddings = make_embeddings(settings)
    store = Store.open(settings, embeddings)
    passages, vectors = store.passages_with_vectors(sources=TOOLKIT_SOURCES)
    return prepare(
        files,
        featurizer=Featurizer(passages, vectors),
        embed=embeddings.embed_documents,
        rules=Rules.load(),
        cache=settings.data_dir / "example-vectors.npz",
    )


def evaluate_generalization(settings: Settings) -> tuple[list[Score], list[Score], Heads]:
    """Leave-one-writer-out and in-set scores for the saved model's examples."""
    from assistant.chat import Assistant

    bot = Assistant.from_settings(settings)
    training = prepare(
        example_files(),
        featurizer=bot.query.featurizer,
        embed=bot.embeddings.embed_documents,
        rules=bot.query.rules,
        cache=settings.data_dir / "example-vectors.npz",
    )
    heads = bot.query.heads
    held_out = leave_one_writer_out(bot, training, heads)
    inside = in_set(bot, training)
    return held_out, inside, heads


def fit_json(held_out: Sequence[Score], inside: Sequence[Score]) -> str:
    return json.dumps(
        {
            "leave_one_writer_out": [s.model_dump() for s in held_out],
            "pooled": pooled(held_out, "all").model_dump(),
            "in_set": [s.model_dump() for s in inside],
            "in_set_pooled": pooled(inside, "all").model_dump(),
            "leave_one_writer_out_questions": [r for s in held_out for r in s.results],
        },
        indent=2,
    )
