"""Markdown the chat shows: replies with clickable markers, passages, and the conversation export.

Everything a user typed is escaped before it reaches the page: a question is shown as plain
text, and the reply text (toolkit markdown that can echo the question) loses raw HTML and
images. The chatbot's own sanitizer runs on top of this.

    md = reply_markdown(reply, turn=0)   # "... [[1]](#cite-0-1) ...\n\n**Sources**\n1. ..."
    passage_markdown(reply.citations[0], toolkit)
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from pydantic import BaseModel, Field

from assistant.schema import Citation, Reply
from assistant.toolkit import TIER_NAMES, ActionItem, Resource, Toolkit

CITE_PREFIX = "#cite-"
PASSAGE_HINT = (
    "### Cited passage\n\nClick a number such as **[1]** in an answer, or a source under it, "
    "to read the toolkit's own words here."
)
_MARKER = re.compile(r"\[(\d+)\](?!\()")
_KIND_NAMES = {
    "action_item": "Action item",
    "subgoal": "Sub-goal",
    "resource": "Resource",
    "rationale": "Why it matters",
    "goal": "Goal",
    "summary": "Element summary",
    "footnote": "Footnote",
    "tier": "Tier",
    "intro": "Introduction",
    "appendix": "Appendix",
    "contact": "Contact",
    "document": "Document",
}


class Turn(BaseModel):
    """One question and what the user saw in return (a reply, or a message instead of one)."""

    question: str
    reply: Reply | None = None
    message: str = Field(default="", description="shown instead of a reply: an error, a limit")
    profile: dict[str, str] = Field(default_factory=dict)
    asked_at: str = Field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))

    @property
    def shown_text(self) -> str:
        return self.reply.text if self.reply else self.message


def escape_html(text: str) -> str:
    """No raw HTML survives: ``<`` and ``>`` become entities; ``&`` too."""
    return html.escape(text, quote=False)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|!~])")


def plain_text_markdown(text: str) -> str:
    """User input shown as typed: no HTML, and no emphasis, link, image, code or heading."""
    return _MD_SPECIAL.sub(r"\\\1", escape_html(text))


def safe_reply_text(text: str) -> str:
    """Reply markdown with no HTML tag (``<`` escaped; ``>`` kept for quotes) and no images.

    Images are disabled so an echoed question cannot make the page load a remote URL.
    """
    return text.replace("<", "&lt;").replace("![", "!\\[")


def item_text_markdown(item: ActionItem) -> str:
    """An action item's text with its lead in bold (the lead is the text's opening words)."""
    body, lead = escape_html(item.text), escape_html(item.lead)
    return body.replace(lead, f"**{lead}**", 1) if lead in body else f"**{lead}**: {body}"


def cite_key(turn: int, marker: int) -> str:
    return f"{turn}-{marker}"


def parse_cite_key(key: str) -> tuple[int, int] | None:
    """``"3-1"`` -> (3, 1); anything else -> None."""
    match = re.fullmatch(r"\s*(\d{1,6})-(\d{1,4})\s*", key or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def link_markers(text: str, turn: int, markers: set[int]) -> str:
    """``[2]`` -> a link the page script turns into "open passage 2 of this turn"."""

    def replace(match: re.Match[str]) -> str:
        marker = int(match.group(1))
        if marker not in markers:
            return match.group(0)
        return f"[\\[{marker}\\]]({CITE_PREFIX}{cite_key(turn, marker)})"

    return _MARKER.sub(replace, text)


def source_label(citation: Citation, toolkit: Toolkit | None) -> str:
    """Where a passage sits, ending with what tells it apart (an item's lead, a resource title)."""
    item = _lookup_item(toolkit, citation.id)
    resource = _lookup_resource(toolkit, citation.id)
    if item is not None:
        return f"{citation.title} › {item.lead[:1].upper()}{item.lead[1:]}"
    if resource is not None:
        return f"{citation.title} › {resource.title}"
    return citation.title


def sources_markdown(citations: list[Citation], turn: int, toolkit: Toolkit | None = None) -> str:
    lines = ["**Sources**", ""]
    for citation in sorted(citations, key=lambda c: c.marker):
        title = plain_text_markdown(source_label(citation, toolkit))
        link = f"{CITE_PREFIX}{cite_key(turn, citation.marker)}"
        lines.append(f"- [\\[{citation.marker}\\]]({link}) {title} · `{citation.id}`")
    return "\n".join(lines)


# The composer's own folds ("the rest of this tier"): a line of their own, a plain summary.
_FOLD_OPEN = re.compile(r"^&lt;details>&lt;summary>([^<>&\n]{1,160})&lt;/summary>$", re.MULTILINE)
_FOLD_CLOSE = re.compile(r"^&lt;/details>$", re.MULTILINE)


def unfold_markers(text: str) -> str:
    """After ``safe_reply_text``: the composer's fold lines become a disclosure again (the
    only HTML a reply carries; a tag anywhere else stays escaped)."""
    text = _FOLD_OPEN.sub(r"<details><summary>\1</summary>", text)
    return _FOLD_CLOSE.sub("</details>", text)


def reply_markdown(reply: Reply, turn: int, toolkit: Toolkit | None = None) -> str:
    """The chat message for a reply: text with clickable markers, notes, then the sources."""
    markers = {c.marker for c in reply.citations}
    parts = [link_markers(unfold_markers(safe_reply_text(reply.text)), turn, markers)]
    parts += [f"*{safe_reply_text(note)}*" for note in reply.notes]
    if reply.citations:
        parts.append(sources_markdown(reply.citations, turn, toolkit))
    return "\n\n".join(parts)


def streaming_markdown(text: str) -> str:
    """A partial reply while it streams: safe text, markers not yet linked."""
    return safe_reply_text(text) + " ▍"


def passage_markdown(citation: Citation, toolkit: Toolkit | None) -> str:
    """The cited passage in full: where it sits (element › tier › sub-goal), its id, its text."""
    kind = _KIND_NAMES.get(citation.kind, citation.kind.replace("_", " ").capitalize())
    lines = [
        f"### [{citation.marker}] {plain_text_markdown(source_label(citation, toolkit))}",
        "",
        f"{kind} · `{citation.id}`",
        "",
    ]
    text = escape_html(citation.text)
    item = _lookup_item(toolkit, citation.id)
    if item is not None:
        lines.append(item_text_markdown(item))
        lines += [f"- {escape_html(step)}" for step in item.substeps]
    else:
        lines.append(text)
    resource = _lookup_resource(toolkit, citation.id)
    if resource is not None and resource.url and resource.url.startswith(("https://", "http://")):
        lines += ["", f"Link: <{resource.url}>"]
    lines += ["", f"*Source: {escape_html(citation.source)}*"]
    return "\n".join(lines)


def _lookup_item(toolkit: Toolkit | None, item_id: str) -> ActionItem | None:
    if toolkit is None:
        return None
    try:
        return toolkit.item(item_id)
    except KeyError:
        return None


def _lookup_resource(toolkit: Toolkit | None, resource_id: str) -> Resource | None:
    if toolkit is None:
        return None
    return next((res for res in toolkit.resources if res.id == resource_id), None)


def find_citation(turns: list[Turn], key: str) -> Citation | None:
    """The citation a ``turn-marker`` key points at, if that turn and marker exist."""
    parsed = parse_cite_key(key)
    if parsed is None:
        return None
    turn, marker = parsed
    if not 0 <= turn < len(turns) or turns[turn].reply is None:
        return None
    reply = turns[turn].reply
    assert reply is not None
    return next((c for c in reply.citations if c.marker == marker), None)


def conversation_markdown(turns: list[Turn], *, exported_at: datetime | None = None) -> str:
    """The conversation as a Markdown document: each question, its answer and its citations."""
    when = exported_at or datetime.now()
    lines = [
        "# Plan Guide conversation",
        "",
        f"Exported {when:%d %B %Y %H:%M}. Answers cite the toolkit *Develop a Plan*.",
    ]
    for n, turn in enumerate(turns, start=1):
        lines += ["", f"## {n}. {' '.join(turn.question.split())}", ""]
        if turn.profile:
            known = {k: v for k, v in turn.profile.items() if v != "none"}
            if known:
                done = ", ".join(f"{k}: {TIER_NAMES.get(v, v)}" for k, v in sorted(known.items()))
                lines += [f"*Profile: {done}*", ""]
        lines.append(turn.shown_text)
        if turn.reply and turn.reply.notes:
            lines += [""] + [f"*{note}*" for note in turn.reply.notes]
        if turn.reply and turn.reply.citations:
            lines += ["", "**Citations**", ""]
            for citation in sorted(turn.reply.citations, key=lambda c: c.marker):
                text = citation.text.replace("\n", " ")
                lines.append(f"[{citation.marker}] {citation.title} (`{citation.id}`): {text}")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
