"""Thumbs up / down on replies, kept in SQLite, exported as CSV or as draft eval questions.

One row per rated reply (a session and its turn number): re-rating replaces the rating, a
comment is added to the same row, and withdrawing the rating deletes it.

    store = FeedbackStore(settings.resolved_feedback_db)
    store.rate(session="a1b2", turn=0, liked=False, question=q, reply=reply)
    store.comment(session="a1b2", turn=0, text="It cited the wrong tier")
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel

from assistant.config import Settings
from assistant.errors import AssistantError, FeedbackUnavailable
from assistant.guards import Rules
from assistant.schema import KINDS, Reply

MAX_COMMENT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    session TEXT NOT NULL,
    turn INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    reply TEXT NOT NULL,
    kind TEXT,
    element TEXT,
    tier TEXT,
    citations TEXT NOT NULL DEFAULT '[]',
    profile TEXT NOT NULL DEFAULT '{}',
    history TEXT NOT NULL DEFAULT '[]',
    UNIQUE (session, turn)
)
"""
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "updated_at",
    "rating",
    "comment",
    "question",
    "reply",
    "kind",
    "element",
    "tier",
    "citations",
    "profile",
    "history",
    "session",
    "turn",
)


class FeedbackRow(BaseModel):
    id: int
    created_at: str
    updated_at: str
    session: str
    turn: int
    rating: str
    comment: str
    question: str
    reply: str
    kind: str | None
    element: str | None
    tier: str | None
    citations: str
    profile: str
    history: str

    @property
    def cited_ids(self) -> list[str]:
        return [c.get("id", "") for c in json.loads(self.citations or "[]")]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedbackStore:
    """The SQLite file of ratings; one short connection per call, so threads never share one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rules = Rules.load()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Readable by its owner only: it holds what users typed.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.path, 0o600)
            conn = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackUnavailable(
                f"Cannot open the feedback database {self.path}: {exc}. "
                "Set ASSISTANT_FEEDBACK_DB to a writable file."
            ) from exc
        try:
            conn.row_factory = sqlite3.Row
            with conn:
                conn.execute(_SCHEMA)
                yield conn
        except sqlite3.Error as exc:
            raise FeedbackUnavailable(
                f"The feedback database {self.path} could not be used: {exc}. "
                "Check the file is a Plan Guide feedback database and is writable, or set "
                "ASSISTANT_FEEDBACK_DB to a new file."
            ) from exc
        finally:
            conn.close()

    def rate(
        self,
        *,
        session: str,
        turn: int,
        liked: bool,
        question: str,
        reply: Reply | None,
        reply_text: str = "",
        profile: dict[str, str] | None = None,
        history: list[str] | None = None,
    ) -> int:
        """Store or replace the rating of one reply; returns the row id.

        Args:
            session: an id for the browser session, so turn numbers do not collide.
            turn: the reply's position in the conversation, from 0.
            liked: True for thumbs up, False for thumbs down.
            question: the question as asked.
            reply: the assistant's reply; None when the turn was an error message.
            reply_text: what the user saw when there is no reply (an error message).
            profile: the plan profile the question was asked with.
            history: the earlier questions of the conversation; not kept (only the rated turn
                is stored, so unrated questions never reach the file).
        """
        # Only the rated turn is kept, with likely member identifiers taken out; the earlier
        # questions of the conversation are not kept (``history`` is accepted and dropped).
        del history
        clean = self.rules.redacted
        citations = [c.model_dump() for c in reply.citations] if reply else []
        now = _now()
        values = {
            "now": now,
            "session": session,
            "turn": turn,
            "rating": "up" if liked else "down",
            "question": clean(question),
            "reply": clean(reply.text if reply else reply_text),
            "kind": reply.kind if reply else None,
            "element": reply.element if reply else None,
            "tier": reply.tier if reply else None,
            "citations": json.dumps(citations, ensure_ascii=False),
            "profile": json.dumps(profile or {}, sort_keys=True),
            "history": "[]",
        }
        with self._connect() as conn:
            conn.execute(
                """
                INSERT INTO feedback (created_at, updated_at, session, turn, rating, question,
                                      reply, kind, element, tier, citations, profile, history)
                VALUES (:now, :now, :session, :turn, :rating, :question, :reply, :kind,
                        :element, :tier, :citations, :profile, :history)
                ON CONFLICT (session, turn) DO UPDATE SET
                    rating = excluded.rating, updated_at = excluded.updated_at
                """,
                values,
            )
            row = conn.execute(
                "SELECT id FROM feedback WHERE session = ? AND turn = ?", (session, turn)
            ).fetchone()
        return int(row["id"])

    def comment(self, *, session: str, turn: int, text: str) -> bool:
        """Attach a comment to a rated reply; False when that reply has no rating."""
        text = self.rules.redacted(text.strip()[:MAX_COMMENT_CHARS])
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE feedback SET comment = ?, updated_at = ? WHERE session = ? AND turn = ?",
                (text, _now(), session, turn),
            )
        return cursor.rowcount > 0

    def withdraw(self, *, session: str, turn: int) -> None:
        """Forget the rating of one reply (the user clicked the thumb again)."""
        with self._connect() as conn:
            conn.execute("DELETE FROM feedback WHERE session = ? AND turn = ?", (session, turn))

    def rows(self, *, rating: str | None = None) -> list[FeedbackRow]:
        """All rows, oldest first; ``rating="down"`` keeps the thumbs-down ones."""
        if not self.path.exists():
            return []
        query, params = "SELECT * FROM feedback", tuple[str, ...]()
        if rating is not None:
            query, params = query + " WHERE rating = ?", (rating,)
        with self._connect() as conn:
            records = conn.execute(query + " ORDER BY id", params).fetchall()
        return [FeedbackRow(**dict(record)) for record in records]


def write_csv(rows: Sequence[FeedbackRow], out: TextIO) -> None:
    """Every column, one row per rating; citations, profile and history stay JSON."""
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        record = row.model_dump()
        for column in ("question", "reply", "comment"):
            record[column] = _csv_text(record[column])
        writer.writerow(record)


def _csv_text(text: str) -> str:
    """Typed text that a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def eval_drafts(rows: Sequence[FeedbackRow]) -> list[dict[str, Any]]:
    """Thumbs-down questions as cases in the evals format (``evals/README.md``), one per question.

    ``expect.kind`` starts as what the assistant answered and element / tier are left unchecked
    (null): a reviewer writes what a good answer would have been.
    """
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        question = " ".join(row.question.split())
        history = [h for h in json.loads(row.history or "[]") if isinstance(h, str)]
        key = json.dumps([question.lower(), history])
        if not question or key in seen:
            continue
        seen.add(key)
        profile = {k: v for k, v in json.loads(row.profile or "{}").items() if v != "none"}
        cases.append(
            {
                "id": f"feedback-{row.id}",
                "question": question,
                "history": history,
                "profile": profile,
                "expect": {
                    "kind": row.kind if row.kind in KINDS else "explain",
                    "element": None,
                    "tier": None,
                    "must_cite": [],
                    "must_not_cite": [],
                },
            }
        )
    return cases


_EVALS_HEADER = """\
# Draft eval questions from thumbs-down feedback (python -m assistant feedback to-evals).
# Format: evals/README.md. For each case write what a good answer does: kind, element, tier,
# must_cite phrases from the passages it should cite, must_not_cite for wrong ones. Then move
# it into evals/questions.yaml (with a q-number id). The comment above each case says what the
# assistant answered and what the user wrote.
"""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_eval_drafts(rows: Sequence[FeedbackRow], out: TextIO) -> int:
    """Write the drafts as a YAML question list; returns how many questions were written."""
    by_id = {f"feedback-{row.id}": row for row in rows}
    cases = eval_drafts(rows)
    out.write(_EVALS_HEADER)
    for case in cases:
        row = by_id[case["id"]]
        answered = ", ".join(
            f"{name}={value}"
            for name, value in (("kind", row.kind), ("element", row.element), ("tier", row.tier))
            if value
        )
        out.write(f"\n# rated down {row.updated_at}; answered {answered or 'with an error'}")
        if row.cited_ids:
            out.write(f"; cited {', '.join(row.cited_ids)}")
        out.write("\n")
        if row.comment:
            out.write(f"# comment: {_one_line(row.comment)}\n")
        yaml.safe_dump([case], out, sort_keys=False, allow_unicode=True, width=100)
    return len(cases)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant feedback",
        description="Export the thumbs up / down given in the chat.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write every rating as CSV")
    export.add_argument("--csv", action="store_true", help="CSV format (the only one; default)")
    export.add_argument("--out", default="-", help="file to write; '-' (default) is stdout")
    drafts = commands.add_parser("to-evals", help="write thumbs-down questions as eval drafts")
    drafts.add_argument(
        "--out",
        default=None,
        help="file to write (default: <data dir>/evals-draft.yaml); '-' is stdout",
    )
    return parser


def feedback_cli(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """``python -m assistant feedback {export --csv | to-evals} [--out FILE]``.

    Args:
        argv: the arguments after ``feedback``; None reads ``sys.argv[1:]``.
        settings: where the database is (``ASSISTANT_FEEDBACK_DB``); built from the environment
            when None.

    Returns:
        The process exit code: 0 on success, 1 when the database cannot be read or written.
    """
    args = _parser().parse_args(argv)
    settings = settings or Settings()
    store = FeedbackStore(settings.resolved_feedback_db)
    try:
        rows = store.rows(rating="down" if args.command == "to-evals" else None)
    except AssistantError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "to-evals" and not eval_drafts(rows):
        print(
            f"No thumbs-down feedback in {store.path} yet: no draft questions to write.",
            file=sys.stderr,
        )
        return 0
    if args.command == "to-evals" and args.out is None:
        args.out = str(settings.data_dir / "evals-draft.yaml")
    try:
        if args.out == "-":
            count = _write(args.command, rows, sys.stdout)
        else:
            path = Path(args.out)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as out:
                count = _write(args.command, rows, out)
    except OSError as exc:
        print(f"Cannot write {args.out}: {exc}. Choose another --out file.", file=sys.stderr)
        return 1
    if not store.path.exists():
        print(f"No feedback yet: {store.path} does not exist.", file=sys.stderr)
    elif args.out != "-":
        what = "thumbs-down questions" if args.command == "to-evals" else "ratings"
        print(f"Wrote {count} {what} to {args.out}", file=sys.stderr)
    return 0


def _write(command: str, rows: list[FeedbackRow], out: TextIO) -> int:
    if command == "to-evals":
        return write_eval_drafts(rows, out)
    write_csv(rows, out)
    return len(rows)
