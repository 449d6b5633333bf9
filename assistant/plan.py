"""The self-assessment profile and the "Build my plan" document.

A champion ticks the action items their plan has done. A tier counts as completed when all its
items and those of the tiers below are ticked; a per-element override can say otherwise. The
profile (element -> highest completed tier) feeds every question, and the plan lists, per
element, what is already in place and what to do next, with owner / due-date / status /
priority columns and the element's resources. One ``Plan`` model is rendered to four formats
by ``assistant.plan_formats``.

    state = ProfileState(checked=["equity.essentials.1"], name="Acme Health")
    files = build_plan(toolkit, state).files()  # {"acme-health-2025-03-04.md": b"...", ...}
"""

from __future__ import annotations

import os
import re
import unicodedata
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from assistant.config import TIER_KEYS
from assistant.plan_formats import md_text, plan_docx, plan_html, plan_markdown, plan_xlsx
from assistant.toolkit import TIER_NAMES, ActionItem, Element, Resource, Toolkit

NONE = "none"
AUTO = "auto"
LEVELS: tuple[str, ...] = (NONE, *TIER_KEYS)
LEVEL_NAMES: dict[str, str] = {NONE: "Not started", **TIER_NAMES}
DEFAULT_TITLE = "Palliative care plan"
NAME_MAX = 120
STATUSES: tuple[str, ...] = ("To do", "In progress", "Done", "Blocked")
PRIORITIES: tuple[str, ...] = ("High", "Medium", "Low")
# Joiners shape some scripts and emoji; every other format character (bidi overrides, ...) goes.
_KEEP_FORMAT = {"\u200c", "\u200d"}

__all__ = [
    "AUTO",
    "DEFAULT_TITLE",
    "LEVELS",
    "LEVEL_NAMES",
    "NONE",
    "PRIORITIES",
    "STATUSES",
    "Plan",
    "PlanRow",
    "PlanSection",
    "ProfileState",
    "TierProgress",
    "build_plan",
    "clean_plan_name",
    "completed_level",
    "next_tier",
    "plan_docx",
    "plan_html",
    "plan_markdown",
    "plan_xlsx",
    "profile_summary",
    "tier_progress",
]


def clean_plan_name(text: str) -> str:
    """A plan name fit for a title: control characters dropped, whitespace collapsed, at most
    120 characters."""
    spaced = "".join(" " if char.isspace() else char for char in text)
    kept = "".join(
        char
        for char in spaced
        if unicodedata.category(char) not in ("Cc", "Cf", "Cs") or char in _KEEP_FORMAT
    )
    return " ".join(kept.split())[:NAME_MAX].strip()


class TierProgress(BaseModel):
    """Ticked items in the tier an element is working on (None once all three are completed).

    progress = tier_progress(toolkit.element("equity"), "none", {"equity.essentials.1"})
    progress.text  # '1 of 3 The Essentials items done'
    """

    tier: str | None
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> str:
        """'1 of 3', or '' when there is no tier left."""
        return f"{self.done} of {self.total}" if self.tier else ""

    @property
    def text(self) -> str:
        if self.tier is None:
            return "All three tiers done"
        noun = "item" if self.total == 1 else "items"
        return f"{self.fraction} {TIER_NAMES[self.tier]} {noun} done"


class ProfileState(BaseModel):
    """What the browser keeps: the plan's name, ticked item ids and per-element overrides.

    state = ProfileState.from_stored(browser_value)  # tolerant of old or damaged values
    profile = state.profile(toolkit)                 # {"equity": "essentials", ...}
    """

    name: str = Field(default="", description="the plan's name; cleaned, at most 120 characters")
    checked: list[str] = Field(default_factory=list)
    overrides: dict[str, str] = Field(default_factory=dict, description="element -> level")

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        return clean_plan_name(value)

    @classmethod
    def from_stored(cls, value: object) -> ProfileState:
        """Read a value from browser storage; anything unreadable gives an empty profile.

        A name that is not text is dropped alone, so the ticks survive it.
        """
        if not isinstance(value, dict):
            return cls()
        if not isinstance(value.get("name", ""), str):
            value = {key: item for key, item in value.items() if key != "name"}
        try:
            state = cls.model_validate(value)
        except ValidationError:
            return cls()
        overrides = {k: v for k, v in state.overrides.items() if v in LEVELS}
        return cls(name=state.name, checked=sorted(set(state.checked)), overrides=overrides)

    def checked_in(self, toolkit: Toolkit) -> set[str]:
        """Ticked ids that still name an action item of this toolkit."""
        known = {item.id for item in toolkit.items}
        return {item_id for item_id in self.checked if item_id in known}

    def profile(self, toolkit: Toolkit) -> dict[str, str]:
        """Element -> highest completed level, overrides applied."""
        checked = self.checked_in(toolkit)
        return {
            element.key: self.overrides.get(element.key) or completed_level(element, checked)
            for element in toolkit.elements
        }

    def progress(self, toolkit: Toolkit) -> dict[str, TierProgress]:
        """Element -> ticked items in the tier it is working on (the one after its level)."""
        checked = self.checked_in(toolkit)
        profile = self.profile(toolkit)
        return {e.key: tier_progress(e, profile[e.key], checked) for e in toolkit.elements}


def completed_level(element: Element, checked: set[str]) -> str:
    """Highest tier whose items, and those of every tier below, are all ticked."""
    level = NONE
    for tier in TIER_KEYS:
        if not all(item.id in checked for item in element.tier_items(tier)):
            break
        level = tier
    return level


def next_tier(level: str) -> str | None:
    """The tier after ``level``; None once Setting the Standard is completed."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def tier_progress(element: Element, level: str, checked: set[str]) -> TierProgress:
    """How many items of the tier after ``level`` are ticked, out of how many."""
    tier = next_tier(level)
    if tier is None:
        return TierProgress(tier=None)
    items = element.tier_items(tier)
    done = sum(item.id in checked for item in items)
    return TierProgress(tier=tier, done=done, total=len(items))


class PlanRow(BaseModel):
    """One action item to do, with the columns a team fills in at its meeting."""

    item: ActionItem
    catch_up: bool = Field(
        description="below the next tier: the profile says done, the box doesn't"
    )
    owner: str = ""
    due: str = ""
    status: str = "To do"

    @property
    def priority(self) -> str:
        """ "High" for a catch-up item (a tier below the one being worked on, left unticked:
        the foundation the next tier stands on), "Medium" for an item of the next tier.
        "Low" is left for the team to choose."""
        return "High" if self.catch_up else "Medium"

    @property
    def tier_label(self) -> str:
        return TIER_NAMES[self.item.tier] + (" (catch up)" if self.catch_up else "")


class PlanSection(BaseModel):
    element: Element
    level: str
    set_by_hand: bool = False
    next_tier: str | None
    progress: TierProgress
    in_place: list[ActionItem] = Field(description="ticked items, every tier, toolkit order")
    rows: list[PlanRow] = Field(description="unticked items up to the next tier")
    resources: list[Resource]

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level] + (" (set by hand)" if self.set_by_hand else "")

    @property
    def working_on(self) -> str:
        return TIER_NAMES[self.next_tier] if self.next_tier else "All done"

    @property
    def status(self) -> str:
        """'Completed: The Essentials. Next: Progressing Further (1 of 3 done)', and so on."""
        catch_up = sum(row.catch_up for row in self.rows)
        note = ""
        if catch_up:
            note = f"; {catch_up} catch-up item{'s' if catch_up != 1 else ''} below it"
        if self.next_tier is None:
            return f"{self.level_name} completed: all three tiers are done{note}"
        return (
            f"Completed: {self.level_name}. Next: {self.working_on} "
            f"({self.progress.fraction} done){note}"
        )


class Plan(BaseModel):
    """The plan for a meeting; every format is rendered from this one model.

    plan = build_plan(toolkit, state, today=date(2025, 3, 4))
    paths = plan.write(folder)  # .md, .html, .docx, .xlsx
    """

    title: str = DEFAULT_TITLE
    made_on: date
    sections: list[PlanSection]

    @field_validator("title")
    @classmethod
    def _clean_title(cls, value: str) -> str:
        return clean_plan_name(value) or DEFAULT_TITLE

    @property
    def markdown(self) -> str:
        return plan_markdown(self)

    @property
    def html(self) -> str:
        return plan_html(self)

    def docx_bytes(self) -> bytes:
        """The plan as a Word document."""
        return plan_docx(self)

    def xlsx_bytes(self) -> bytes:
        """The to-do list as a spreadsheet, with sheets for what is in place and resources."""
        return plan_xlsx(self)

    @property
    def stem(self) -> str:
        """A safe file stem: the name as a slug, then the date (``acme-health-2025-03-04``)."""
        ascii_name = unicodedata.normalize("NFKD", self.title).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].rstrip("-")
        return f"{slug or 'palliative-care-plan'}-{self.made_on.isoformat()}"

    def files(self) -> dict[str, bytes]:
        """File name -> content, in the order .md, .html, .docx, .xlsx."""
        return {
            f"{self.stem}.md": self.markdown.encode("utf-8"),
            f"{self.stem}.html": self.html.encode("utf-8"),
            f"{self.stem}.docx": self.docx_bytes(),
            f"{self.stem}.xlsx": self.xlsx_bytes(),
        }

    def write(self, directory: Path) -> list[Path]:
        """Write the four files into ``directory``, each readable by this user only (0600).

        Returns:
            The paths, in the order .md, .html, .docx, .xlsx.
        """
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths = []
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        for filename, content in self.files().items():
            path = directory / filename
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)  # also when the file was there before
                handle.write(content)
            paths.append(path)
        return paths


def build_plan(
    toolkit: Toolkit, state: ProfileState, *, today: date | None = None, name: str | None = None
) -> Plan:
    """For each element: the ticked items, then the unticked items of the next tier and any
    unticked ones below it (catch up). A ticked item is never a to-do.

    Args:
        toolkit: the parsed toolkit.
        state: the plan's name, ticked items and overrides, as kept in the browser.
        today: the date printed on the plan (defaults to today).
        name: the plan's name, instead of ``state.name``; empty gives "Palliative care plan".

    Returns:
        A plan with one section per element, in toolkit order.
    """
    checked = state.checked_in(toolkit)
    profile = state.profile(toolkit)
    sections = []
    for element in toolkit.elements:
        level = profile[element.key]
        target = next_tier(level)
        last = TIER_KEYS.index(target) if target else len(TIER_KEYS) - 1
        rows = [
            PlanRow(item=item, catch_up=item.tier != target)
            for tier in TIER_KEYS[: last + 1]
            for item in element.tier_items(tier)
            if item.id not in checked
        ]
        sections.append(
            PlanSection(
                element=element,
                level=level,
                set_by_hand=element.key in state.overrides,
                next_tier=target,
                progress=tier_progress(element, level, checked),
                in_place=[item for item in element.items if item.id in checked],
                rows=rows,
                resources=element.resources,
            )
        )
    title = state.name if name is None else name
    return Plan(title=title or DEFAULT_TITLE, made_on=today or date.today(), sections=sections)


def profile_summary(toolkit: Toolkit, state: ProfileState) -> str:
    """A short Markdown table of the profile, shown above the checkboxes.

    | Element | Completed | Working on | Done |: "Done" counts the ticked items of the tier in
    "Working on" ("1 of 3").
    """
    profile = state.profile(toolkit)
    progress = state.progress(toolkit)
    lines = ["| Element | Completed | Working on | Done |", "|---|---|---|---|"]
    for element in toolkit.elements:
        level = profile[element.key]
        target = next_tier(level)
        flag = " (set by hand)" if element.key in state.overrides else ""
        lines.append(
            f"| {element.number}. {md_text(element.name)} | {LEVEL_NAMES[level]}{flag} | "
            f"{TIER_NAMES[target] if target else 'All done'} | "
            f"{progress[element.key].fraction or '–'} |"
        )
    return "\n".join(lines)
