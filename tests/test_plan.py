"""The self-assessment profile and the "Build my plan" document, on the real toolkit."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.plan import (
    ProfileState,
    build_plan,
    completed_level,
    next_tier,
    profile_summary,
)
from assistant.toolkit import Toolkit


def ids(toolkit: Toolkit, element: str, *tiers: str) -> list[str]:
    return [item.id for tier in tiers for item in toolkit.element(element).tier_items(tier)]


def test_a_tier_counts_only_with_every_tier_below_it(toolkit: Toolkit) -> None:
    equity = toolkit.element("equity")
    essentials = set(ids(toolkit, "equity", "essentials"))
    further = set(ids(toolkit, "equity", "progressing-further"))
    assert completed_level(equity, set()) == "none"
    assert completed_level(equity, essentials - {"equity.essentials.2"}) == "none"
    assert completed_level(equity, essentials) == "essentials"
    # all of Progressing Further ticked but one Essential missing: still nothing completed
    assert completed_level(equity, further | essentials - {"equity.essentials.1"}) == "none"
    assert completed_level(equity, essentials | further) == "progressing-further"
    everything = set(ids(toolkit, "equity", *TIER_KEYS))
    assert completed_level(equity, everything) == "setting-the-standard"


def test_override_wins_over_the_boxes(toolkit: Toolkit) -> None:
    state = ProfileState(
        checked=ids(toolkit, "equity", "essentials"),
        overrides={"equity": "none", "payment": "progressing-further"},
    )
    profile = state.profile(toolkit)
    assert profile["equity"] == "none"
    assert profile["payment"] == "progressing-further"
    assert set(profile) == set(ELEMENT_KEYS)
    assert {profile[key] for key in ELEMENT_KEYS if key not in ("equity", "payment")} == {"none"}


@pytest.mark.parametrize(
    "stored",
    [None, "junk", 3, [], {"checked": "equity.essentials.1"}, {"overrides": ["x"]}],
)
def test_unreadable_browser_values_give_an_empty_profile(stored: object, toolkit: Toolkit) -> None:
    state = ProfileState.from_stored(stored)
    assert state == ProfileState()
    assert set(state.profile(toolkit).values()) == {"none"}


def test_stored_values_are_cleaned(toolkit: Toolkit) -> None:
    stored = {
        "checked": ["equity.essentials.1", "equity.essentials.1", "gone.essentials.9"],
        "overrides": {"quality": "auto", "uptake": "essentials", "payment": "best"},
    }
    state = ProfileState.from_stored(stored)
    assert state.overrides == {"uptake": "essentials"}
    assert state.checked_in(toolkit) == {"equity.essentials.1"}


def test_next_tier_walks_up_and_stops() -> None:
    assert next_tier("none") == "essentials"
    assert next_tier("essentials") == "progressing-further"
    assert next_tier("progressing-further") == "setting-the-standard"
    assert next_tier("setting-the-standard") is None


def test_empty_profile_plans_the_essentials_everywhere(toolkit: Toolkit) -> None:
    plan = build_plan(toolkit, ProfileState(), today=date(2025, 3, 4))
    assert [s.element.key for s in plan.sections] == list(ELEMENT_KEYS)
    for section in plan.sections:
        assert section.next_tier == "essentials"
        assert [row.item.id for row in section.rows] == ids(
            toolkit, section.element.key, "essentials"
        )
        assert not any(row.catch_up for row in section.rows)
        assert section.resources == section.element.resources


def test_plan_lists_the_unticked_items_of_the_next_tier(toolkit: Toolkit) -> None:
    ticked = ids(toolkit, "equity", "essentials") + ["equity.progressing-further.2"]
    plan = build_plan(toolkit, ProfileState(checked=ticked))
    equity = next(s for s in plan.sections if s.element.key == "equity")
    assert equity.level == "essentials"
    assert equity.next_tier == "progressing-further"
    assert [row.item.id for row in equity.rows] == [
        "equity.progressing-further.1",
        "equity.progressing-further.3",
    ]


def test_override_above_the_boxes_lists_unticked_lower_items_as_catch_up(toolkit: Toolkit) -> None:
    state = ProfileState(
        checked=["payment.essentials.1"], overrides={"payment": "progressing-further"}
    )
    payment = next(s for s in build_plan(toolkit, state).sections if s.element.key == "payment")
    assert payment.next_tier == "setting-the-standard"
    rows = {row.item.id: row.catch_up for row in payment.rows}
    assert rows == {
        "payment.essentials.2": True,
        "payment.progressing-further.1": True,
        "payment.progressing-further.2": True,
        "payment.setting-the-standard.1": False,
    }


def test_everything_ticked_leaves_nothing_to_do(toolkit: Toolkit) -> None:
    state = ProfileState(checked=[item.id for item in toolkit.items])
    plan = build_plan(toolkit, state)
    assert all(s.next_tier is None and s.rows == [] for s in plan.sections)
    assert plan.markdown.count("Nothing left to do here") == len(ELEMENT_KEYS)


def test_markdown_plan_has_owner_and_due_columns_and_resources(toolkit: Toolkit) -> None:
    state = ProfileState(checked=ids(toolkit, "equity", "essentials"))
    text = build_plan(toolkit, state, today=date(2025, 3, 4)).markdown
    assert text.startswith("# Palliative care plan\n")
    assert "Made on 04 March 2025" in text
    assert text.count("| Action item | Tier | Owner | Due date |") == len(ELEMENT_KEYS)
    assert "| 5. Equity | The Essentials | Progressing Further | 3 |" in text
    equity = text.split("## 5. Equity", 1)[1].split("## 6.", 1)[0]
    assert "`equity.progressing-further.1` | Progressing Further |  |  |" in equity
    assert "equity.essentials.1" not in equity
    assert "- `equity.resource.2` Toolkit: Health Equity in Palliative Care Toolkit" in equity
    # the four-part approach keeps its sub-steps, in one table row
    uptake = text.split("## 4. Uptake", 1)[1].split("## 5.", 1)[0]
    row = next(line for line in uptake.splitlines() if "uptake.essentials.3" in line)
    assert "Utilize claims and administrative data" in row


class _TagBalance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_printable_html_is_balanced_escaped_and_printable(toolkit: Toolkit) -> None:
    item = toolkit.element("quality").items[0]
    tampered_item = item.model_copy(update={"text": item.text + ' <script>alert("x")</script>'})
    quality = toolkit.element("quality")
    linked = quality.resources[0].model_copy(update={"url": "https://example.org/standards"})
    hostile = quality.resources[1].model_copy(update={"url": "javascript:alert(1)"})
    tampered_quality = quality.model_copy(
        update={
            "items": [tampered_item, *quality.items[1:]],
            "resources": [linked, hostile, *quality.resources[2:]],
        }
    )
    elements = [tampered_quality if e.key == "quality" else e for e in toolkit.elements]
    tampered = toolkit.model_copy(update={"elements": elements})

    page = build_plan(tampered, ProfileState()).html
    parser = _TagBalance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags
    assert "&lt;script&gt;" in page
    assert "@media print" in page
    assert page.count("<th>Owner</th><th>Due date</th>") == len(ELEMENT_KEYS)
    assert '<a href="https://example.org/standards">' in page
    assert "javascript:" not in page


def test_plan_writes_both_files(toolkit: Toolkit, tmp_path: Path) -> None:
    plan = build_plan(toolkit, ProfileState(), today=date(2025, 3, 4))
    md_path, html_path = plan.write(tmp_path / "out")
    assert md_path.name == "palliative-care-plan-2025-03-04.md"
    assert html_path.name == "palliative-care-plan-2025-03-04.html"
    assert md_path.read_text("utf-8") == plan.markdown
    assert html_path.read_text("utf-8") == plan.html


def test_summary_marks_overrides(toolkit: Toolkit) -> None:
    summary = profile_summary(toolkit, ProfileState(overrides={"uptake": "setting-the-standard"}))
    assert "| 4. Uptake | Setting the Standard (set by hand) | All done |" in summary
    assert "| 1. Payment | Not started | The Essentials |" in summary


def test_download_folders_are_private_to_the_user() -> None:
    import stat

    from assistant.ui_profile import download_dir

    folder = download_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
