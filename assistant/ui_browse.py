"""The "Toolkit" grid and the "Onboarding" tour: reading the toolkit without asking anything.

Both are built inside an open ``gr.Blocks``; the tour's "ask about this" buttons are returned so
the chat can wire them.

    with gr.Tab("Toolkit"):
        build_toolkit_tab(toolkit)
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from assistant.config import TIER_KEYS
from assistant.glossary import Glossary
from assistant.passages import toolkit_passages
from assistant.toolkit import TIER_NAMES, Element, Resource, Toolkit
from assistant.ui_render import escape_html, item_text_markdown, plain_text_markdown

GRID_HINT = "Select a cell of the grid to see its action items and the element's resources."


def _resource_line(resource: Resource) -> str:
    publisher = f" ({escape_html(resource.publisher)})" if resource.publisher else ""
    title = escape_html(resource.title)
    if resource.url and resource.url.startswith(("https://", "http://")):
        title = f"[{title}]({resource.url})"
    return f"- `{resource.id}` {escape_html(resource.type)}: {title}{publisher}"


def cell_markdown(toolkit: Toolkit, element_key: str, tier: str) -> str:
    """One cell of the grid: the tier's action items, then the element's resources, with ids."""
    element = toolkit.element(element_key)
    description = toolkit.tier(tier).description
    lines = [
        f"### {element.number}. {element.name} › {TIER_NAMES[tier]}",
        "",
        f"*{escape_html(description)}*",
        "",
        f"**Goal:** {escape_html(element.goal)}",
        "",
        "#### Action items",
        "",
    ]
    current = None
    for item in element.tier_items(tier):
        if item.subgoal and item.subgoal != current:
            current = item.subgoal
            lines += ["", f"*{item.subgoal.letter}. {escape_html(item.subgoal.heading)}*", ""]
        lines.append(f"- `{item.id}` {item_text_markdown(item)}")
        lines += [f"    - {escape_html(step)}" for step in item.substeps]
    lines += ["", f"#### Resources for {element.name}", ""]
    lines += [_resource_line(resource) for resource in element.resources] or ["- none listed"]
    return "\n".join(lines)


def build_toolkit_tab(toolkit: Toolkit) -> gr.Markdown:
    """The 7 × 3 grid of elements and tiers; a selected cell fills the detail panel below.

    On a phone the grid has no room for columns: each element becomes a card and each cell
    shows its tier's name beside it (``pg-cell-tier``, hidden on wider screens).
    """
    gr.Markdown(
        "Seven elements, each with three tiers: **The Essentials** for plans starting out, "
        "**Progressing Further** once the basics are covered, **Setting the Standard** for "
        "leaders. " + GRID_HINT
    )
    with gr.Column(elem_id="pg-grid"):
        with gr.Row(equal_height=True, elem_classes="pg-grid-row pg-grid-head"):
            gr.Markdown("**Element**", elem_classes="pg-grid-label")
            for tier in TIER_KEYS:
                gr.Markdown(f"**{TIER_NAMES[tier]}**", elem_classes="pg-grid-label")
        cells: list[tuple[gr.Button, str, str]] = []
        for element in toolkit.elements:
            with gr.Row(equal_height=True, elem_classes="pg-grid-row"):
                gr.Markdown(f"**{element.number}. {element.name}**", elem_classes="pg-grid-label")
                for tier in TIER_KEYS:
                    gr.Markdown(TIER_NAMES[tier], elem_classes="pg-cell-tier")
                    count = len(element.tier_items(tier))
                    button = gr.Button(
                        f"{count} action item{'s' if count != 1 else ''}",
                        elem_id=f"pg-cell-{element.key}-{tier}",
                        elem_classes="pg-cell",
                        size="sm",
                        variant="secondary",
                    )
                    cells.append((button, element.key, tier))
    detail = gr.Markdown(GRID_HINT, elem_id="pg-cell-detail", elem_classes="pg-panel")
    buttons = [button for button, _, _ in cells]

    def select(chosen: int) -> list[object]:
        _, element_key, tier = cells[chosen]
        marks = [
            gr.update(variant="primary" if n == chosen else "secondary") for n in range(len(cells))
        ]
        return [cell_markdown(toolkit, element_key, tier), *marks]

    for n, button in enumerate(buttons):
        button.click(
            lambda n=n: select(n),
            inputs=None,
            outputs=[detail, *buttons],
            api_visibility="private",
            queue=False,
        )
    with gr.Accordion("Glossary: the terms the toolkit defines", open=False, elem_id="pg-glossary"):
        gr.Markdown(glossary_markdown(toolkit), elem_id="pg-glossary-text")
    return detail


def glossary_markdown(toolkit: Toolkit) -> str:
    """The toolkit's own definitions, A to Z, each quoted with the id of its passage."""
    glossary = Glossary.from_toolkit(toolkit, toolkit_passages(toolkit))
    lines = [
        "Terms the toolkit itself defines, in its own words, each with the passage it comes "
        "from. The toolkit uses other terms, such as *palliative care* and *hospice*, without "
        "defining them: ask the chat where they come up.",
        "",
    ]
    for entry in sorted(glossary.entries, key=lambda e: e.term.lower()):
        lines.append(
            f"- **{plain_text_markdown(entry.term)}**: “{plain_text_markdown(entry.definition)}” "
            f"`{entry.passage_id}`"
        )
    return "\n".join(lines)


def tour_questions(element: Element) -> list[str]:
    """The "ask about this" questions of one tour step."""
    name = element.name.lower()
    return [
        f"Why does {name} matter for a health plan?",
        f"What are the Essentials for {name}?",
        f"What resources help with {name}?",
    ]


def tour_markdown(toolkit: Toolkit, step: int) -> str:
    """Step ``step`` (0-based) of the tour: goal, why it matters, The Essentials."""
    element = toolkit.elements[step]
    lines = [
        f"### Step {step + 1} of {len(toolkit.elements)}: {element.number}. {element.name}",
        "",
        f"**Goal.** {escape_html(element.goal)}",
        "",
        "#### Why it matters",
        "",
    ]
    lines += [escape_html(paragraph) + "\n" for paragraph in element.rationale]
    lines += ["#### The Essentials: where every plan starts", ""]
    for item in element.tier_items("essentials"):
        lines.append(f"- {item_text_markdown(item)} `{item.id}`")
        lines += [f"    - {escape_html(step_text)}" for step_text in item.substeps]
    return "\n".join(lines)


@dataclass
class Tour:
    """The tour's components the chat needs: its ask buttons send their label as a question."""

    ask_buttons: list[gr.Button]
    step: gr.State


def build_onboarding_tab(toolkit: Toolkit) -> Tour:
    """A guided tour through the seven elements, one at a time."""
    total = len(toolkit.elements)
    gr.Markdown(
        "New to the toolkit? It has **seven elements** a health plan works on, and for each, "
        "**three tiers** of action items. This tour shows each element's goal, why it matters "
        "and The Essentials. Use the buttons to ask the chat about any step."
    )
    step = gr.State(0)
    body = gr.Markdown(tour_markdown(toolkit, 0), elem_id="pg-tour", elem_classes="pg-panel")
    first = tour_questions(toolkit.elements[0])
    gr.Markdown("**Ask about this step**")
    with gr.Row():
        ask_buttons = [
            gr.Button(question, size="sm", elem_classes="pg-ask", elem_id=f"pg-tour-ask-{n}")
            for n, question in enumerate(first)
        ]
    with gr.Row(elem_id="pg-tour-nav"):
        previous = gr.Button("← Previous", interactive=False, elem_id="pg-tour-prev")
        position = gr.Markdown(f"Step 1 of {total}", elem_classes="pg-tour-position")
        following = gr.Button("Next →", variant="primary", elem_id="pg-tour-next")

    def go(current: int, delta: int) -> list[object]:
        new = max(0, min(total - 1, current + delta))
        questions = tour_questions(toolkit.elements[new])
        return [
            new,
            tour_markdown(toolkit, new),
            f"Step {new + 1} of {total}",
            gr.update(interactive=new > 0),
            gr.update(interactive=new < total - 1),
            *[gr.update(value=question) for question in questions],
        ]

    outputs = [step, body, position, previous, following, *ask_buttons]
    previous.click(lambda s: go(s, -1), step, outputs, api_visibility="private", queue=False)
    following.click(lambda s: go(s, 1), step, outputs, api_visibility="private", queue=False)
    return Tour(ask_buttons=ask_buttons, step=step)
