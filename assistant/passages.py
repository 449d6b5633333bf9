"""Turn the parsed toolkit, and any extra documents in the corpus folder, into passages.

One passage per action item, resource row, rationale paragraph, goal, element summary, footnote,
sub-goal, tier description, intro paragraph, appendix paragraph and the contact block.

    passages, warnings = corpus_passages(Path("corpus"))
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from assistant.config import OVERVIEW_FILE, TOOLKIT_FILE
from assistant.errors import CorpusError
from assistant.schema import Passage, PassageKind
from assistant.toolkit import TIER_NAMES, Element, Toolkit, clean, load_toolkit

EXTRA_SUFFIXES = (".md", ".txt", ".pdf")
_MAX_SECTION_CHARS = 1500
SEP = " › "


def toolkit_passages(toolkit: Toolkit) -> list[Passage]:
    """Every passage of the toolkit, in document order."""
    out: list[Passage] = []
    for tier in toolkit.tiers:
        out.append(
            Passage(
                id=f"tier.{tier.key}",
                kind="tier",
                text=tier.description,
                title=f"Tiers{SEP}{tier.name}",
                tier=tier.key,
                source=OVERVIEW_FILE,
            )
        )
    for section in toolkit.intro:
        for n, paragraph in enumerate(section.paragraphs, start=1):
            out.append(_plain(f"{section.id}.{n}", "intro", paragraph, section.title))
    for element in toolkit.elements:
        out.extend(_element_passages(element))
    for n, paragraph in enumerate(toolkit.appendix.paragraphs, start=1):
        out.append(_plain(f"appendix.intro.{n}", "appendix", paragraph, "Appendix Two"))
    for res in toolkit.appendix_resources:
        out.append(_plain(res.id, "resource", res.text, f"Appendix Two{SEP}Resources", res.title))
    contact = " ".join(toolkit.contact.paragraphs)
    out.append(_plain("contact", "contact", contact, "Contact"))
    return out


def _plain(pid: str, kind: PassageKind, text: str, title: str, lead: str | None = None) -> Passage:
    return Passage(id=pid, kind=kind, text=text, title=title, lead=lead, source=TOOLKIT_FILE)


def _element_passages(element: Element) -> Iterator[Passage]:
    name, key = element.name, element.key

    def make(pid: str, kind: PassageKind, text: str, title: str, **extra: str | None) -> Passage:
        return Passage(
            id=pid,
            kind=kind,
            text=text,
            title=title,
            element=key,
            source=TOOLKIT_FILE,
            **extra,
        )

    # The overview page shows each element as its name over its one-line summary.
    summary = f"{name}: {element.summary or element.goal}"
    yield make(f"{key}.summary", "summary", summary, name, lead=name)
    yield make(f"{key}.goal", "goal", element.goal, f"{name}{SEP}Goal")
    for n, paragraph in enumerate(element.rationale, start=1):
        yield make(f"{key}.rationale.{n}", "rationale", paragraph, f"{name}{SEP}Why it matters")
    for note in element.footnotes:
        yield make(
            f"{key}.footnote.{note.number}",
            "footnote",
            note.text,
            f"{name}{SEP}Footnote {note.number}",
        )
    for sub in element.subgoals:
        yield make(
            f"{key}.subgoal.{sub.letter}",
            "subgoal",
            sub.heading,
            f"{name}{SEP}Sub-goal {sub.letter}",
            subgoal=sub.letter,
        )
    for item in element.items:
        title = f"{name}{SEP}{TIER_NAMES[item.tier]}"
        if item.subgoal:
            title += f"{SEP}{item.subgoal.letter}. {item.subgoal.heading}"
        yield make(
            item.id,
            "action_item",
            item.full_text,
            title,
            tier=item.tier,
            subgoal=item.subgoal.letter if item.subgoal else None,
            lead=item.lead,
        )
    for res in element.resources:
        yield make(res.id, "resource", res.text, f"{name}{SEP}Resources", lead=res.title)


def _sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading, body) pairs split at markdown headings or ALL-CAPS heading lines."""
    heading, body = "", list[str]()
    for line in text.splitlines():
        stripped = line.strip()
        is_heading = stripped.startswith("#") or (
            3 < len(stripped) < 80 and stripped.isupper() and not stripped.endswith(".")
        )
        if is_heading:
            if body:
                yield heading, "\n".join(body)
            heading, body = clean(stripped), []
        else:
            body.append(line)
    if body:
        yield heading, "\n".join(body)


def _chunks(body: str) -> Iterator[str]:
    """Paragraph groups no longer than ``_MAX_SECTION_CHARS``."""
    current = ""
    for paragraph in re.split(r"\n\s*\n", body):
        paragraph = clean(paragraph)
        if not paragraph:
            continue
        if current and len(current) + len(paragraph) > _MAX_SECTION_CHARS:
            yield current
            current = ""
        current = f"{current} {paragraph}".strip()
    if current:
        yield current


def _read_extra(path: Path) -> str:
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    return path.read_text("utf-8")


def document_passages(path: Path) -> list[Passage]:
    """Passages of one extra document, split by its headings. Raises ``CorpusError``."""
    try:
        text = _read_extra(path)
    except Exception as exc:  # pypdf raises many types; any of them means "cannot read"
        raise CorpusError(
            f"Skipped {path.name}: cannot read it ({type(exc).__name__}: {exc})."
        ) from exc
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "document"
    out: list[Passage] = []
    for heading, body in _sections(text):
        for chunk in _chunks(body):
            out.append(
                Passage(
                    id=f"doc.{slug}.{len(out) + 1}",
                    kind="document",
                    text=chunk,
                    title=f"{path.name}{SEP}{heading}" if heading else path.name,
                    source=path.name,
                )
            )
    if not out:
        raise CorpusError(f"Skipped {path.name}: no text found in it.")
    return out


def corpus_passages(corpus_dir: Path) -> tuple[Toolkit, list[Passage], list[str]]:
    """The toolkit, all passages, and warnings for extra files that could not be read."""
    toolkit = load_toolkit(corpus_dir)
    passages = toolkit_passages(toolkit)
    warnings: list[str] = []
    for path in sorted(extra_files(corpus_dir)):
        try:
            passages.extend(document_passages(path))
        except CorpusError as exc:
            warnings.append(str(exc))
    return toolkit, passages, warnings


def extra_files(corpus_dir: Path) -> list[Path]:
    """Documents in the corpus folder besides the two toolkit files."""
    return [
        path
        for path in corpus_dir.iterdir()
        if path.is_file()
        and path.suffix.lower() in EXTRA_SUFFIXES
        and path.name not in (TOOLKIT_FILE, OVERVIEW_FILE)
        and not path.name.startswith(".")
    ]
