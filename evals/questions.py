"""Load and validate a question set (YAML list of questions; format in ``evals/README.md``).

    questions = load_questions(Path("evals/questions.yaml"))
    questions[0].expect.kind  # 'next_steps'

Every problem raises ``InvalidInput`` naming the file, the question id and the bad value, so a
set written by someone else fails loudly instead of scoring wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.errors import InvalidInput
from assistant.schema import KINDS

QUESTION_KEYS: tuple[str, ...] = ("id", "question", "history", "profile", "expect")
EXPECT_KEYS: tuple[str, ...] = (
    "kind",
    "element",
    "tier",
    "refusal",
    "must_cite",
    "must_not_cite",
)
# Why an out-of-scope question is refused (optional; trains the refusal head).
REFUSALS: tuple[str, ...] = (
    "not_covered",
    "write_new",
    "small_talk",
    "member_decision",
    "clinical",
    "injection",
    "other_language",
)
# What ``Assistant.ask`` takes as a profile value: "none" = nothing done yet on that element.
PROFILE_VALUES: tuple[str, ...] = ("none", *TIER_KEYS)


class Expect(BaseModel):
    """What a correct reply looks like; ``None`` means "not checked"."""

    model_config = ConfigDict(frozen=True)

    kind: str | None = Field(description="None: two kinds are fair answers, not checked")
    element: str | None = None
    tier: str | None = None
    refusal: str | None = None
    must_cite: list[str] = Field(default_factory=list)
    must_not_cite: list[str] = Field(default_factory=list)


class EvalQuestion(BaseModel):
    """One question of the set, as validated."""

    model_config = ConfigDict(frozen=True)

    id: str
    question: str
    history: list[str] = Field(default_factory=list)
    profile: dict[str, str] = Field(default_factory=dict)
    expect: Expect


def _options(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def _strings(value: Any, *, where: str, allow_empty_list: bool = True) -> list[str]:
    """A list of non-empty strings, or ``InvalidInput`` saying what was found instead."""
    if value is None:
        return []
    if isinstance(value, str):
        raise InvalidInput(
            f"{where} must be a list of strings, got the string {value!r}; write it as [{value!r}]."
        )
    if not isinstance(value, list):
        raise InvalidInput(f"{where} must be a list of strings, got {type(value).__name__}.")
    out: list[str] = []
    for entry in value:
        if not isinstance(entry, str) or not entry.strip():
            raise InvalidInput(f"{where} has {entry!r}; every entry must be a non-empty string.")
        out.append(entry)
    if not out and not allow_empty_list:
        raise InvalidInput(f"{where} is empty.")
    return out


def _unknown_keys(raw: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {', '.join(repr(k) for k in unknown)}. "
            f"Allowed keys: {_options(allowed)}."
        )


def _choice(
    value: Any, options: tuple[str, ...], *, what: str, where: str, nullable: bool
) -> str | None:
    if value is None and nullable:
        return None
    if value not in options:
        extra = " or null" if nullable else ""
        raise InvalidInput(
            f"{where}: unknown {what} {value!r}. Use one of: {_options(options)}{extra}."
        )
    return str(value)


def parse_question(raw: Any, *, position: int, source: str = "<questions>") -> EvalQuestion:
    """Validate one raw YAML entry; ``position`` (1-based) names it when it has no id."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{source}: entry #{position} must be a mapping with id, question and expect, "
            f"got {type(raw).__name__}."
        )
    qid = raw.get("id")
    if not isinstance(qid, str) or not qid.strip():
        raise InvalidInput(
            f"{source}: entry #{position} needs an 'id' string (e.g. id: q{position:03d}), "
            f"got {qid!r}."
        )
    where = f"{source}: question {qid}"
    _unknown_keys(raw, QUESTION_KEYS, where)

    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InvalidInput(f"{where}: 'question' must be a non-empty string, got {question!r}.")
    history = _strings(raw.get("history"), where=f"{where}: 'history'")

    profile_raw = raw.get("profile") or {}
    if not isinstance(profile_raw, dict):
        raise InvalidInput(
            f"{where}: 'profile' must map element -> tier, got {type(profile_raw).__name__}."
        )
    profile: dict[str, str] = {}
    for element, tier in profile_raw.items():
        key = _choice(element, ELEMENT_KEYS, what="element in profile", where=where, nullable=False)
        value = _choice(
            tier, PROFILE_VALUES, what=f"tier for profile[{element}]", where=where, nullable=False
        )
        assert key is not None and value is not None
        profile[key] = value

    expect_raw = raw.get("expect")
    if not isinstance(expect_raw, dict):
        raise InvalidInput(
            f"{where}: 'expect' must be a mapping with at least 'kind', got {expect_raw!r}."
        )
    _unknown_keys(expect_raw, EXPECT_KEYS, f"{where}: expect")
    if "kind" not in expect_raw:
        raise InvalidInput(
            f"{where}: expect needs a 'kind' ({_options(KINDS)}, or null when two are fair)."
        )
    kind = _choice(expect_raw["kind"], KINDS, what="kind", where=where, nullable=True)
    refusal = _choice(
        expect_raw.get("refusal"), REFUSALS, what="refusal reason", where=where, nullable=True
    )
    if refusal is not None and kind != "out_of_scope":
        raise InvalidInput(f"{where}: a refusal reason goes only with kind out_of_scope.")
    element = _choice(
        expect_raw.get("element"), ELEMENT_KEYS, what="element", where=where, nullable=True
    )
    tier = _choice(expect_raw.get("tier"), TIER_KEYS, what="tier", where=where, nullable=True)
    expect = Expect(
        kind=kind,
        element=element,
        tier=tier,
        refusal=refusal,
        must_cite=_strings(expect_raw.get("must_cite"), where=f"{where}: expect.must_cite"),
        must_not_cite=_strings(
            expect_raw.get("must_not_cite"), where=f"{where}: expect.must_not_cite"
        ),
    )
    return EvalQuestion(id=qid, question=question, history=history, profile=profile, expect=expect)


def parse_questions(data: Any, *, source: str = "<questions>") -> list[EvalQuestion]:
    """Validate a whole set already read from YAML; ids must be unique."""
    if not isinstance(data, list) or not data:
        raise InvalidInput(
            f"{source}: expected a non-empty YAML list of questions (- id: ...), "
            f"got {type(data).__name__ if data is not None else 'an empty file'}."
        )
    questions = [parse_question(raw, position=n, source=source) for n, raw in enumerate(data, 1)]
    seen: set[str] = set()
    for question in questions:
        if question.id in seen:
            raise InvalidInput(
                f"{source}: question {question.id} appears twice; ids must be unique."
            )
        seen.add(question.id)
    return questions


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read and validate the question file at ``path``."""
    if not path.is_file():
        raise InvalidInput(f"Question file not found: {path}. Pass --questions PATH.")
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Cannot read {path}: {exc}") from exc
    return parse_questions(data, source=str(path))
