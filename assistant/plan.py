"""The self-assessment profile and the "Build my plan" document.

A champion ticks the action items their plan has done. A tier counts as completed when all its
items and those of the tiers below are ticked; a per-element override can say otherwise. The
profile (element -> highest completed tier) feeds every question, and the plan lists what to do
next, with the element's resources and empty owner / due-date columns.

    state = ProfileState(checked=["equity.essentials.1", ...], overrides={"payment": "essentials"})
    plan = build_plan(toolkit, state)
    plan.markdown, plan.html  # the same plan, for a meeting or for the printer
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from assistant.config import TIER_KEYS
from assistant.toolkit import TIER_NAMES, ActionItem, Element, Resource, Toolkit

NONE = "none"
AUTO = "auto"
LEVELS: tuple[str, ...] = (NONE, *TIER_KEYS)
LEVEL_NAMES: dict[str, str] = {NONE: "Not started", **TIER_NAMES}


class ProfileState(BaseModel):
    """What the browser keeps: ticked item ids and per-element tier overrides.

    state = ProfileState.from_stored(browser_value)  # tolerant of old or damaged values
    profile = state.profile(toolkit)                 # {"equity": "essentials", ...}
    """

    checked: list[str] = Field(default_factory=list)
    overrides: dict[str, str] = Field(default_factory=dict, description="element -> level")

    @classmethod
    def from_stored(cls, value: object) -> ProfileState:
        """Read a value from browser storage; anything unreadable gives an empty profile."""
        if not isinstance(value, dict):
            return cls()
        try:
            state = cls.model_validate(value)
        except ValidationError:
            return cls()
        overrides = {k: v for k, v in state.overrides.items() if v in LEVELS}
        return cls(checked=sorted(set(state.checked)), overrides=overrides)

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


class PlanRow(BaseModel):
    item: ActionItem
    catch_up: bool = Field(
        description="below the next tier: the profile says done, the box doesn't"
    )


class PlanSection(BaseModel):
    element: Element
    level: str
    next_tier: str | None
    rows: list[PlanRow]
    resources: list[Resource]

    @property
    def status(self) -> str:
        done = LEVEL_NAMES[self.level]
        if self.next_tier is None:
            return f"{done} completed: all three tiers are done"
        return f"Completed: {done}. Next: {TIER_NAMES[self.next_tier]}"


class Plan(BaseModel):
    title: str
    made_on: date
    sections: list[PlanSection]

    @property
    def markdown(self) -> str:
        return plan_markdown(self)

    @property
    def html(self) -> str:
        return plan_html(self)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``plan-<date>.md`` and ``plan-<date>.html`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"palliative-care-plan-{self.made_on.isoformat()}"
        md_path, html_path = directory / f"{stem}.md", directory / f"{stem}.html"
        md_path.write_text(self.markdown, encoding="utf-8")
        html_path.write_text(self.html, encoding="utf-8")
        return md_path, html_path


def build_plan(toolkit: Toolkit, state: ProfileState, *, today: date | None = None) -> Plan:
    """For each element: the unticked items of the next tier and any unticked ones below it.

    Args:
        toolkit: the parsed toolkit.
        state: ticked items and overrides, as kept in the browser.
        today: the date printed on the plan (defaults to today).

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
        tiers_due = TIER_KEYS[: last + 1]
        rows = [
            PlanRow(item=item, catch_up=item.tier != target)
            for tier in tiers_due
            for item in element.tier_items(tier)
            if item.id not in checked
        ]
        sections.append(
            PlanSection(
                element=element,
                level=level,
                next_tier=target,
                rows=rows,
                resources=element.resources,
            )
        )
    return Plan(title="Palliative care plan", made_on=today or date.today(), sections=sections)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _resource_line(resource: Resource) -> str:
    publisher = f" ({resource.publisher})" if resource.publisher else ""
    link = f" <{resource.url}>" if resource.url else ""
    return f"- `{resource.id}` {resource.type}: {resource.title}{publisher}.{link}"


def plan_markdown(plan: Plan) -> str:
    """The plan as Markdown: a summary table, then one section per element."""
    lines = [
        f"# {plan.title}",
        "",
        f"Made on {plan.made_on:%d %B %Y} with Plan Guide, from the toolkit *Develop a Plan*.",
        "",
        "| Element | Completed | Next tier | Items to do |",
        "|---|---|---|---|",
    ]
    for section in plan.sections:
        target = TIER_NAMES[section.next_tier] if section.next_tier else "All done"
        lines.append(
            f"| {section.element.number}. {section.element.name} | {LEVEL_NAMES[section.level]} "
            f"| {target} | {len(section.rows)} |"
        )
    for section in plan.sections:
        element = section.element
        lines += ["", f"## {element.number}. {element.name}", "", f"**Goal:** {element.goal}", ""]
        lines += [f"*{section.status}.*", ""]
        if section.rows:
            lines += ["| Action item | Tier | Owner | Due date |", "|---|---|---|---|"]
            for row in section.rows:
                tier = TIER_NAMES[row.item.tier] + (" (catch up)" if row.catch_up else "")
                text = row.item.full_text.replace("\n- ", "; ")
                lines.append(f"| {_cell(text)} `{row.item.id}` | {tier} |  |  |")
        else:
            lines.append("Nothing left to do here: every action item is ticked.")
        if section.resources:
            lines += ["", "**Resources**", ""]
            lines += [_resource_line(resource) for resource in section.resources]
    return "\n".join(lines) + "\n"


_PRINT_CSS = """
body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2933; margin: 2rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #2f6f6a; padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #9aa5b1; padding: .35rem .5rem; vertical-align: top; text-align: left; }
th { background: #e6f0ef; }
td.blank { width: 8rem; }
section td:nth-child(2) { width: 8rem; }
code { font-size: .8rem; color: #52606d; }
.meta, .status { color: #52606d; }
.catch-up { font-style: italic; }
@media print {
  body { margin: 0; }
  h2, h3 { page-break-after: avoid; }
  tr { page-break-inside: avoid; }
  a { color: inherit; }
}
"""


def plan_html(plan: Plan) -> str:
    """The plan as one self-contained, printable HTML page (everything escaped)."""
    esc = html.escape
    summary = "".join(
        f"<tr><td>{section.element.number}. {esc(section.element.name)}</td>"
        f"<td>{esc(LEVEL_NAMES[section.level])}</td>"
        f"<td>{esc(TIER_NAMES[section.next_tier]) if section.next_tier else 'All done'}</td>"
        f"<td>{len(section.rows)}</td></tr>"
        for section in plan.sections
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(plan.title)} · {plan.made_on.isoformat()}</title>",
        f"<style>{_PRINT_CSS}</style></head><body>",
        f"<h1>{esc(plan.title)}</h1>",
        f'<p class="meta">Made on {plan.made_on:%d %B %Y} with Plan Guide, from the toolkit '
        "<em>Develop a Plan</em>.</p>",
        "<table><thead><tr><th>Element</th><th>Completed</th><th>Next tier</th>"
        f"<th>Items to do</th></tr></thead><tbody>{summary}</tbody></table>",
    ]
    for section in plan.sections:
        element = section.element
        parts += [
            "<section>",
            f"<h2>{element.number}. {esc(element.name)}</h2>",
            f"<p><strong>Goal:</strong> {esc(element.goal)}</p>",
            f'<p class="status">{esc(section.status)}.</p>',
        ]
        if section.rows:
            rows = []
            for row in section.rows:
                steps = "".join(f"<li>{esc(step)}</li>" for step in row.item.substeps)
                steps_html = f"<ul>{steps}</ul>" if steps else ""
                tier = esc(TIER_NAMES[row.item.tier])
                tier_html = (
                    f'<span class="catch-up">{tier} (catch up)</span>' if row.catch_up else tier
                )
                rows.append(
                    f"<tr><td>{esc(row.item.text)}{steps_html} <code>{esc(row.item.id)}</code>"
                    f"</td><td>{tier_html}</td>"
                    '<td class="blank"></td><td class="blank"></td></tr>'
                )
            parts.append(
                "<table><thead><tr><th>Action item</th><th>Tier</th><th>Owner</th>"
                f"<th>Due date</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            )
        else:
            parts.append("<p>Nothing left to do here: every action item is ticked.</p>")
        if section.resources:
            items = []
            for res in section.resources:
                publisher = f" ({esc(res.publisher)})" if res.publisher else ""
                title = esc(res.title)
                if res.url and res.url.startswith(("https://", "http://")):
                    title = f'<a href="{esc(res.url)}">{title}</a>'
                items.append(
                    f"<li><code>{esc(res.id)}</code> {esc(res.type)}: {title}{publisher}</li>"
                )
            parts.append(f"<h3>Resources</h3><ul>{''.join(items)}</ul>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def profile_summary(toolkit: Toolkit, state: ProfileState) -> str:
    """A short Markdown table of the profile, shown above the checkboxes."""
    profile = state.profile(toolkit)
    lines = ["| Element | Completed | Next tier |", "|---|---|---|"]
    for element in toolkit.elements:
        level = profile[element.key]
        target = next_tier(level)
        flag = " (set by hand)" if element.key in state.overrides else ""
        lines.append(
            f"| {element.number}. {element.name} | {LEVEL_NAMES[level]}{flag} | "
            f"{TIER_NAMES[target] if target else 'All done'} |"
        )
    return "\n".join(lines)
