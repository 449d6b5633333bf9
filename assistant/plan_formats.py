"""Render a ``Plan`` as Markdown, HTML, Word and Excel: one model, four formats.

Every renderer reads the same ``PlanSection.in_place`` and ``PlanSection.rows``, so the formats
agree item for item; each escapes for its own format. Item ids stay out of the item text: a last
"Ref" column (Markdown, spreadsheet) or a small grey trailing reference (HTML, Word).

    plan_markdown(plan)  # sub-steps as "• step" lines in the table cell, joined by <br>
    plan_docx(plan)      # bytes of a .docx; plan_xlsx(plan) likewise
"""

from __future__ import annotations

import html
import io
import re
from typing import TYPE_CHECKING, Any

from assistant.toolkit import TIER_NAMES, ActionItem, Resource

if TYPE_CHECKING:
    from assistant.plan import Plan, PlanRow

TODO_COLUMNS = ("Action item", "Tier", "Owner", "Due date", "Status", "Priority")
SUMMARY_COLUMNS = ("Element", "Completed", "Working on", "Done", "To do")
PRIORITY_NOTE = (
    "Priority: High for a catch-up item (a tier below the one being worked on, still unticked), "
    "Medium for an item of the tier being worked on. Owner and due date are for the team to fill in."
)
NOTHING_IN_PLACE = "Nothing ticked yet."
NOTHING_TO_DO = "Nothing left to do here: every action item is ticked."

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~])")
# Characters XML 1.0 (so .docx and .xlsx) cannot hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def md_text(text: str) -> str:
    """Text shown as itself in Markdown, also in a table cell: one line, specials escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _web_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None: nothing else becomes a link."""
    if url and url.startswith(("https://", "http://")) and not re.search(r"[\s<>\"']", url):
        return url
    return None


def _made_on(plan: Plan) -> str:
    return f"Made on {plan.made_on:%d %B %Y} with Plan Guide, from the toolkit Develop a Plan."


def _summary_cells(plan: Plan) -> list[list[str]]:
    return [
        [
            f"{s.element.number}. {s.element.name}",
            s.level_name,
            s.working_on,
            s.progress.fraction or "–",
            str(len(s.rows)),
        ]
        for s in plan.sections
    ]


def _nothing_to_do(tier: str | None) -> str:
    if tier is None:
        return NOTHING_TO_DO
    return f"Nothing left to do here: every {TIER_NAMES[tier]} action item is ticked."


# --- Markdown -------------------------------------------------------------------------------


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_resource(resource: Resource) -> str:
    publisher = f" ({md_text(resource.publisher)})" if resource.publisher else ""
    url = _web_url(resource.url)
    link = f" <{url}>" if url else ""
    return (
        f"- `{resource.id}` {md_text(resource.type)}: {md_text(resource.title)}{publisher}.{link}"
    )


def _md_item_cell(row: PlanRow) -> str:
    steps = "".join(f"<br>• {md_text(step)}" for step in row.item.substeps)
    return md_text(row.item.text) + steps


def plan_markdown(plan: Plan) -> str:
    """The plan as Markdown: a summary table, then per element what is in place and a to-do
    table whose sub-steps are "• step" lines joined by ``<br>`` (GitHub, Gradio and most
    viewers render them as lines)."""
    made_on = _made_on(plan).replace("Develop a Plan", "*Develop a Plan*")
    lines = [f"# {md_text(plan.title)}", "", made_on, ""]
    lines += [_md_row(list(SUMMARY_COLUMNS)), _md_row(["---"] * len(SUMMARY_COLUMNS))]
    lines += [_md_row([md_text(cell) for cell in cells]) for cells in _summary_cells(plan)]
    lines += ["", f"*{md_text(PRIORITY_NOTE)}*"]
    for section in plan.sections:
        element = section.element
        lines += ["", f"## {element.number}. {md_text(element.name)}", ""]
        lines += [f"**Goal:** {md_text(element.goal)}", "", f"*{md_text(section.status)}.*", ""]
        lines += ["**Already in place**", ""]
        lines += [
            f"- {md_text(item.text)} · {TIER_NAMES[item.tier]} · `{item.id}`"
            for item in section.in_place
        ] or [NOTHING_IN_PLACE]
        lines += ["", "**To do**", ""]
        if section.rows:
            columns = [*TODO_COLUMNS, "Ref"]
            lines += [_md_row(columns), _md_row(["---"] * len(columns))]
            lines += [
                _md_row(
                    [
                        _md_item_cell(row),
                        row.tier_label,
                        md_text(row.owner),
                        md_text(row.due),
                        md_text(row.status),
                        row.priority,
                        f"`{row.item.id}`",
                    ]
                )
                for row in section.rows
            ]
        else:
            lines.append(_nothing_to_do(section.next_tier))
        if section.resources:
            lines += ["", "**Resources**", ""]
            lines += [_md_resource(resource) for resource in section.resources]
    return "\n".join(lines) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_PRINT_CSS = """
body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2933; margin: 2rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #2f6f6a; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #9aa5b1; padding: .35rem .5rem; vertical-align: top; text-align: left; }
th { background: #e6f0ef; }
table.todo { table-layout: fixed; }
table.todo th:nth-child(2) { width: 15%; }
table.todo th:nth-child(3) { width: 10%; }
table.todo th:nth-child(4) { width: 9%; }
table.todo th:nth-child(5), table.todo th:nth-child(6) { width: 8%; }
td ul { margin: .3rem 0 0; padding-left: 1.2rem; }
.ref { color: #7b8794; font-size: .7rem; }
td .ref { display: block; margin-top: .2rem; }
.meta, .status, .note, .tier { color: #52606d; }
.note { font-size: .85rem; }
.catch-up { font-style: italic; }
.high { font-weight: 600; }
@media print {
  body { margin: 0; font-size: 10pt; }
  table { font-size: 9pt; }
  h2, h3 { break-after: avoid; }
  tr, li { break-inside: avoid; }
  a { color: inherit; }
}
"""


def _css_string(text: str) -> str:
    """A CSS string literal that can end neither itself nor the <style> element."""
    escaped = "".join(c if c.isalnum() or c in " .,-" else f"\\{ord(c):x} " for c in text)
    return f'"{escaped}"'


def _page_css(plan: Plan) -> str:
    """Paged media: the plan's name and date atop each page, "Page N of M" at the foot."""
    header = _css_string(f"{plan.title} · {plan.made_on:%d %B %Y}")
    box = "font-family: Helvetica, Arial, sans-serif; font-size: 8pt; color: #52606d;"
    return (
        "@page { margin: 18mm 15mm 16mm;\n"
        f"  @top-left {{ content: {header}; {box} }}\n"
        f'  @bottom-right {{ content: "Page " counter(page) " of " counter(pages); {box} }}\n}}'
    )


def _html_row(row: PlanRow) -> str:
    esc = html.escape
    steps = "".join(f"<li>{esc(step)}</li>" for step in row.item.substeps)
    tier = esc(row.tier_label)
    cells = [
        f"{esc(row.item.text)}{f'<ul>{steps}</ul>' if steps else ''}"
        f'<small class="ref">{esc(row.item.id)}</small>',
        f'<span class="catch-up">{tier}</span>' if row.catch_up else tier,
        esc(row.owner),
        esc(row.due),
        esc(row.status),
        esc(row.priority),
    ]
    classes = ["", "", "", "", "", ' class="high"' if row.priority == "High" else ""]
    return (
        "<tr>" + "".join(f"<td{c}>{v}</td>" for c, v in zip(classes, cells, strict=True)) + "</tr>"
    )


def _html_in_place(item: ActionItem) -> str:
    esc = html.escape
    return (
        f'<li>{esc(item.text)} <span class="tier">· {esc(TIER_NAMES[item.tier])}</span> '
        f'<small class="ref">{esc(item.id)}</small></li>'
    )


def _html_resource(res: Resource) -> str:
    esc = html.escape
    publisher = f" ({esc(res.publisher)})" if res.publisher else ""
    title = esc(res.title)
    url = _web_url(res.url)
    if url:
        title = f'<a href="{esc(url)}">{title}</a>'
    return f'<li>{esc(res.type)}: {title}{publisher} <small class="ref">{esc(res.id)}</small></li>'


def _html_table(columns: tuple[str, ...], body: str, css_class: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    attr = f' class="{css_class}"' if css_class else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plan_html(plan: Plan) -> str:
    """The plan as one self-contained, printable HTML page (everything escaped, only http(s)
    links); printed from Chromium each page carries the name, the date and "Page N of M"."""
    esc = html.escape
    summary = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in cells) + "</tr>"
        for cells in _summary_cells(plan)
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(plan.title)} · {plan.made_on.isoformat()}</title>",
        f"<style>{_PRINT_CSS}{_page_css(plan)}</style></head><body>",
        f"<h1>{esc(plan.title)}</h1>",
        f'<p class="meta">{esc(_made_on(plan))}</p>',
        _html_table(SUMMARY_COLUMNS, summary),
        f'<p class="note">{esc(PRIORITY_NOTE)}</p>',
    ]
    for section in plan.sections:
        element = section.element
        parts += [
            "<section>",
            f"<h2>{element.number}. {esc(element.name)}</h2>",
            f"<p><strong>Goal:</strong> {esc(element.goal)}</p>",
            f'<p class="status">{esc(section.status)}.</p>',
            "<h3>Already in place</h3>",
        ]
        if section.in_place:
            items = "".join(_html_in_place(item) for item in section.in_place)
            parts.append(f'<ul class="in-place">{items}</ul>')
        else:
            parts.append(f"<p>{NOTHING_IN_PLACE}</p>")
        parts.append("<h3>To do</h3>")
        if section.rows:
            body = "".join(_html_row(row) for row in section.rows)
            parts.append(_html_table(TODO_COLUMNS, body, "todo"))
        else:
            parts.append(f"<p>{esc(_nothing_to_do(section.next_tier))}</p>")
        if section.resources:
            items = "".join(_html_resource(res) for res in section.resources)
            parts.append(f"<h3>Resources</h3><ul>{items}</ul>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- Word -----------------------------------------------------------------------------------

_GREY = (0x7B, 0x87, 0x94)
_DOCX_WIDTHS = (2.9, 1.2, 0.9, 0.8, 0.65, 0.65)  # inches, for a 7.1-inch text width


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _docx_ref(paragraph: Any, ref: str) -> None:
    """A small grey trailing reference (the item or resource id)."""
    from docx.shared import Pt, RGBColor

    run = paragraph.add_run(f"  {ref}")
    run.font.size = Pt(7)
    run.font.color.rgb = RGBColor(*_GREY)


def _docx_field(paragraph: Any, instruction: str) -> None:
    """A Word field (PAGE, NUMPAGES) that the reader fills in."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), f" {instruction} ")
    run, text = OxmlElement("w:r"), OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)


def _docx_table(doc: Any, columns: tuple[str, ...], widths: tuple[float, ...] | None) -> Any:
    """A grid table with a bold header row that repeats on every page."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Inches

    table = doc.add_table(rows=1, cols=len(columns))
    table.style = "Table Grid"
    for cell, column in zip(table.rows[0].cells, columns, strict=True):
        cell.paragraphs[0].add_run(column).bold = True
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    table.rows[0]._tr.get_or_add_trPr().append(repeat)
    if widths:
        table.autofit = False
        for cell, width in zip(table.rows[0].cells, widths, strict=True):
            cell.width = Inches(width)
    return table


def _docx_add_row(table: Any, widths: tuple[float, ...] | None) -> list[Any]:
    from docx.shared import Inches

    cells = table.add_row().cells
    if widths:
        for cell, width in zip(cells, widths, strict=True):
            cell.width = Inches(width)
    return list(cells)


def plan_docx(plan: Plan) -> bytes:
    """The plan as a Word document: title, made-on line, summary table, then per element the
    goal, status, what is in place, a six-column to-do table (sub-steps as "List Bullet 2"
    items) and resources. Each page's header has the name and date, its footer "Page N of M"."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Inches, Pt, RGBColor

    doc = Document()
    doc.core_properties.title = _xml(plan.title)
    doc.core_properties.author = "Plan Guide"
    page = doc.sections[0]
    page.left_margin = page.right_margin = Inches(0.7)
    header = page.header.paragraphs[0]
    header_run = header.add_run(_xml(f"{plan.title} · {plan.made_on:%d %B %Y}"))
    header_run.font.size = Pt(8)
    header_run.font.color.rgb = RGBColor(*_GREY)
    footer = page.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    footer.add_run("Page ")
    _docx_field(footer, "PAGE")
    footer.add_run(" of ")
    _docx_field(footer, "NUMPAGES")

    doc.add_heading(_xml(plan.title), level=0)
    doc.add_paragraph(_made_on(plan))
    summary = _docx_table(doc, SUMMARY_COLUMNS, None)
    for values in _summary_cells(plan):
        for cell, value in zip(summary.add_row().cells, values, strict=True):
            cell.text = _xml(value)
    doc.add_paragraph().add_run(PRIORITY_NOTE).italic = True

    for section in plan.sections:
        element = section.element
        doc.add_heading(_xml(f"{element.number}. {element.name}"), level=1)
        goal = doc.add_paragraph()
        goal.add_run("Goal: ").bold = True
        goal.add_run(_xml(element.goal))
        doc.add_paragraph().add_run(_xml(section.status) + ".").italic = True

        doc.add_heading("Already in place", level=2)
        for item in section.in_place:
            bullet = doc.add_paragraph(style="List Bullet")
            bullet.add_run(_xml(f"{item.text} · {TIER_NAMES[item.tier]}"))
            _docx_ref(bullet, item.id)
        if not section.in_place:
            doc.add_paragraph(NOTHING_IN_PLACE)

        doc.add_heading("To do", level=2)
        if section.rows:
            table = _docx_table(doc, TODO_COLUMNS, _DOCX_WIDTHS)
            for row in section.rows:
                cells = _docx_add_row(table, _DOCX_WIDTHS)
                first = cells[0].paragraphs[0]
                first.add_run(_xml(row.item.text))
                _docx_ref(first, row.item.id)
                for step in row.item.substeps:
                    cells[0].add_paragraph(_xml(step), style="List Bullet 2")
                columns = (row.tier_label, row.owner, row.due, row.status, row.priority)
                for cell, value in zip(cells[1:], columns, strict=True):
                    cell.text = _xml(value)
                if row.priority == "High":
                    cells[5].paragraphs[0].runs[0].bold = True
        else:
            doc.add_paragraph(_nothing_to_do(section.next_tier))

        if section.resources:
            doc.add_heading("Resources", level=2)
            for res in section.resources:
                bullet = doc.add_paragraph(style="List Bullet")
                publisher = f" ({res.publisher})" if res.publisher else ""
                url = _web_url(res.url)
                bullet.add_run(
                    _xml(f"{res.type}: {res.title}{publisher}" + (f" {url}" if url else ""))
                )
                _docx_ref(bullet, res.id)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


# --- Excel ----------------------------------------------------------------------------------

PLAN_SHEET_COLUMNS = (
    ("Element", 22),
    ("Tier", 20),
    ("Action item", 70),
    ("Owner", 18),
    ("Due date", 13),
    ("Status", 13),
    ("Priority", 10),
    ("Ref", 30),
)
_VALIDATED_ROWS = 1000  # the lists also cover rows the team adds below the plan's own


def _fill_sheet(ws: Any, columns: tuple[tuple[str, int], ...], rows: list[list[Any]]) -> None:
    """Header row bold, shaded and frozen; cells wrapped, top-aligned, never read as formulas."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wrap = Alignment(wrap_text=True, vertical="top")
    for col, (title, width) in enumerate(columns, start=1):
        cell = ws.cell(row=1, column=col, value=title)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="E6F0EF")
        cell.alignment = wrap
        ws.column_dimensions[get_column_letter(col)].width = width
    for r, values in enumerate(rows, start=2):
        for col, value in enumerate(values, start=1):
            cell = ws.cell(
                row=r, column=col, value=_xml(value) if isinstance(value, str) else value
            )
            if isinstance(value, str):
                cell.data_type = "s"  # "=..." in a title stays text, not a formula
            cell.alignment = wrap
    ws.freeze_panes = "A2"
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def _list_validation(ws: Any, column: str, options: tuple[str, ...], last_row: int) -> None:
    from openpyxl.worksheet.datavalidation import DataValidation

    check = DataValidation(
        type="list", formula1='"' + ",".join(options) + '"', allow_blank=True, showDropDown=False
    )
    check.error = f"Choose one of: {', '.join(options)}."
    check.showErrorMessage = True
    ws.add_data_validation(check)
    check.add(f"{column}2:{column}{last_row}")


def plan_xlsx(plan: Plan) -> bytes:
    """The plan as a workbook: "Plan" (one row per to-do item, with drop-down lists for Status
    and Priority), "Already in place" and "Resources"."""
    from openpyxl import Workbook

    from assistant.plan import PRIORITIES, STATUSES

    book = Workbook()
    book.properties.title = _xml(plan.title)
    book.properties.creator = "Plan Guide"
    todo = book.active
    todo.title = "Plan"
    rows: list[list[Any]] = []
    for section in plan.sections:
        element = f"{section.element.number}. {section.element.name}"
        for row in section.rows:
            text = row.item.text + "".join(f"\n• {step}" for step in row.item.substeps)
            tier = TIER_NAMES[row.item.tier]
            owner, due = row.owner or None, row.due or None
            rows.append([element, tier, text, owner, due, row.status, row.priority, row.item.id])
    _fill_sheet(todo, PLAN_SHEET_COLUMNS, rows)
    last_row = max(_VALIDATED_ROWS, len(rows) + 1)
    _list_validation(todo, "F", STATUSES, last_row)
    _list_validation(todo, "G", PRIORITIES, last_row)
    for r in range(2, len(rows) + 2):
        todo.cell(row=r, column=5).number_format = "yyyy-mm-dd"
    todo.oddHeader.left.text = _xml(f"{plan.title} · {plan.made_on:%d %B %Y}").replace("&", "&&")
    todo.oddFooter.right.text = "Page &P of &N"

    in_place = book.create_sheet("Already in place")
    done_rows: list[list[Any]] = [
        [f"{s.element.number}. {s.element.name}", TIER_NAMES[item.tier], item.text, item.id]
        for s in plan.sections
        for item in s.in_place
    ]
    _fill_sheet(
        in_place, (("Element", 22), ("Tier", 20), ("Action item", 80), ("Ref", 30)), done_rows
    )

    resources = book.create_sheet("Resources")
    resource_rows: list[list[Any]] = [
        [
            f"{s.element.number}. {s.element.name}",
            res.type,
            res.title,
            res.publisher or "",
            res.description,
            _web_url(res.url) or "",
            res.id,
        ]
        for s in plan.sections
        for res in s.resources
    ]
    resource_columns = (
        ("Element", 22),
        ("Type", 14),
        ("Title", 50),
        ("Publisher", 28),
        ("Description", 60),
        ("Link", 30),
        ("Ref", 24),
    )
    _fill_sheet(resources, resource_columns, resource_rows)
    for r, values in enumerate(resource_rows, start=2):
        if values[5]:
            resources.cell(row=r, column=6).hyperlink = values[5]
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
