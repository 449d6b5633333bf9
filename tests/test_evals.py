"""The evaluation harness: question validation, phrase matching, metrics, report, diff, gate.

Unit tests drive the harness with ``ScriptedAssistant``, a small real class that returns
hand-made replies; the slow tests run the real assistant and the real baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import Settings
from assistant.errors import IndexUnusable, InvalidInput
from assistant.schema import Citation, Passage, Reply
from evals.baseline import CHUNK_SIZE, TOP_K, NaiveBaseline, split_corpus
from evals.cli import DEFAULT_QUESTIONS, evaluate, main
from evals.diff import diff_runs, format_diff
from evals.gate import FLOORS, gate_failures
from evals.harness import BASELINE, OURS, EvalRun, observe_assistant, run_eval
from evals.metrics import Interval, Observed, bootstrap_ci, percentile, score, summarize
from evals.phrases import contains, normalize
from evals.questions import EvalQuestion, load_questions, parse_questions
from evals.report import load_run, markdown, write_report

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

# --- helpers -------------------------------------------------------------------------------


def question(qid: str = "q1", **expect: object) -> EvalQuestion:
    raw = {
        "id": qid,
        "question": "What next on equity?",
        "expect": {"kind": "next_steps", **expect},
    }
    return parse_questions([raw])[0]


def cite(marker: int, pid: str, text: str) -> Citation:
    return Citation(marker=marker, id=pid, kind="action_item", title="T", text=text, source="s")


def passage(pid: str, text: str) -> Passage:
    return Passage(id=pid, kind="action_item", text=text, title="T", source="s")


class ScriptedAssistant:
    """Answers each question with a prepared reply and ranking; records what it was asked."""

    def __init__(
        self,
        replies: dict[str, Reply],
        ranking: dict[str, list[Passage]] | None = None,
        ids: set[str] | None = None,
    ) -> None:
        self.replies, self.ranking = replies, ranking or {}
        self.ids = ids if ids is not None else {"equity.pf.1", "equity.pf.2", "payment.e.1"}
        self.calls: list[tuple[str, list[str], dict[str, str]]] = []

    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] | None = None,
        profile: Mapping[str, str] | None = None,
    ) -> Reply:
        self.calls.append((question, list(history or []), dict(profile or {})))
        return self.replies[question]

    def retrieve(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
        k: int = 5,
    ) -> list[Passage]:
        return self.ranking.get(question, [])[:k]

    def passage_ids(self) -> set[str]:
        return self.ids


ENGAGE = "Engage with diverse communities to learn more about their needs."
REPLY_OK = Reply(
    kind="next_steps",
    element="equity",
    tier="progressing-further",
    text="**Engage** with communities [1]. Also partner [2].",
    citations=[cite(1, "equity.pf.1", ENGAGE), cite(2, "equity.pf.2", "Partner with CBOs.")],
)


def observed(reply: Reply, ranked: list[str] | None = None) -> Observed:
    bot = ScriptedAssistant(
        {"What next on equity?": reply},
        {"What next on equity?": [passage(f"p{n}", t) for n, t in enumerate(ranked or [])]},
    )
    return observe_assistant(bot, question())


# --- phrase matching -----------------------------------------------------------------------


def test_phrases_match_case_insensitively_with_markdown_stripped_and_whitespace_folded() -> None:
    text = "## Progressing\n\n- **Engage  with\n diverse** _communities_ [3] to [learn](http://x)"
    assert contains(text, "engage with DIVERSE communities to learn")
    assert contains("The plan’s <sup>4</sup>goal", "the plan's goal")
    assert not contains(text, "engage with communities")
    assert not contains(text, "   ")  # an empty phrase matches nothing
    assert normalize("  A\tB \n C ") == "a b c"


# --- loading and validation ----------------------------------------------------------------


def write_set(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(yaml.safe_dump(entries), "utf-8")
    return path


GOOD: dict[str, Any] = {
    "id": "q001",
    "question": "We've got the basics covered on equity. What should we do next?",
    "expect": {"kind": "next_steps", "element": "equity", "tier": "progressing-further"},
}


def test_load_accepts_missing_optional_keys(tmp_path: Path) -> None:
    [loaded] = load_questions(write_set(tmp_path, [GOOD]))
    assert loaded.history == [] and loaded.profile == {}
    assert loaded.expect.must_cite == [] and loaded.expect.must_not_cite == []
    assert loaded.expect.tier == "progressing-further"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"expect": {**GOOD["expect"], "element": "equality"}}, "unknown element 'equality'"),
        ({"expect": {**GOOD["expect"], "tier": "advanced"}}, "unknown tier 'advanced'"),
        ({"expect": {**GOOD["expect"], "kind": "chitchat"}}, "unknown kind 'chitchat'"),
        ({"expect": {**GOOD["expect"], "must_site": []}}, "unknown key 'must_site'"),
        ({"profile": {"equality": "essentials"}}, "'equality'"),
        ({"profile": {"equity": "done"}}, "'done'"),
        ({"expect": {"element": "equity"}}, "needs a 'kind'"),
        ({"expect": {**GOOD["expect"], "must_cite": "Engage"}}, "list of strings"),
        ({"history": "earlier turn"}, "list of strings"),
        ({"question": ""}, "'question' must be a non-empty string"),
    ],
)
def test_validation_names_the_question_and_the_bad_value(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        load_questions(
            write_set(tmp_path, [{**GOOD, "id": "q001"}, {**GOOD, "id": "q042", **change}])
        )
    assert "question q042" in str(info.value)
    assert named in str(info.value)


def test_profile_accepts_none_and_tiers(tmp_path: Path) -> None:
    entry = {**GOOD, "profile": {"equity": "none", "payment": "setting-the-standard"}}
    [loaded] = load_questions(write_set(tmp_path, [entry]))
    assert loaded.profile == {"equity": "none", "payment": "setting-the-standard"}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ([GOOD, GOOD], "q001 appears twice"),
        ([{**GOOD, "id": None}], "entry #1 needs an 'id'"),
        (["just a string"], "entry #1 must be a mapping"),
        ({"q001": GOOD}, "expected a non-empty YAML list"),
    ],
)
def test_validation_of_the_file_shape(tmp_path: Path, content: object, named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        load_questions(write_set(tmp_path, content))


def test_missing_and_malformed_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Pass --questions PATH"):
        load_questions(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: [unclosed\n", "utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_questions(bad)


def test_cli_reports_a_bad_set_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_set(tmp_path, [{**GOOD, "expect": {"kind": "gossip"}}])
    assert main(["run", "--questions", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "question q001" in err and "'gossip'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# --- metrics on hand-made replies ----------------------------------------------------------


def test_a_correct_reply_passes_with_full_metrics() -> None:
    q = question(element="equity", tier="progressing-further", must_cite=["engage with diverse"])
    result = score(
        q,
        observed(REPLY_OK, ranked=["unrelated", ENGAGE, "other"]),
        valid_ids={"equity.pf.1", "equity.pf.2"},
    )
    assert result.passed and result.reasons == []
    assert (result.kind_ok, result.element_ok, result.tier_ok) == (True, True, True)
    assert result.must_cite_found == ["engage with diverse"]
    assert result.citation_precision == 0.5
    assert result.citations_valid
    assert result.recall_at_5 == 1.0 and result.mrr == 0.5


def test_each_criterion_fails_the_question_and_says_why() -> None:
    q = question(
        element="payment",
        tier="essentials",
        must_cite=["engage with diverse", "bundled payment"],
        must_not_cite=["partner with cbos"],
    )
    result = score(q, observed(REPLY_OK), valid_ids={"equity.pf.1"})
    assert not result.passed
    assert result.element_ok is False and result.tier_ok is False and result.kind_ok is True
    assert result.must_cite_missing == ["bundled payment"]
    assert result.must_not_cite_hits == ["partner with cbos"]
    why = " | ".join(result.reasons)
    assert "element equity != payment" in why and "tier progressing-further != essentials" in why
    assert "'bundled payment'" in why and "forbidden" in why
    # validity: equity.pf.2 is not in this index
    assert not result.citations_valid
    assert result.citation_problems == ["citation [2] id 'equity.pf.2' is not in the index"]
    assert result.recall_at_5 == 0.0 and result.mrr == 0.0


def test_unchecked_labels_are_not_scored() -> None:
    result = score(question(), observed(REPLY_OK), valid_ids=None)
    assert result.passed
    assert result.element_ok is None and result.tier_ok is None
    assert result.citation_precision is None and result.recall_at_5 is None


def test_a_marker_without_a_citation_is_invalid() -> None:
    reply = REPLY_OK.model_copy(update={"text": REPLY_OK.text + " See [3]."})
    result = score(question(), observed(reply), valid_ids={"equity.pf.1", "equity.pf.2"})
    assert result.citation_problems == ["marker [3] has no citation"]
    assert result.passed  # validity is reported and gated, not part of the pass rule


def test_refusals_on_and_off_scope() -> None:
    refusal = Reply(kind="out_of_scope", text="The toolkit does not cover that.")
    oos = parse_questions([{"id": "x", "question": "Dosing?", "expect": {"kind": "out_of_scope"}}])[
        0
    ]
    bot = ScriptedAssistant({"Dosing?": refusal, "What next on equity?": refusal})
    refused_oos = score(oos, observe_assistant(bot, oos), valid_ids=set())
    refused_in = score(question(), observe_assistant(bot, question()), valid_ids=set())
    answered_bot = ScriptedAssistant({"Dosing?": REPLY_OK})
    answered_oos = score(oos, observe_assistant(answered_bot, oos), valid_ids=None)
    assert refused_oos.passed and refused_oos.refused
    assert refused_in.reasons == ["refused an in-scope question"]
    assert answered_oos.reasons == ["answered an out-of-scope question"]
    summary = summarize([refused_oos, refused_in, answered_oos])
    assert summary.out_of_scope_n == 2 and summary.out_of_scope_answered == 1
    assert summary.refusal_rate == 0.5 and summary.false_refusal_rate == 1.0
    assert summary.pass_rate == pytest.approx(1 / 3)
    assert summary.citation_pass_rate == pytest.approx(1 / 3)


def test_the_citation_rule_ignores_labels_only() -> None:
    q = question(element="payment", must_cite=["engage with diverse"])
    result = score(q, observed(REPLY_OK), valid_ids=None)
    assert not result.passed and result.citation_passed
    q = question(must_cite=["bundled payment"])
    assert not score(q, observed(REPLY_OK), valid_ids=None).citation_passed


def test_history_and_profile_reach_the_assistant() -> None:
    entry = {**GOOD, "history": ["first turn"], "profile": {"equity": "essentials"}}
    [q] = parse_questions([entry])
    bot = ScriptedAssistant({q.question: REPLY_OK})
    observe_assistant(bot, q)
    assert bot.calls == [(q.question, ["first turn"], {"equity": "essentials"})]


def test_a_system_without_labels_is_scored_on_citations_only() -> None:
    q = question(element="equity", must_cite=["engage with diverse"])
    plain = Observed(kind=None, text="[1] x", citations=observed(REPLY_OK).citations)
    result = score(q, plain, valid_ids=None)
    assert result.passed and result.citation_passed
    assert result.kind_ok is None and result.element_ok is None
    oos = parse_questions([{"id": "x", "question": "Dosing?", "expect": {"kind": "out_of_scope"}}])[
        0
    ]
    assert not score(oos, plain, valid_ids=None).passed


def test_summary_aggregates() -> None:
    good = score(question(must_cite=["engage"]), observed(REPLY_OK, [ENGAGE]), valid_ids=None)
    bad = score(question("q2", must_cite=["absent", "engage"]), observed(REPLY_OK), valid_ids=None)
    summary = summarize([good, bad])
    assert summary.n == 2 and summary.passed == 1 and summary.pass_rate == 0.5
    assert summary.must_cite_recall == pytest.approx(2 / 3)
    assert summary.recall_at_5 == 0.5 and summary.mrr == 0.5
    assert summary.refusal_rate is None and summary.false_refusal_rate == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


def test_bootstrap_is_deterministic_and_brackets_the_rate() -> None:
    outcomes = [True] * 45 + [False] * 5
    first, second = bootstrap_ci(outcomes), bootstrap_ci(outcomes)
    assert first == second and first is not None
    assert first.low < 0.9 < first.high
    assert bootstrap_ci([True] * 10) == Interval(low=1.0, high=1.0)
    assert bootstrap_ci([]) is None
    assert bootstrap_ci(outcomes, seed=1) != first


# --- report, diff and gate -----------------------------------------------------------------


def scripted_run(reply: Reply) -> EvalRun:
    questions = parse_questions(
        [
            {
                **GOOD,
                "question": "What next on equity?",
                "expect": {**GOOD["expect"], "must_cite": ["engage"]},
            },
            {"id": "q002", "question": "Dosing?", "expect": {"kind": "out_of_scope"}},
        ]
    )
    refusal = Reply(kind="out_of_scope", text="Not covered.")
    bot = ScriptedAssistant({"What next on equity?": reply, "Dosing?": refusal})
    return run_eval(questions, bot=bot, corpus_dir=CORPUS)


def test_report_files_and_round_trip(tmp_path: Path) -> None:
    run = scripted_run(REPLY_OK)
    paths = write_report(run, tmp_path / "reports")
    assert paths.chart is not None and paths.chart.read_bytes()[:4] == b"\x89PNG"
    text = paths.markdown.read_text("utf-8")
    assert "| Pass rate (95% CI) | 100.0%" in text and "## Pass rate by element" in text
    assert "![Pass rate by element and kind](latest.png)" in text
    assert load_run(paths.json_file) == run
    stored = json.loads(paths.json_file.read_text("utf-8"))
    assert [r["id"] for r in stored["systems"]["ours"]["results"]] == ["q001", "q002"]


def test_diff_lists_questions_that_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = scripted_run(REPLY_OK)
    new = scripted_run(REPLY_OK.model_copy(update={"element": "payment"}))
    changes = diff_runs(old, new)
    assert [(c.id, c.change) for c in changes] == [("q001", "broke")]
    assert [(c.id, c.change) for c in diff_runs(new, old)] == [("q001", "fixed")]
    assert diff_runs(old, old) == []
    assert "q001" in format_diff(changes, old, new)
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(old.model_dump_json(), "utf-8")
    new_path.write_text(new.model_dump_json(), "utf-8")
    assert main(["diff", str(old_path), str(new_path)]) == 0
    out = capsys.readouterr().out
    assert "q001" in out and "broke" in out and "100.0% -> 50.0%" in out
    assert main(["diff", str(old_path), str(tmp_path / "missing.json")]) == 2


def test_gate_names_each_missed_floor() -> None:
    run = scripted_run(REPLY_OK)
    assert gate_failures(run.systems[OURS].summary) == []
    broken = run.systems[OURS].summary.model_copy(
        update={"pass_rate": 0.5, "out_of_scope_answered": 1}
    )
    failures = gate_failures(broken)
    assert any("pass_rate 0.500 is below the floor" in f for f in failures)
    assert any("1 out-of-scope question(s) answered" in f for f in failures)
    assert FLOORS["pass_rate"] >= 0.90


# --- the real baseline and the real assistant (slow) ---------------------------------------


def test_baseline_split_is_the_tutorial_default() -> None:
    chunks = split_corpus(CORPUS)
    assert len(chunks) > 30
    assert max(len(c.page_content) for c in chunks) <= CHUNK_SIZE
    assert {c.metadata["source"] for c in chunks} == {
        "develop-a-plan.md",
        "develop-a-plan-overview-page.txt",
    }


@pytest.mark.slow
def test_baseline_retrieves_from_a_real_chroma_collection(bot: Any, tmp_path: Path) -> None:
    baseline = NaiveBaseline(embeddings=bot.embeddings, corpus_dir=CORPUS, workdir=tmp_path)
    try:
        seen = baseline.observe("We've got the basics covered on equity. What should we do next?")
    finally:
        baseline.close()
    assert len(seen.citations) == TOP_K and len(seen.retrieved_ids) == 5
    assert seen.kind is None and not seen.refused
    assert any(contains(c.text, "Engage with diverse communities") for c in seen.citations)


@pytest.mark.slow
def test_the_question_set_is_valid() -> None:
    questions = load_questions(DEFAULT_QUESTIONS)
    assert len(questions) >= 50
    assert any(q.expect.kind == "out_of_scope" for q in questions)


HELD_OUT = Path(__file__).resolve().parents[1] / "evals" / "samples"


@pytest.mark.slow
@pytest.mark.parametrize(
    "question_file",
    [DEFAULT_QUESTIONS, HELD_OUT / "holdout.yaml", HELD_OUT / "fresh.yaml"],
    ids=["questions", "holdout", "fresh"],
)
def test_quality_gate(bot: Any, built_settings: Settings, question_file: Path) -> None:
    """The gate ``make test`` enforces: the floors in evals/gate.py, no out-of-scope answer.

    Besides the main set, two sets written apart from the assistant (evals/samples/) must clear
    the same floors.
    """
    questions = load_questions(question_file)
    run = run_eval(questions, bot=bot, corpus_dir=built_settings.corpus_dir)
    ours = run.systems[OURS]
    answered = [r.id for r in ours.results if r.expected_kind == "out_of_scope" and not r.refused]
    assert not answered, f"out-of-scope questions answered: {', '.join(answered)}"
    missed = gate_failures(ours.summary)
    if missed:
        failing = "\n".join(
            f"  {r.id}: {'; '.join(r.reasons)}" for r in ours.results if not r.passed
        )
        pytest.fail(
            f"Quality gate: {'; '.join(missed)}.\nFailing questions:\n{failing}\n"
            "Run `python -m evals run` for the full report.",
            pytrace=False,
        )


@pytest.mark.slow
def test_run_on_another_set_with_the_baseline(
    bot: Any, built_settings: Settings, tmp_path: Path
) -> None:
    other = write_set(
        tmp_path,
        [
            GOOD | {"expect": GOOD["expect"] | {"must_cite": ["Engage with diverse communities"]}},
            {
                "id": "oos",
                "question": "What dose of morphine should I give?",
                "expect": {"kind": "out_of_scope"},
            },
        ],
    )
    run, paths = evaluate(
        other,
        bot=bot,
        embeddings=bot.embeddings,
        settings=built_settings,
        out=tmp_path / "out",
    )
    assert set(run.systems) == {OURS, BASELINE}
    assert run.systems[BASELINE].results[1].reasons == ["answered an out-of-scope question"]
    assert "Naive baseline" in markdown(run, chart_name=None)
    assert paths.markdown.is_file() and paths.chart is not None and paths.chart.is_file()


def test_a_group_score_keeps_every_question_result_for_the_fit_json(bot: Any) -> None:
    from evals.fit import fit_json, score_group

    questions = parse_questions(
        [
            {
                "id": "q1",
                "question": "What should we do first on payment?",
                "expect": {"kind": "next_steps", "element": "payment", "tier": "essentials"},
            },
            {
                "id": "q2",
                "question": "Can you draft a press release about our new benefit?",
                "expect": {"kind": "out_of_scope"},
            },
        ]
    )
    scored = score_group(bot, "writer", questions)
    assert [r["id"] for r in scored.results] == ["q1", "q2"]
    assert [r["refused"] for r in scored.results] == [False, True]
    assert scored.results[0]["element"] == "payment" and scored.results[0]["group"] == "writer"
    stored = json.loads(fit_json([scored], [scored]))
    assert [r["id"] for r in stored["leave_one_writer_out_questions"]] == ["q1", "q2"]
    assert "results" not in stored["pooled"]


def test_scoring_refuses_an_index_built_from_another_corpus(
    built_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.cli import require_current_index

    require_current_index(built_settings)  # built from the corpus as it is
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for source in built_settings.corpus_dir.iterdir():
        (corpus / source.name).write_bytes(source.read_bytes())
    (corpus / "respite-policy.md").write_text("# Respite\n\nUp to 21 nights a year.\n", "utf-8")
    added = built_settings.model_copy(update={"corpus_dir": corpus})
    with pytest.raises(IndexUnusable, match="make index"):
        require_current_index(added)
    # Through the command: a clear message and exit status 2, nothing scored.
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("ASSISTANT_CHROMA_PATH", str(built_settings.chroma_path))
    out = tmp_path / "out"
    assert main(["run", "--questions", str(DEFAULT_QUESTIONS), "--out", str(out)]) == 2
    assert not out.exists()
