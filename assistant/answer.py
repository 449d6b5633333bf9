"""Compose grounded answers: every toolkit sentence comes from a cited passage.

The default composer needs no language model: it lays out the routed passages under fixed
template lines. Optional LLM synthesis (``ASSISTANT_LLM``) rewrites that answer from the same
passages and is checked; on any failure the composer's answer stands, with a note.

    composer = Composer(passages=retriever.passages)
    reply = composer.next_steps(route, resources=[...])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence

from pydantic import BaseModel

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.retrieval import tokens
from assistant.schema import Citation, Passage, Reply
from assistant.toolkit import TIER_NAMES

EXCERPT_CHARS = 420
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"(])")


class CitationBook:
    """Hands out ``[n]`` markers, one per passage, in order of first use."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._markers: dict[str, int] = {}

    def cite(self, passage: Passage) -> str:
        if passage.id not in self._markers:
            marker = len(self.citations) + 1
            self._markers[passage.id] = marker
            self.citations.append(
                Citation(
                    marker=marker,
                    id=passage.id,
                    kind=passage.kind,
                    element=passage.element,
                    tier=passage.tier,
                    title=passage.title,
                    text=passage.text,
                    source=passage.source,
                )
            )
        return f"[{self._markers[passage.id]}]"


def bold_lead(passage: Passage) -> str:
    """The passage's first line with its lead in bold (markdown only; the words are unchanged)."""
    first = passage.text.split("\n", 1)[0]
    lead = passage.lead
    if lead and lead in first:
        return first.replace(lead, f"**{lead}**", 1)
    return first


def excerpt(text: str, question: str, limit: int = EXCERPT_CHARS) -> str:
    """The passage if short; else its sentences that best match the question, in order."""
    if len(text) <= limit:
        return text
    sentences = _SENTENCE.split(text)
    wanted = set(tokens(question))
    scored = sorted(
        range(len(sentences)),
        key=lambda i: (-len(wanted & set(tokens(sentences[i]))), i),
    )
    chosen: list[int] = []
    size = 0
    for index in scored:
        if chosen and size + len(sentences[index]) > limit:
            continue
        chosen.append(index)
        size += len(sentences[index])
    return " … ".join(sentences[i] for i in sorted(chosen))


def element_name(key: str) -> str:
    return key.replace("-", " ").title().replace("Capacity", "Capacity")


class Composer:
    """Deterministic answers built from passages of the index."""

    def __init__(self, *, passages: Sequence[Passage], element_names: dict[str, str]) -> None:
        self.by_id = {p.id: p for p in passages}
        self.element_names = element_names

    def get(self, pid: str) -> Passage:
        return self.by_id[pid]

    def items(self, element: str, tier: str) -> list[Passage]:
        return [
            p
            for p in self.by_id.values()
            if p.kind == "action_item" and p.element == element and p.tier == tier
        ]

    def name(self, element: str) -> str:
        return self.element_names.get(element, element_name(element))

    # -- next steps --------------------------------------------------------------------------------
    def next_steps(
        self,
        sections: Iterable[tuple[str, str, list[Passage]]],
        *,
        reason: str,
        book: CitationBook | None = None,
        done: Collection[str] = (),
        focus: Sequence[str] = (),
        highlight: Callable[[Passage], str | None] | None = None,
        collapse: bool = False,
    ) -> tuple[str, CitationBook]:
        """Every action item of each (element, tier), sub-goals and sub-steps kept, then resources.

        Items in ``done`` are listed last, as done, never as a to-do. Items in ``focus`` (the
        ones the question points at) come first, with the line ``highlight`` picks in bold, and
        the rest of the tier follows, folded. ``collapse`` folds the whole tier.
        """
        book = book or CitationBook()
        lines = [reason, ""]
        for element, tier, resources in sections:
            lines.append(f"### {self.name(element)} › {TIER_NAMES[tier]}")
            tier_passage = self.by_id.get(f"tier.{tier}")
            if tier_passage:
                lines.append(f"*{TIER_NAMES[tier]}: {tier_passage.text}* {book.cite(tier_passage)}")
            lines.append("")
            items = self.items(element, tier)
            open_items = [item for item in items if item.id not in done]
            finished = [item for item in items if item.id in done]
            first = [item for item in open_items if item.id in focus]
            rest = [item for item in open_items if item.id not in focus]
            if first and rest:
                lines.append("**Most relevant to your question**")
                lines += self._item_lines(element, first, book, highlight=highlight)
                lines += _folded(
                    f"The rest of {TIER_NAMES[tier]} ({item_count(len(rest))})",
                    self._item_lines(element, rest, book),
                )
            elif collapse and open_items:
                lines += _folded(
                    f"{TIER_NAMES[tier]} ({item_count(len(open_items))})",
                    self._item_lines(element, open_items, book),
                )
            else:
                lines += self._item_lines(element, open_items, book)
            if finished:
                lines.append("")
                lines.append(f"**Already done** ({len(finished)} of {len(items)}, from your plan)")
                for item in finished:
                    lines.append(f"- ✓ {bold_lead(item)} {book.cite(item)} *(done)*")
            if resources:
                lines.append("")
                lines.append(f"**Resources for {self.name(element)}**")
                for res in resources:
                    lines.append(f"- {bold_lead(res)} {book.cite(res)}")
            lines.append("")
        return "\n".join(lines).strip(), book

    def _item_lines(
        self,
        element: str,
        items: Sequence[Passage],
        book: CitationBook,
        *,
        highlight: Callable[[Passage], str | None] | None = None,
    ) -> list[str]:
        """Action items as bullets under their sub-goal headings, sub-steps indented."""
        lines: list[str] = []
        subgoal: str | None = None
        for item in items:
            if item.subgoal and item.subgoal != subgoal:
                subgoal = item.subgoal
                heading = self.by_id.get(f"{element}.subgoal.{subgoal}")
                if heading:
                    lines.append(f"**{subgoal}. {heading.text}** {book.cite(heading)}")
            marker = book.cite(item)
            best = highlight(item) if highlight else None
            first, *steps = item.text.split("\n")
            lead = f"**{first.strip()}**" if best and best in first else bold_lead(item)
            lines.append(f"- {lead} {marker}")
            for step in steps:
                step = step.strip()
                bullet, body = ("- ", step[2:]) if step.startswith("- ") else ("", step)
                shown = step
                if best and best in body:
                    shown = f"{bullet}**{body}** ← *closest to your question*"
                lines.append(f"    {shown} {marker}")
        return lines

    def where_we_stand(self, rows: Sequence[Standing]) -> tuple[list[str], CitationBook]:
        """A compact table: per element its progress and its next open items, cited."""
        book = CitationBook()
        lines = [
            "| Element | Completed | Working on | Done | Next open items |",
            "|---|---|---|---|---|",
        ]
        for row in rows:
            if row.tier is None:
                lines.append(
                    f"| {self.name(row.element)} | {TIER_NAMES.get(row.level, 'Not started')} "
                    "| All three tiers done | | |"
                )
                continue
            open_items = [item for item in row.items if item.id not in row.done]
            first = open_items[0] if open_items else None
            shown = ""
            if first is not None:
                lead = first.lead or first.text.split("\n", 1)[0]
                shown = f"{_cell(_short(lead))} {book.cite(first)}"
                if len(open_items) > 1:
                    more = " ".join(book.cite(item) for item in open_items[1:])
                    shown += f" and {len(open_items) - 1} more {more}"
            tier_passage = self.by_id.get(f"tier.{row.tier}")
            tier_marker = f" {book.cite(tier_passage)}" if tier_passage else ""
            lines.append(
                f"| {self.name(row.element)} | {TIER_NAMES.get(row.level, 'Not started')} "
                f"| {TIER_NAMES[row.tier]}{tier_marker} "
                f"| {len(row.items) - len(open_items)} of {len(row.items)} | {shown} |"
            )
        return lines, book

    # -- explain, resources, overview -----------------------------------------------------------
    def quotes(
        self,
        heading: str,
        passages: Iterable[Passage],
        question: str,
        *,
        highlight: Callable[[Passage], str | None] | None = None,
    ) -> tuple[str, CitationBook]:
        """Each passage quoted (or excerpted around the question's words) with its place; in
        the first action item, the line ``highlight`` picks (the sub-step that answers) in bold."""
        book = CitationBook()
        chosen = list(passages)
        toolkit = [p for p in chosen if p.kind != "document"]
        lines = [heading, ""] if toolkit else []
        first_item = next((p for p in toolkit if p.kind == "action_item"), None)
        for passage in toolkit:
            body = excerpt(passage.text.replace("\n", " "), question)
            best = highlight(passage) if highlight and passage is first_item else None
            if best and best in body and best.strip() != body.strip():
                body = body.replace(best, f"**{best}**", 1)
            lines.append(f"**{passage.title}**")
            lines.append(f"> {body} {book.cite(passage)}")
            lines.append("")
        text = "\n".join(lines).strip()
        documents = [p for p in chosen if p.kind == "document"]
        return (self.documents(text, documents, question, book) if documents else text), book

    def documents(
        self, text: str, passages: Iterable[Passage], question: str, book: CitationBook
    ) -> str:
        """``text`` followed by a plan's own document passages, each under its file's name.

        A plan's documents are never presented as the toolkit.
        """
        lines = [text, ""] if text else []
        for passage in passages:
            lines.append(f"**From your plan's documents: {passage.source}**")
            body = excerpt(passage.text.replace("\n", " "), question)
            lines.append(f"> {body} {book.cite(passage)}")
            lines.append("")
        return "\n".join(lines).strip()

    def listing(self, heading: str, passages: Iterable[Passage]) -> tuple[str, CitationBook]:
        """A bullet per passage, lead in bold: for resources and element lists."""
        book = CitationBook()
        lines = [heading, ""]
        for passage in passages:
            lines.append(f"- {bold_lead(passage)} {book.cite(passage)}")
        return "\n".join(lines).strip(), book

    def elements_overview(self, intro: Passage | None) -> tuple[str, CitationBook]:
        book = CitationBook()
        lines = ["The toolkit's seven elements of a palliative care strategy:", ""]
        if intro:
            lines.insert(
                0,
                f"> {excerpt(intro.text, 'seven essential elements strategy')} {book.cite(intro)}\n",
            )
        for number, key in enumerate(ELEMENT_KEYS, start=1):
            summary = self.by_id.get(f"{key}.summary")
            if summary:
                lines.append(f"{number}. {bold_lead(summary)} {book.cite(summary)}")
        return "\n".join(lines).strip(), book

    def tiers_overview(self, intro: Passage | None) -> tuple[str, CitationBook]:
        book = CitationBook()
        lines = ["Each element's action items come in three cumulative tiers:", ""]
        for key in TIER_KEYS:
            tier = self.by_id.get(f"tier.{key}")
            if tier:
                lines.append(f"- **{TIER_NAMES[key]}**: {tier.text} {book.cite(tier)}")
        if intro:
            lines.append("")
            lines.append(
                f"> {excerpt(intro.text, 'cumulative actions tiers starting basics')} {book.cite(intro)}"
            )
        return "\n".join(lines).strip(), book


class Standing(BaseModel):
    """Where a plan stands on one element: its completed level, the tier it works on (None
    when all three are done), that tier's items and the ones done."""

    element: str
    level: str
    tier: str | None
    items: list[Passage]
    done: set[str]

    @property
    def remaining(self) -> int:
        return sum(1 for item in self.items if item.id not in self.done)


def recommend(rows: Sequence[Standing]) -> Standing | None:
    """The element to focus on: the lowest tier still open; ties go to the one with the fewest
    items left (the nearest to completing its tier), then toolkit order."""
    open_rows = [row for row in rows if row.tier is not None and row.remaining]
    if not open_rows:
        return None
    return min(open_rows, key=lambda row: (TIER_KEYS.index(row.tier or ""), row.remaining))


def item_count(n: int) -> str:
    return f"{n} item{'s' if n != 1 else ''}"


def _short(text: str, limit: int = 90) -> str:
    text = text.strip().rstrip(".")
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _folded(summary: str, body: list[str]) -> list[str]:
    """Lines shown folded in the chat (an HTML disclosure), open in plain Markdown readers."""
    return ["", f"<details><summary>{summary}</summary>", "", *body, "", "</details>", ""]


def reply_from(book: CitationBook, text: str, **fields: object) -> Reply:
    """A ``Reply`` whose citations are exactly the markers used in ``text``."""
    return Reply(text=text, citations=book.citations, **fields)  # type: ignore[arg-type]
