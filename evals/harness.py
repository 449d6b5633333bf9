"""The run loop: ask every question of a set, score it, and collect both systems' results.

run = run_eval(questions, bot=bot, baseline=baseline, questions_file=path)
run.systems["ours"].summary.pass_rate
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field

from assistant.config import ELEMENT_KEYS, OVERVIEW_FILE, TOOLKIT_FILE
from assistant.errors import AssistantError
from assistant.schema import KINDS, Passage, Reply
from evals.baseline import NaiveBaseline
from evals.metrics import (
    OUT_OF_SCOPE,
    CitedPassage,
    Group,
    Observed,
    QuestionResult,
    Summary,
    breakdown,
    by_element,
    by_kind,
    score,
    summarize,
)
from evals.phrases import normalize
from evals.questions import EvalQuestion

OURS = "ours"
BASELINE = "baseline"
LABELS = {OURS: "Plan Guide", BASELINE: "Naive baseline"}
RANK_K = 5


class AssistantLike(Protocol):
    """The part of ``assistant.Assistant`` the harness uses."""

    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] | None = ...,
        profile: Mapping[str, str] | None = ...,
    ) -> Reply: ...

    def retrieve(
        self,
        question: str,
        *,
        history: Sequence[str] = ...,
        profile: Mapping[str, str] | None = ...,
        k: int = ...,
    ) -> list[Passage]: ...

    def passage_ids(self) -> set[str]: ...


class SystemRun(BaseModel):
    """One system's results on the set."""

    name: str
    label: str
    summary: Summary
    by_kind: list[Group]
    by_element: list[Group]
    results: list[QuestionResult]


class RunMeta(BaseModel):
    questions_file: str
    questions_sha256: str
    n_questions: int
    started_at: str
    duration_s: float
    git_commit: str | None
    warnings: list[str] = Field(default_factory=list)


class EvalRun(BaseModel):
    """Everything ``latest.json`` holds."""

    meta: RunMeta
    systems: dict[str, SystemRun]


def observe_assistant(bot: AssistantLike, question: EvalQuestion) -> Observed:
    """Ask (timed) and retrieve top-5 (untimed); an ``AssistantError`` is a failed question."""
    history, profile = list(question.history), dict(question.profile)
    start = time.perf_counter()
    try:
        reply = bot.ask(question.question, history=history, profile=profile)
    except AssistantError as exc:
        return Observed(
            kind="error",
            text="",
            latency_s=time.perf_counter() - start,
            error=f"{type(exc).__name__}: {exc}",
        )
    latency = time.perf_counter() - start
    passages = bot.retrieve(question.question, history=history, profile=profile, k=RANK_K)
    return Observed(
        kind=reply.kind,
        element=reply.element,
        tier=reply.tier,
        text=reply.text,
        citations=[
            CitedPassage(marker=c.marker, id=c.id, text=c.text, title=c.title)
            for c in reply.citations
        ],
        refused=reply.kind == OUT_OF_SCOPE,
        retrieved_ids=[p.id for p in passages],
        retrieved_texts=[p.text for p in passages],
        latency_s=latency,
    )


def run_system(
    name: str,
    questions: list[EvalQuestion],
    observe: Callable[[EvalQuestion], Observed],
    *,
    valid_ids: set[str] | None,
    keep_answers: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> SystemRun:
    """Score ``observe`` on every question and aggregate; ``keep_answers`` stores reply texts."""
    results: list[QuestionResult] = []
    for number, question in enumerate(questions, start=1):
        result = score(question, observe(question), valid_ids=valid_ids)
        if not keep_answers:
            result.answer = ""
        results.append(result)
        if progress:
            progress(name, number, len(questions))
    return SystemRun(
        name=name,
        label=LABELS.get(name, name),
        summary=summarize(results),
        by_kind=breakdown(results, by_kind, order=KINDS),
        by_element=breakdown(results, by_element, order=(*ELEMENT_KEYS, "(no element)")),
        results=results,
    )


def phrase_warnings(questions: list[EvalQuestion], corpus_dir: Path | None) -> list[str]:
    """``must_cite`` phrases that occur nowhere in the toolkit: no system can ever cite them."""
    if corpus_dir is None:
        return []
    texts = []
    for name in (TOOLKIT_FILE, OVERVIEW_FILE):
        path = corpus_dir / name
        if path.is_file():
            texts.append(normalize(path.read_text("utf-8")))
    if not texts:
        return []
    warnings = []
    for question in questions:
        for phrase in question.expect.must_cite:
            if not any(normalize(phrase) in text for text in texts):
                warnings.append(
                    f"{question.id}: must_cite phrase {phrase!r} is not in the toolkit text"
                )
    return warnings


def _git(*args: str, cwd: Path | None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit, ``+`` when tracked files differ from it; read-only.

    None outside a repository or before the first commit.
    """
    commit = _git("rev-parse", "--short", "HEAD", cwd=cwd)
    if not commit:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return f"{commit}+" if dirty else commit


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when under it (reports stay portable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_eval(
    questions: list[EvalQuestion],
    *,
    bot: AssistantLike,
    baseline: NaiveBaseline | None = None,
    questions_file: Path | None = None,
    corpus_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalRun:
    """Run the assistant (and the baseline, when given) over ``questions``.

    Args:
        questions: a validated set (``load_questions``).
        bot: the assistant.
        baseline: the naive baseline, or None to skip it.
        questions_file: where the set came from, recorded in the report.
        corpus_dir: the toolkit folder, to warn about phrases no system can cite.
        progress: called with (system, done, total) after each question.

    Returns:
        Both systems' scored results and the run's metadata.
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    systems = {
        OURS: run_system(
            OURS,
            questions,
            lambda q: observe_assistant(bot, q),
            valid_ids=bot.passage_ids(),
            progress=progress,
        )
    }
    if baseline is not None:
        systems[BASELINE] = run_system(
            BASELINE,
            questions,
            lambda q: baseline.observe(q.question),
            valid_ids=baseline.chunk_ids(),
            keep_answers=False,  # its "answer" is four raw chunks, named by retrieved_ids
            progress=progress,
        )
    meta = RunMeta(
        questions_file=display_path(questions_file) if questions_file else "<memory>",
        questions_sha256=file_sha256(questions_file) if questions_file else "",
        n_questions=len(questions),
        started_at=started.strftime("%Y-%m-%d %H:%M UTC"),
        duration_s=round(time.perf_counter() - clock, 2),
        git_commit=git_commit(questions_file.parent if questions_file else None),
        warnings=phrase_warnings(questions, corpus_dir),
    )
    return EvalRun(meta=meta, systems=systems)
