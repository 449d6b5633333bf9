"""Parse the "Develop a Plan" toolkit text into typed records with stable ids.

The source is markdown converted from web pages: page headers repeat (``# 1 PAYMENT``), bold
leads can sit mid-sentence, some action items are headings, sub-goal lines are malformed
(``- A** **Within the plan: ...``), resource tables are tab-separated with HTML links, and
footnote markers are ``<sup>N</sup>``. This module reads it as it is; the text is never edited.

    toolkit = load_toolkit(Path("corpus"))
    toolkit.item("integration.essentials.4").lead  # 'mentor and support'
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.config import ELEMENT_KEYS, OVERVIEW_FILE, TIER_KEYS, TOOLKIT_FILE
from assistant.errors import CorpusError

TIER_NAMES: dict[str, str] = {
    "essentials": "The Essentials",
    "progressing-further": "Progressing Further",
    "setting-the-standard": "Setting the Standard",
}
_TIER_BY_HEADING = {
    "THE ESSENTIALS": "essentials",
    "PROGRESSING FURTHER": "progressing-further",
    "SETTING THE STANDARD": "setting-the-standard",
}
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}

_SUP = re.compile(r"<sup>\s*(\d+)\s*</sup>")
_TAG = re.compile(r"<[^>]+>")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_PAGE = re.compile(r"^#\s+(.+?)\s*$")
_ELEMENT_PAGE = re.compile(r"^(\d)\s+([A-Z][A-Z ]+)$")
_SUBGOAL = re.compile(r"^(?:#{2,6}\s*|-\s*)(?:\*\*)?([AB])(?:\*\*)?\s+(?:\*\*\s*)?(.+?)(?:\*\*)?$")
_TEASERS = ("At the very least", "Take the next steps", "Strive for excellence")


class Footnote(BaseModel):
    number: int
    text: str


class SubGoal(BaseModel):
    letter: str
    heading: str


class ActionItem(BaseModel):
    """One action item; ``id`` is ``<element>.<tier>.<n>`` in document order."""

    id: str
    element: str
    tier: str
    number: int
    subgoal: SubGoal | None = None
    lead: str
    text: str
    substeps: list[str] = Field(default_factory=list)

    @property
    def full_text(self) -> str:
        """The item with its sub-steps, as one passage."""
        if not self.substeps:
            return self.text
        return self.text + "\n" + "\n".join(f"- {step}" for step in self.substeps)


class Resource(BaseModel):
    """One row of a resource table; ``id`` is ``<element>.resource.<n>`` or ``appendix...``."""

    id: str
    element: str | None
    number: int
    type: str
    title: str
    publisher: str | None = None
    note: str | None = None
    url: str | None = None
    description: str

    @property
    def text(self) -> str:
        source = f" ({self.publisher})" if self.publisher else ""
        return f"{self.type}: {self.title}{source}. {self.description}"


class Tier(BaseModel):
    key: str
    name: str
    description: str
    tagline: str | None = None


class Element(BaseModel):
    key: str
    number: int
    name: str
    goal: str
    summary: str
    rationale: list[str]
    footnotes: list[Footnote] = Field(default_factory=list)
    subgoals: list[SubGoal] = Field(default_factory=list)
    items: list[ActionItem] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)

    def tier_items(self, tier: str) -> list[ActionItem]:
        return [item for item in self.items if item.tier == tier]


class Section(BaseModel):
    """A free-standing block of text: introduction, appendix or contact."""

    id: str
    title: str
    paragraphs: list[str]


class Toolkit(BaseModel):
    elements: list[Element]
    tiers: list[Tier]
    intro: list[Section]
    appendix: Section
    appendix_resources: list[Resource]
    contact: Section
    source: str = TOOLKIT_FILE

    def element(self, key: str) -> Element:
        for element in self.elements:
            if element.key == key:
                return element
        raise KeyError(key)

    def tier(self, key: str) -> Tier:
        for tier in self.tiers:
            if tier.key == key:
                return tier
        raise KeyError(key)

    @property
    def items(self) -> list[ActionItem]:
        return [item for element in self.elements for item in element.items]

    @property
    def resources(self) -> list[Resource]:
        own = [res for element in self.elements for res in element.resources]
        return own + self.appendix_resources

    def item(self, item_id: str) -> ActionItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


def clean(text: str) -> str:
    """Markdown and HTML removed, footnote markers dropped, whitespace folded.

    Entities are decoded first, so an encoded tag or image (``&lt;img …&gt;``) is removed like
    any other; images keep only their alt text, links only their label.
    """
    text = html.unescape(text)
    text = _SUP.sub("", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = text.replace("**", "").replace("\\(", "(").replace("\\)", ")")
    text = _ITALIC.sub(r"\1", text)
    text = re.sub(r"(?m)^\s*#+\s*", "", text)
    text = text.replace("→", "")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([,.;:])", r"\1", text)


def _blocks(lines: list[str]) -> list[str]:
    """Paragraph blocks: runs of non-blank lines; headings and list lines stand alone."""
    blocks: list[str] = []
    current: list[str] = []
    for raw in lines:
        line = raw.rstrip()
        if not line.strip() or line.strip() == "---":
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        if line.lstrip().startswith(("#", "- ")):
            if current:
                blocks.append("\n".join(current))
                current = []
            blocks.append(line.strip())
            continue
        current.append(line.strip())
    if current:
        blocks.append("\n".join(current))
    return blocks


def _pages(text: str) -> list[tuple[str, list[str]]]:
    """Split on H1 lines: (title, lines) per page, in document order."""
    pages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _PAGE.match(line)
        if match:
            pages.append((clean(match.group(1)), []))
        elif pages:
            pages[-1][1].append(line)
    return pages


def _heading_text(block: str) -> str | None:
    if block.startswith("#"):
        return clean(block)
    return None


def _parse_table(lines: list[str], start: int) -> tuple[list[dict[str, str | None]], int]:
    """Rows of a tab-separated resource table whose header is at ``start``."""
    rows: list[dict[str, str | None]] = []
    index = start + 1
    last_type = ""
    while index < len(lines) and "\t" in lines[index]:
        cells = lines[index].split("\t")
        if len(cells) != 3:
            raise CorpusError(
                f"Resource table row {index + 1} has {len(cells)} columns, expected 3: "
                f"{lines[index][:80]!r}. Check the corpus file against the original."
            )
        kind, cell, description = (c.strip() for c in cells)
        kind = kind or last_type
        last_type = kind
        link = re.search(r'<a href="([^"]*)">(.*?)</a>', cell)
        title = clean(link.group(2)) if link else clean(cell)
        url = link.group(1) if link and link.group(1) not in ("", "#") else None
        rest = cell[link.end() :] if link else ""
        notes = [clean(p) for p in re.findall(r"\(([^()]*)\)", rest)]
        publisher = next((n for n in reversed(notes) if n.upper() != "PDF"), None)
        note = "PDF" if any(n.upper() == "PDF" for n in notes) else None
        rows.append(
            {
                "type": kind,
                "title": title,
                "publisher": publisher,
                "note": note,
                "url": url,
                "description": clean(description),
            }
        )
        index += 1
    return rows, index


def _split_footnotes(lines: list[str]) -> tuple[list[str], list[Footnote]]:
    body: list[str] = []
    notes: list[Footnote] = []
    for line in lines:
        match = re.match(r"^\s*<sup>\s*(\d+)\s*</sup>\s*(.+)$", line)
        if match:
            notes.append(Footnote(number=int(match.group(1)), text=clean(match.group(2))))
        else:
            body.append(line)
    return body, notes


class _ElementParser:
    """Collects one element's pages into goal, rationale, items and resources."""

    def __init__(self, key: str, number: int, name: str, summary: str) -> None:
        self.key, self.number, self.name, self.summary = key, number, name, summary
        self.lines: list[str] = []

    def parse(self) -> Element:
        body, footnotes = _split_footnotes(self.lines)
        tables: list[dict[str, str | None]] = []
        kept: list[str] = []
        index = 0
        while index < len(body):
            if body[index].startswith("TYPE OF RESOURCE"):
                rows, index = _parse_table(body, index)
                tables.extend(rows)
                continue
            if not re.match(r"^Table \d+: Resources", body[index]):
                kept.append(body[index])
            index += 1
        goal, rationale, tier_blocks = self._sections(_blocks(kept))
        items, subgoals = self._items(tier_blocks)
        resources = [
            Resource(id=f"{self.key}.resource.{n}", element=self.key, number=n, **row)  # type: ignore[arg-type]
            for n, row in enumerate(tables, start=1)
        ]
        return Element(
            key=self.key,
            number=self.number,
            name=self.name,
            goal=goal,
            summary=self.summary,
            rationale=rationale,
            footnotes=footnotes,
            subgoals=subgoals,
            items=items,
            resources=resources,
        )

    def _sections(self, blocks: list[str]) -> tuple[str, list[str], list[tuple[str, str]]]:
        goal = ""
        rationale: list[str] = []
        tier_blocks: list[tuple[str, str]] = []
        tier: str | None = None
        for block in blocks:
            heading = _heading_text(block)
            if heading and heading.upper() == "ACTION ITEMS":
                tier = "teaser"
                continue
            if heading and heading.upper() in _TIER_BY_HEADING:
                tier = _TIER_BY_HEADING[heading.upper()]
                continue
            if tier is None:
                if not goal:
                    goal = clean(block)
                elif not block.startswith("#"):
                    rationale.append(clean(block))
                continue
            if tier != "teaser":
                tier_blocks.append((tier, block))
        if not goal:
            raise CorpusError(f"No goal statement found for element {self.name!r}.")
        return goal, rationale, tier_blocks

    def _items(self, tier_blocks: list[tuple[str, str]]) -> tuple[list[ActionItem], list[SubGoal]]:
        items: list[ActionItem] = []
        subgoals: dict[str, SubGoal] = {}
        subgoal: SubGoal | None = None
        last_tier: str | None = None
        pending_steps = 0
        for tier, block in tier_blocks:
            if tier != last_tier:
                subgoal, last_tier, pending_steps = None, tier, 0
            text = clean(block)
            if not text or text.startswith(_TEASERS):
                continue
            match = _SUBGOAL.match(block)
            if match and block.lstrip("#- *").startswith(("A", "B")) and "**" not in text:
                letter, heading = match.group(1), clean(match.group(2))
                subgoal = subgoals.setdefault(letter, SubGoal(letter=letter, heading=heading))
                continue
            leads = [clean(run) for run in _BOLD.findall(block) if clean(run)]
            if pending_steps and leads and items:
                items[-1].substeps.append(text)
                pending_steps -= 1
                continue
            if not leads:
                if not items or items[-1].tier != tier:
                    raise CorpusError(
                        f"{self.name}: text outside any action item in {TIER_NAMES[tier]}: "
                        f"{text[:80]!r}"
                    )
                items[-1].text = f"{items[-1].text} {text}"
                continue
            number = 1 + sum(1 for item in items if item.tier == tier)
            items.append(
                ActionItem(
                    id=f"{self.key}.{tier}.{number}",
                    element=self.key,
                    tier=tier,
                    number=number,
                    subgoal=subgoal,
                    lead=" ".join(leads).rstrip(".:,"),
                    text=text,
                )
            )
            parts = re.search(r"\b(\w+)-part approach", text)
            pending_steps = _NUMBER_WORDS.get(parts.group(1).lower(), 0) if parts else 0
        return items, sorted(subgoals.values(), key=lambda s: s.letter)


def _parse_overview(text: str) -> list[Tier]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tiers: list[Tier] = []
    for key in TIER_KEYS:
        heading = next(h for h, k in _TIER_BY_HEADING.items() if k == key)
        try:
            description = lines[lines.index(heading) + 1]
        except (ValueError, IndexError) as exc:
            raise CorpusError(
                f"{OVERVIEW_FILE}: no description under {heading!r}. "
                "Restore the file from the original toolkit."
            ) from exc
        tiers.append(Tier(key=key, name=TIER_NAMES[key], description=description))
    return tiers


def parse_toolkit(text: str, overview: str) -> Toolkit:
    """Parse the toolkit markdown and its overview page.

    Args:
        text: the contents of ``develop-a-plan.md``.
        overview: the contents of ``develop-a-plan-overview-page.txt``.

    Returns:
        The typed toolkit. Raises ``CorpusError`` when the text does not have the expected shape.
    """
    pages = _pages(text)
    if not pages:
        raise CorpusError(f"{TOOLKIT_FILE} has no '# ' page headings; is it the toolkit text?")
    intro: list[Section] = []
    summaries: dict[int, tuple[str, str]] = {}
    parsers: dict[int, _ElementParser] = {}
    appendix_paragraphs: list[str] = []
    appendix_rows: list[dict[str, str | None]] = []
    contact: list[str] = []
    seen_titles: set[str] = set()
    for title, lines in pages:
        upper = title.upper()
        element_match = _ELEMENT_PAGE.match(upper)
        if element_match:
            number = int(element_match.group(1))
            if number not in parsers:
                if not 1 <= number <= len(ELEMENT_KEYS):
                    raise CorpusError(f"{TOOLKIT_FILE}: unknown element page {title!r}.")
                name = summaries.get(number, (title.split(" ", 1)[1].title(), ""))[0]
                parsers[number] = _ElementParser(
                    ELEMENT_KEYS[number - 1], number, name, summaries.get(number, ("", ""))[1]
                )
            parsers[number].lines.extend(lines)
        elif upper in ("DEVELOP A PLAN", "CRAFT THE STRATEGY"):
            paragraphs, found = _intro_page(lines)
            summaries.update(found)
            if upper not in seen_titles and paragraphs:
                slug = upper.lower().replace(" ", "-")
                name = "Develop a Plan" if slug == "develop-a-plan" else "Craft the Strategy"
                intro.append(Section(id=f"intro.{slug}", title=name, paragraphs=paragraphs))
            seen_titles.add(upper)
        elif upper.startswith("APPENDIX") or upper.startswith("RESOURCES TO HELP"):
            body = [line for line in lines if not line.startswith("TYPE OF RESOURCE")]
            for index, line in enumerate(lines):
                if line.startswith("TYPE OF RESOURCE"):
                    rows, _ = _parse_table(lines, index)
                    appendix_rows.extend(rows)
            for block in _blocks(body):
                if "\t" in block or block.startswith("[Skip") or block.startswith("## Develop"):
                    continue
                appendix_paragraphs.append(clean(block))
        elif upper == "THANK YOU":
            contact = [clean(block) for block in _blocks(lines) if clean(block)]
    elements = [parsers[n].parse() for n in sorted(parsers)]
    if [e.key for e in elements] != list(ELEMENT_KEYS):
        found_keys = ", ".join(e.key for e in elements) or "none"
        raise CorpusError(
            f"{TOOLKIT_FILE}: expected the seven element pages, found {found_keys}. "
            "Restore the file from the original toolkit."
        )
    appendix_resources = [
        Resource(id=f"appendix.resource.{n}", element=None, number=n, **row)  # type: ignore[arg-type]
        for n, row in enumerate(appendix_rows, start=1)
    ]
    tiers = _parse_overview(overview)
    return Toolkit(
        elements=elements,
        tiers=tiers,
        intro=intro,
        appendix=Section(id="appendix.intro", title="Appendix Two", paragraphs=appendix_paragraphs),
        appendix_resources=appendix_resources,
        contact=Section(id="contact", title="Contact", paragraphs=contact),
    )


def _intro_page(lines: list[str]) -> tuple[list[str], dict[int, tuple[str, str]]]:
    """Intro paragraphs and the element summaries (``## N`` / ``### Name`` / paragraph)."""
    paragraphs: list[str] = []
    summaries: dict[int, tuple[str, str]] = {}
    number: int | None = None
    name = ""
    for block in _blocks(lines):
        text = clean(block)
        numbered = re.match(r"^##\s+(\d)$", block)
        if numbered:
            number = int(numbered.group(1))
            continue
        if number is not None and block.startswith("###"):
            name = text
            continue
        if number is not None and name and not block.startswith("[Learn"):
            summaries[number] = (name, text)
            number, name = None, ""
            continue
        if number is None and text and not block.startswith("["):
            paragraphs.append(text)
    return paragraphs, summaries


def load_toolkit(corpus_dir: Path) -> Toolkit:
    """Read and parse the toolkit files in ``corpus_dir``; ``CorpusError`` says what is wrong."""
    main, overview = corpus_dir / TOOLKIT_FILE, corpus_dir / OVERVIEW_FILE
    for path in (main, overview):
        if not path.is_file():
            raise CorpusError(
                f"Toolkit file not found: {path}. Copy it into {corpus_dir}/ "
                "(set ASSISTANT_CORPUS_DIR if the corpus lives elsewhere)."
            )
    try:
        text, overview_text = main.read_text("utf-8"), overview.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"Cannot read the toolkit in {corpus_dir}: {exc}") from exc
    return parse_toolkit(text, overview_text)


def walk(toolkit: Toolkit) -> Iterator[str]:
    """Lines of a readable tree of the parsed toolkit, for checking the parse by eye."""
    for tier in toolkit.tiers:
        yield f"Tier {tier.name} [{tier.key}]: {tier.description}"
    for element in toolkit.elements:
        yield f"{element.number} {element.name} [{element.key}]: {element.goal}"
        yield f"  rationale: {len(element.rationale)} paragraphs, footnotes {[f.number for f in element.footnotes]}"
        for tier_key in TIER_KEYS:
            items = element.tier_items(tier_key)
            yield f"  {TIER_NAMES[tier_key]} ({len(items)})"
            current = None
            for item in items:
                if item.subgoal and item.subgoal != current:
                    current = item.subgoal
                    yield f"    {item.subgoal.letter}. {item.subgoal.heading}"
                yield f"    [{item.id}] {item.lead}"
                for step in item.substeps:
                    yield f"        - {step}"
        yield f"  Resources ({len(element.resources)})"
        for res in element.resources:
            yield f"    [{res.id}] {res.type}: {res.title}" + (
                f" ({res.publisher})" if res.publisher else ""
            )
    yield f"Appendix Two resources ({len(toolkit.appendix_resources)})"
    for res in toolkit.appendix_resources:
        yield f"    [{res.id}] {res.type}: {res.title}"
    yield f"Intro sections: {', '.join(s.title for s in toolkit.intro)}; contact: {len(toolkit.contact.paragraphs)} lines"
    yield (
        f"Total: {len(toolkit.items)} action items, {len(toolkit.resources)} resources, "
        f"{len(toolkit.elements)} elements"
    )
