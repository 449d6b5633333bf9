"""The feedback store, its CSV export and the thumbs-down -> eval drafts writer."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.feedback import FeedbackStore, eval_drafts, feedback_cli, write_csv
from assistant.schema import Citation, Reply
from evals.questions import parse_questions


def make_reply(text: str = "Start with the essentials [1].") -> Reply:
    return Reply(
        kind="next_steps",
        element="equity",
        tier="essentials",
        text=text,
        citations=[
            Citation(
                marker=1,
                id="equity.essentials.1",
                kind="action_item",
                element="equity",
                tier="essentials",
                title="Equity › The Essentials",
                text="Prioritize contracting with providers and hiring plan staff ...",
                source="develop-a-plan.md",
            )
        ],
        suggestions=["What resources go with this?"],
    )


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "nested" / "feedback.sqlite3")


def test_rating_is_stored_with_question_reply_citations_and_time(store: FeedbackStore) -> None:
    row_id = store.rate(
        session="s1",
        turn=0,
        liked=False,
        question="What next on equity?",
        reply=make_reply(),
        profile={"equity": "essentials"},
        history=["What is equity about?"],
    )
    [row] = store.rows()
    assert row.id == row_id
    assert (row.rating, row.question, row.reply) == (
        "down",
        "What next on equity?",
        "Start with the essentials [1].",
    )
    assert (row.kind, row.element, row.tier) == ("next_steps", "equity", "essentials")
    assert row.cited_ids == ["equity.essentials.1"]
    assert json.loads(row.citations)[0]["title"] == "Equity › The Essentials"
    assert json.loads(row.profile) == {"equity": "essentials"}
    assert json.loads(row.history) == []  # only the rated turn is kept
    assert row.created_at.endswith("+00:00") and row.created_at == row.updated_at


def test_rerating_replaces_and_comment_attaches(store: FeedbackStore) -> None:
    first = store.rate(session="s1", turn=2, liked=True, question="q", reply=make_reply())
    second = store.rate(session="s1", turn=2, liked=False, question="q", reply=make_reply())
    assert first == second
    assert store.comment(session="s1", turn=2, text="  Wrong tier.  ") is True
    [row] = store.rows()
    assert (row.rating, row.comment) == ("down", "Wrong tier.")
    # other sessions and turns are separate rows
    store.rate(session="s2", turn=2, liked=True, question="q", reply=make_reply())
    assert [r.rating for r in store.rows()] == ["down", "up"]
    assert [r.rating for r in store.rows(rating="up")] == ["up"]


def test_comment_without_rating_and_withdraw(store: FeedbackStore) -> None:
    assert store.comment(session="s1", turn=0, text="hello") is False
    store.rate(session="s1", turn=0, liked=True, question="q", reply=None, reply_text="error")
    [row] = store.rows()
    assert (row.reply, row.kind, row.citations) == ("error", None, "[]")
    store.withdraw(session="s1", turn=0)
    assert store.rows() == []


def test_no_database_yet_means_no_rows(store: FeedbackStore) -> None:
    assert store.rows() == []
    assert not store.path.exists()


def test_concurrent_ratings_from_threads(store: FeedbackStore) -> None:
    errors: list[BaseException] = []

    def rate(n: int) -> None:
        try:
            store.rate(session=f"s{n}", turn=n, liked=n % 2 == 0, question=f"q{n}", reply=None)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.rows()) == 16


def test_unusable_database_is_an_assistant_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "feedback.sqlite3"
    not_a_db.write_text("this is not sqlite" * 100)
    with pytest.raises(AssistantError, match="ASSISTANT_FEEDBACK_DB"):
        FeedbackStore(not_a_db).rate(session="s", turn=0, liked=True, question="q", reply=None)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(AssistantError, match="writable"):
        FeedbackStore(directory).rate(session="s", turn=0, liked=True, question="q", reply=None)


def test_csv_export_has_every_column_and_defuses_formulas(store: FeedbackStore) -> None:
    store.rate(session="s", turn=0, liked=False, question="=HYPERLINK(1)", reply=make_reply())
    store.comment(session="s", turn=0, text="@ops please check")
    out = io.StringIO()
    write_csv(store.rows(), out)
    [record] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert record["question"] == "'=HYPERLINK(1)"
    assert record["comment"] == "'@ops please check"
    assert record["rating"] == "down"
    assert json.loads(record["citations"])[0]["id"] == "equity.essentials.1"
    assert {"created_at", "reply", "profile", "history", "session", "turn"} <= set(record)


def test_eval_drafts_are_valid_questions_in_the_evals_format(store: FeedbackStore) -> None:
    store.rate(
        session="s",
        turn=0,
        liked=False,
        question="What next on   equity?",
        reply=make_reply(),
        profile={"equity": "essentials", "payment": "none"},
    )
    store.rate(session="s", turn=1, liked=True, question="Liked question", reply=make_reply())
    store.rate(session="t", turn=0, liked=False, question="what next on equity?", reply=None)
    store.rate(session="t", turn=1, liked=False, question="And resources?", reply=None,
               history=["what next on equity?"])  # fmt: skip
    drafts = eval_drafts(store.rows(rating="down"))
    assert [d["question"] for d in drafts] == ["What next on equity?", "And resources?"]
    assert drafts[0]["profile"] == {"equity": "essentials"}
    assert drafts[0]["expect"]["kind"] == "next_steps"
    assert drafts[1]["history"] == []
    assert drafts[1]["expect"]["kind"] == "explain"  # an error turn has no kind to start from
    parsed = parse_questions(drafts, source="drafts")
    assert [q.id for q in parsed] == [d["id"] for d in drafts]


def test_cli_export_and_to_evals(
    store: FeedbackStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(feedback_db=store.path, data_dir=tmp_path / "data")
    assert feedback_cli(["to-evals"], settings=settings) == 0
    assert "No thumbs-down feedback" in capsys.readouterr().err
    assert not (tmp_path / "data" / "evals-draft.yaml").exists()

    store.rate(session="s", turn=0, liked=False, question="Why equity?", reply=make_reply())
    store.comment(session="s", turn=0, text="Quoted the wrong passage\nand too long")
    store.rate(session="s", turn=1, liked=True, question="Thanks", reply=make_reply())

    assert feedback_cli(["export", "--csv"], settings=settings) == 0
    exported = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["question"] for r in exported] == ["Why equity?", "Thanks"]

    out = tmp_path / "exports" / "feedback.csv"
    assert feedback_cli(["export", "--csv", "--out", str(out)], settings=settings) == 0
    assert "Wrote 2 ratings" in capsys.readouterr().err
    assert len(list(csv.DictReader(out.open(encoding="utf-8")))) == 2

    assert feedback_cli(["to-evals"], settings=settings) == 0
    draft_path = tmp_path / "data" / "evals-draft.yaml"
    text = draft_path.read_text("utf-8")
    assert "# comment: Quoted the wrong passage and too long" in text
    assert "cited equity.essentials.1" in text
    [question] = parse_questions(yaml.safe_load(text), source=str(draft_path))
    assert question.question == "Why equity?"


def test_cli_reports_an_unreadable_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "feedback.sqlite3"
    bad.write_text("not a database" * 100)
    assert feedback_cli(["export", "--csv"], settings=Settings(feedback_db=bad)) == 1
    assert "ASSISTANT_FEEDBACK_DB" in capsys.readouterr().err


def test_schema_is_what_the_export_reads(store: FeedbackStore) -> None:
    store.rate(session="s", turn=0, liked=True, question="q", reply=None)
    with closing(sqlite3.connect(store.path)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(feedback)")]
    assert {"question", "reply", "citations", "created_at", "rating", "comment"} <= set(columns)


def test_member_identifiers_are_redacted_and_the_file_is_private(store: FeedbackStore) -> None:
    question = (
        "Should member Maria Lopez, DOB 03/14/1948, MRN 4471920, SSN 123-45-6789, "
        "phone (555) 123-4567, maria.lopez@example.com get palliative care?"
    )
    store.rate(
        session="s",
        turn=2,
        liked=False,
        question=question,
        reply=None,
        reply_text="Plan Guide does not advise on one member's care.",
        history=["Our member Ana Ruiz, born 1/2/1950, keeps declining.", "What about equity?"],
    )
    store.comment(session="s", turn=2, text="It should have said more about Ms. Lopez, 03/14/1948")
    [row] = store.rows()
    kept = json.dumps(row.model_dump())
    for identifier in ("Maria", "Lopez", "1948", "4471920", "123-45-6789", "123-4567",
                       "example.com", "Ana Ruiz", "equity"):  # fmt: skip
        assert identifier not in kept, identifier
    assert "[name]" in row.question and "[date]" in row.question and "[ssn]" in row.question
    assert "[name]" in row.comment
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_ordinary_numbers_and_team_names_are_not_redacted(store: FeedbackStore) -> None:
    question = "Member Services asked: we pay $1,250 PMPM for 310000 lives since 2021. What next?"
    store.rate(session="s", turn=0, liked=True, question=question, reply=None)
    assert store.rows()[0].question == question
