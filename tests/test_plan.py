"""The self-assessment profile and the "Build my plan" document, on the real toolkit."""

from __future__ import annotations

import io
import re
import stat
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.plan import (
    Plan,
    ProfileState,
    TierProgress,
    build_plan,
    clean_plan_name,
    completed_level,
    next_tier,
    profile_summary,
    tier_progress,
)
from assistant.toolkit import Toolkit

CHROMIUM = Path("/usr/bin/chromium")
NAME = "Acme <Health> & Co"
TODO_HEADER = ["Action item", "Tier", "Owner", "Due date", "Status", "Priority"]


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


def test_markdown_plan_has_the_meeting_columns_and_resources(toolkit: Toolkit) -> None:
    state = ProfileState(checked=[*ids(toolkit, "equity", "essentials"), "uptake.essentials.1"])
    text = build_plan(toolkit, state, today=date(2025, 3, 4)).markdown
    assert text.startswith("# Palliative care plan\n")
    assert "Made on 04 March 2025" in text
    header = "| Action item | Tier | Owner | Due date | Status | Priority | Ref |"
    assert text.count(header) == len(ELEMENT_KEYS)
    assert "| 5. Equity | The Essentials | Progressing Further | 0 of 3 | 3 |" in text
    equity = text.split("## 5. Equity", 1)[1].split("## 6.", 1)[0]
    assert "*Completed: The Essentials. Next: Progressing Further (0 of 3 done).*" in equity
    assert "|  |  | To do | Medium | `equity.progressing-further.1` |" in equity
    todo = equity.split("**To do**", 1)[1]
    assert "equity.essentials.1" not in todo
    assert "· The Essentials · `equity.essentials.1`" in equity.split("**To do**", 1)[0]
    assert "- `equity.resource.2` Toolkit: Health Equity in Palliative Care Toolkit" in equity
    # the four-part approach keeps its sub-steps, one "• step" line each, in one table row
    uptake = text.split("## 4. Uptake", 1)[1].split("## 5.", 1)[0]
    row = next(line for line in uptake.splitlines() if "`uptake.essentials.3`" in line)
    assert "identify appropriate members:<br>• Utilize claims and administrative data" in row
    assert row.count("<br>• ") == 4
    # the id sits in the last column only, not in the item's text
    assert row.count("uptake.essentials.3") == 1 and row.endswith("| `uptake.essentials.3` |")


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

    name = '</style><script>alert("n")</script> "x" \\'
    page = build_plan(tampered, ProfileState(), name=name).html
    parser = _TagBalance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags
    assert "&lt;script&gt;" in page
    assert page.count("</style>") == 1  # the name, in the print header, cannot close the style
    assert "@media print" in page and "counter(pages)" in page
    header = "<th>Action item</th><th>Tier</th><th>Owner</th><th>Due date</th><th>Status</th>"
    assert page.count(header + "<th>Priority</th>") == len(ELEMENT_KEYS)
    assert '<a href="https://example.org/standards">' in page
    assert "javascript:" not in page


def test_plan_writes_four_private_files(toolkit: Toolkit, tmp_path: Path) -> None:
    plan = build_plan(toolkit, ProfileState(), today=date(2025, 3, 4))
    paths = plan.write(tmp_path / "out")
    stem = "palliative-care-plan-2025-03-04"
    assert [p.name for p in paths] == [f"{stem}.{ext}" for ext in ("md", "html", "docx", "xlsx")]
    assert list(plan.files()) == [p.name for p in paths]
    assert paths[0].read_text("utf-8") == plan.markdown
    assert paths[1].read_text("utf-8") == plan.html
    assert paths[2].read_bytes()[:2] == paths[3].read_bytes()[:2] == b"PK"  # zip containers
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # .docx and .xlsx carry their time of writing: compare the text formats byte for byte
        if path.suffix in (".md", ".html"):
            assert path.read_bytes() == plan.files()[path.name]


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        (NAME, "acme-health-co"),
        ("../../etc/passwd", "etc-passwd"),
        ("Café Ünïon plan", "cafe-union-plan"),
        ("<<>>", "palliative-care-plan"),
        ("", "palliative-care-plan"),
    ],
)
def test_file_names_are_a_safe_slug_of_the_name(name: str, stem: str, toolkit: Toolkit) -> None:
    plan = build_plan(toolkit, ProfileState(), today=date(2025, 3, 4), name=name)
    assert plan.stem == f"{stem}-2025-03-04"
    assert plan.title == (name or "Palliative care plan")


def test_plan_names_are_cleaned() -> None:
    assert clean_plan_name(" Acme\tHealth \n\x00Plan\u202e  2025 ") == "Acme Health Plan 2025"
    assert ProfileState(name="x" * 300).name == "x" * 120
    assert ProfileState(name=" a" * 100).name == ("a " * 60).strip()
    assert ProfileState(name="Maria\u200dJosé").name == "Maria\u200dJosé"  # joiners stay


def test_stored_values_without_or_with_a_bad_name_keep_their_ticks(toolkit: Toolkit) -> None:
    old = ProfileState.from_stored({"checked": ["equity.essentials.1"], "overrides": {}})
    assert old.name == "" and old.checked == ["equity.essentials.1"]
    bad = ProfileState.from_stored({"name": 7, "checked": ["equity.essentials.1"]})
    assert bad.name == "" and bad.checked == ["equity.essentials.1"]
    named = ProfileState.from_stored({"name": " Acme\x07 Health ", "checked": []})
    assert named.name == "Acme Health"
    assert build_plan(toolkit, named).title == "Acme Health"
    assert build_plan(toolkit, named, name="Other").title == "Other"


def test_progress_counts_the_ticks_of_the_tier_being_worked_on(toolkit: Toolkit) -> None:
    equity = toolkit.element("equity")
    assert tier_progress(equity, "none", {"equity.essentials.1"}) == TierProgress(
        tier="essentials", done=1, total=3
    )
    assert tier_progress(equity, "none", {"equity.essentials.1"}).text == (
        "1 of 3 The Essentials items done"
    )
    assert tier_progress(equity, "setting-the-standard", set()).text == "All three tiers done"
    state = ProfileState(
        checked=["payment.setting-the-standard.1", "payment.essentials.1", "equity.essentials.2"],
        overrides={"payment": "progressing-further"},
    )
    progress = state.progress(toolkit)
    assert progress["payment"].text == "1 of 1 Setting the Standard item done"
    assert progress["equity"].text == "1 of 3 The Essentials items done"
    assert progress["quality"].text == "0 of 3 The Essentials items done"
    sections = {s.element.key: s for s in build_plan(toolkit, state).sections}
    assert sections["equity"].status == "Completed: Not started. Next: The Essentials (1 of 3 done)"
    assert sections["payment"].status == (
        "Completed: Progressing Further (set by hand). Next: Setting the Standard (1 of 1 done)"
        "; 3 catch-up items below it"
    )


def test_summary_marks_overrides_and_counts_ticks(toolkit: Toolkit) -> None:
    state = ProfileState(
        checked=["payment.essentials.2", *ids(toolkit, "equity", "essentials")],
        overrides={"uptake": "setting-the-standard"},
    )
    summary = profile_summary(toolkit, state)
    assert summary.startswith("| Element | Completed | Working on | Done |")
    assert "| 4. Uptake | Setting the Standard (set by hand) | All done | – |" in summary
    assert "| 1. Payment | Not started | The Essentials | 1 of 2 |" in summary
    assert "| 5. Equity | The Essentials | Progressing Further | 0 of 3 |" in summary


# --- one profile, four formats ---------------------------------------------------------------

TICKED = [
    "equity.essentials.1",
    "equity.essentials.2",
    "equity.essentials.3",
    "equity.progressing-further.2",
    "uptake.essentials.1",
    "quality.setting-the-standard.1",  # ticked far above the tier being worked on
    "payment.essentials.1",
]


@pytest.fixture(scope="module")
def meeting_plan(toolkit: Toolkit) -> Plan:
    state = ProfileState(name=NAME, checked=TICKED, overrides={"payment": "progressing-further"})
    return build_plan(toolkit, state, today=date(2025, 3, 4))


def todo_ids(plan: Plan) -> list[str]:
    return [row.item.id for section in plan.sections for row in section.rows]


def in_place_ids(plan: Plan) -> list[str]:
    return [item.id for section in plan.sections for item in section.in_place]


def test_the_model_lists_ticked_items_as_in_place_never_as_to_do(
    meeting_plan: Plan, toolkit: Toolkit
) -> None:
    assert set(todo_ids(meeting_plan)).isdisjoint(TICKED)
    assert in_place_ids(meeting_plan) == [i.id for i in toolkit.items if i.id in set(TICKED)]
    sections = {s.element.key: s for s in meeting_plan.sections}
    rows = {row.item.id: row.priority for row in sections["payment"].rows}
    # payment.essentials.1 is ticked; the override leaves the unticked lower items as catch up
    assert rows == {
        "payment.essentials.2": "High",
        "payment.progressing-further.1": "High",
        "payment.progressing-further.2": "High",
        "payment.setting-the-standard.1": "Medium",
    }
    assert [i.id for i in sections["payment"].in_place] == ["payment.essentials.1"]
    assert {row.status for s in meeting_plan.sections for row in s.rows} == {"To do"}
    assert [r.item.id for r in sections["equity"].rows] == [
        "equity.progressing-further.1",
        "equity.progressing-further.3",
    ]


def markdown_refs(markdown: str) -> tuple[list[str], list[str]]:
    """(to-do ids, in-place ids) read from the Markdown, section by section."""
    todo: list[str] = []
    done: list[str] = []
    for section in markdown.split("\n## ")[1:]:
        in_place, rest = section.split("**Already in place**", 1)[1].split("**To do**", 1)
        done += re.findall(r"^- .* `([\w.-]+)`$", in_place, flags=re.MULTILINE)
        table = rest.split("**Resources**", 1)[0]
        todo += re.findall(r"^\|.*\| `([\w.-]+)` \|$", table, flags=re.MULTILINE)
    return todo, done


class _Refs(HTMLParser):
    """The ``small.ref`` texts inside to-do tables and in-place lists."""

    def __init__(self) -> None:
        super().__init__()
        self.where: str | None = None
        self.in_ref = False
        self.todo: list[str] = []
        self.done: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        if tag == "table" and "todo" in classes:
            self.where = "todo"
        elif tag == "ul" and "in-place" in classes:
            self.where = "done"
        self.in_ref = tag == "small" and classes == "ref"

    def handle_endtag(self, tag: str) -> None:
        if (tag, self.where) in (("table", "todo"), ("ul", "done")):
            self.where = None
        self.in_ref = False

    def handle_data(self, data: str) -> None:
        if self.in_ref and self.where == "todo":
            self.todo.append(data)
        elif self.in_ref and self.where == "done":
            self.done.append(data)


def docx_refs(document: Any) -> tuple[list[str], list[str]]:
    todo = [
        row.cells[0].paragraphs[0].runs[-1].text.strip()
        for table in document.tables
        if [c.text for c in table.rows[0].cells] == TODO_HEADER
        for row in table.rows[1:]
    ]
    done: list[str] = []
    heading = ""
    for paragraph in document.paragraphs:
        if paragraph.style.name.startswith("Heading"):
            heading = paragraph.text
        elif heading == "Already in place" and paragraph.style.name == "List Bullet":
            done.append(paragraph.runs[-1].text.strip())
    return todo, done


def test_the_four_formats_agree_item_for_item(meeting_plan: Plan) -> None:
    from docx import Document
    from openpyxl import load_workbook

    expected = (todo_ids(meeting_plan), in_place_ids(meeting_plan))
    assert markdown_refs(meeting_plan.markdown) == expected
    refs = _Refs()
    refs.feed(meeting_plan.html)
    assert (refs.todo, refs.done) == expected
    assert docx_refs(Document(io.BytesIO(meeting_plan.docx_bytes()))) == expected
    book = load_workbook(io.BytesIO(meeting_plan.xlsx_bytes()))
    plan_refs = [row[7] for row in book["Plan"].iter_rows(min_row=2, values_only=True)]
    done_refs = [row[3] for row in book["Already in place"].iter_rows(min_row=2, values_only=True)]
    assert (plan_refs, done_refs) == expected
    # the name, escaped for each format
    assert meeting_plan.markdown.startswith("# Acme \\<Health\\> \\& Co\n")
    assert "<h1>Acme &lt;Health&gt; &amp; Co</h1>" in meeting_plan.html
    assert NAME not in meeting_plan.html
    assert book.properties.title == NAME


def test_word_document_has_headings_tables_and_sub_step_bullets(
    meeting_plan: Plan, toolkit: Toolkit
) -> None:
    from docx import Document
    from docx.shared import Pt

    document = Document(io.BytesIO(meeting_plan.docx_bytes()))
    paragraphs = document.paragraphs
    assert paragraphs[0].style.name == "Title" and paragraphs[0].text == NAME
    assert paragraphs[1].text.startswith("Made on 04 March 2025")
    headings = [p.text for p in paragraphs if p.style.name == "Heading 1"]
    assert headings == [f"{e.number}. {e.name}" for e in toolkit.elements]
    summary = document.tables[0]
    assert [c.text for c in summary.rows[0].cells] == [
        "Element",
        "Completed",
        "Working on",
        "Done",
        "To do",
    ]
    assert [c.text for c in summary.rows[5].cells] == [
        "5. Equity",
        "The Essentials",
        "Progressing Further",
        "1 of 3",
        "2",
    ]
    todo_tables = [t for t in document.tables if [c.text for c in t.rows[0].cells] == TODO_HEADER]
    assert len(todo_tables) == sum(1 for s in meeting_plan.sections if s.rows)
    rows = [row for table in todo_tables for row in table.rows[1:]]
    four_part = next(
        r for r in rows if r.cells[0].paragraphs[0].runs[-1].text.strip() == "uptake.essentials.3"
    )
    bullets = [p for p in four_part.cells[0].paragraphs if p.style.name == "List Bullet 2"]
    assert [p.text for p in bullets] == toolkit.item("uptake.essentials.3").substeps
    first = four_part.cells[0].paragraphs[0]
    assert first.text.startswith("Implement a four-part approach")
    assert first.runs[-1].font.size == Pt(7)  # the id: small, after the text
    assert [c.text for c in four_part.cells[1:]] == ["The Essentials", "", "", "To do", "Medium"]
    footer = document.sections[0].footer.paragraphs[0]._p.xml
    assert 'w:instr=" PAGE "' in footer and 'w:instr=" NUMPAGES "' in footer
    assert document.sections[0].header.paragraphs[0].text == f"{NAME} · 04 March 2025"


def test_spreadsheet_has_one_row_per_to_do_and_drop_down_lists(
    meeting_plan: Plan, toolkit: Toolkit
) -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(meeting_plan.xlsx_bytes()))
    assert book.sheetnames == ["Plan", "Already in place", "Resources"]
    sheet = book["Plan"]
    header = [cell.value for cell in sheet[1]]
    assert header == [
        "Element",
        "Tier",
        "Action item",
        "Owner",
        "Due date",
        "Status",
        "Priority",
        "Ref",
    ]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row - 1 == len(todo_ids(meeting_plan))
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists == {
        "F2:F1000": '"To do,In progress,Done,Blocked"',
        "G2:G1000": '"High,Medium,Low"',
    }
    rows = {row[7]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    four_part = rows["uptake.essentials.3"]
    steps = toolkit.item("uptake.essentials.3").substeps
    assert four_part[2] == toolkit.item("uptake.essentials.3").text + "".join(
        f"\n• {step}" for step in steps
    )
    assert four_part[:2] == ("4. Uptake", "The Essentials")
    assert four_part[3:7] == (None, None, "To do", "Medium")
    assert rows["payment.essentials.2"][6] == "High"
    assert sheet["C2"].alignment.wrap_text and sheet.column_dimensions["C"].width >= 60
    resources = book["Resources"]
    assert resources.max_row - 1 == sum(len(e.resources) for e in toolkit.elements)
    assert resources.freeze_panes == "A2"


@pytest.mark.browser
def test_printed_html_has_the_name_and_page_numbers_on_every_page(
    meeting_plan: Plan, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make browser` (apt-get install chromium).")
    requests: list[str] = []
    pdf = tmp_path / "plan.pdf"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.set_content(meeting_plan.html)
        page.pdf(path=str(pdf))
        browser.close()
    assert requests == []  # self-contained: nothing to fetch
    pages = PdfReader(pdf).pages
    assert len(pages) >= 2
    for number, page_pdf in enumerate(pages, start=1):
        text = page_pdf.extract_text()
        assert f"Page {number} of {len(pages)}" in text
        assert f"{NAME} · 04 March 2025" in text
