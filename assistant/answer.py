"""Compose grounded answers: every toolkit sentence comes from a cited passage.

The default composer needs no language model: it lays out the routed passages under fixed
template lines. Optional LLM synthesis (``ASSISTANT_LLM``) rewrites that answer from the same
passages and is checked; on any failure the composer's answer stands, with a note.

    composer = Composer(passages=retriever.passages)
    reply = composer.next_steps(route, resources=[...])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

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
    ) -> tuple[str, CitationBook]:
        """Every action item of each (element, tier), sub-goals and sub-steps kept, then resources."""
        book = book or CitationBook()
        lines = [reason, ""]
        for element, tier, resources in sections:
            lines.append(f"### {self.name(element)} › {TIER_NAMES[tier]}")
            tier_passage = self.by_id.get(f"tier.{tier}")
            if tier_passage:
                lines.append(f"*{TIER_NAMES[tier]}: {tier_passage.text}* {book.cite(tier_passage)}")
            lines.append("")
            subgoal: str | None = None
            for item in self.items(element, tier):
                if item.subgoal and item.subgoal != subgoal:
                    subgoal = item.subgoal
                    heading = self.by_id.get(f"{element}.subgoal.{subgoal}")
                    if heading:
                        lines.append(f"**{subgoal}. {heading.text}** {book.cite(heading)}")
                marker = book.cite(item)
                lines.append(f"- {bold_lead(item)} {marker}")
                for step in item.text.split("\n")[1:]:
                    lines.append(f"    {step.strip()} {marker}")
            if resources:
                lines.append("")
                lines.append(f"**Resources for {self.name(element)}**")
                for res in resources:
                    lines.append(f"- {bold_lead(res)} {book.cite(res)}")
            lines.append("")
        return "\n".join(lines).strip(), book

    # -- explain, resources, overview -----------------------------------------------------------
    def quotes(
        self, heading: str, passages: Iterable[Passage], question: str
    ) -> tuple[str, CitationBook]:
        """Each passage quoted (or excerpted around the question's words) with its place."""
        book = CitationBook()
        chosen = list(passages)
        toolkit = [p for p in chosen if p.kind != "document"]
        lines = [heading, ""] if toolkit else []
        for passage in toolkit:
            body = excerpt(passage.text.replace("\n", " "), question)
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


def reply_from(book: CitationBook, text: str, **fields: object) -> Reply:
    """A ``Reply`` whose citations are exactly the markers used in ``text``."""
    return Reply(text=text, citations=book.citations, **fields)  # type: ignore[arg-type]
