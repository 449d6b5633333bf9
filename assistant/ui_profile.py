"""The "My plan" tab: self-assessment checkboxes, tier overrides, and "Build my plan".

The profile lives in the browser (``gr.BrowserState``), so it survives a reload and never
reaches a server-side database; every question reads it from there.

    state = profile_browser_state(secret)    # outside the tabs, so it loads with the page
    profile_ui = build_profile_tab(toolkit, state)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr

from assistant.config import TIER_KEYS
from assistant.downloads import NO_BROWSER, Downloads
from assistant.plan import (
    AUTO,
    DEFAULT_TITLE,
    LEVEL_NAMES,
    LEVELS,
    NAME_MAX,
    ProfileState,
    TierProgress,
    build_plan,
    clean_plan_name,
    profile_summary,
)
from assistant.toolkit import TIER_NAMES, Element, Toolkit

PROFILE_STORAGE_KEY = "plan-guide-profile"
_OVERRIDE_CHOICES = [("Work it out from the boxes", AUTO)] + [
    (f"Completed: {LEVEL_NAMES[level]}", level) for level in LEVELS
]


_HEADING = re.compile(r"^(#{1,4}) ", re.MULTILINE)


def preview_markdown(markdown: str) -> str:
    """The plan as shown in the tab: its headings two levels down, under the tab's heading.

    The downloaded plan is a document of its own and keeps its title as a level-1 heading.
    """
    return _HEADING.sub(lambda match: "#" * (len(match.group(1)) + 2) + " ", markdown)


def _item_choices(element: Element, tier: str) -> list[tuple[str, str]]:
    return [(f"{item.text}", item.id) for item in element.tier_items(tier)]


def accordion_label(
    element: Element, level: str, overridden: bool, progress: TierProgress | None = None
) -> str:
    by_hand = ", set by hand" if overridden else ""
    label = f"{element.number}. {element.name}  ·  completed: {LEVEL_NAMES[level]}{by_hand}"
    return f"{label}  ·  {progress.text}" if progress and progress.tier else label


@dataclass
class ProfileUI:
    state: gr.BrowserState
    summary: gr.Markdown
    groups: list[gr.CheckboxGroup]
    overrides: list[gr.Dropdown]
    plan_name: gr.Textbox
    accordions: list[gr.Accordion]

    @property
    def inputs(self) -> list[Any]:
        """The user's answers: checkbox groups (element-major, tier-minor), dropdowns, name."""
        return [*self.groups, *self.overrides, self.plan_name]

    @property
    def restore_targets(self) -> list[Any]:
        """What ``restore_values`` fills: the inputs, the summary, the accordion labels."""
        return [*self.inputs, self.summary, *self.accordions]


def state_from_inputs(toolkit: Toolkit, values: list[Any]) -> ProfileState:
    """Checkbox groups (element-major, tier-minor), one dropdown per element, the plan name."""
    count = len(toolkit.elements) * len(TIER_KEYS)
    elements = len(toolkit.elements)
    groups, dropdowns, rest = (
        values[:count],
        values[count : count + elements],
        values[count + elements :],
    )
    name = rest[0] if rest else ""
    checked = sorted({item_id for group in groups for item_id in (group or [])})
    overrides = {
        element.key: value
        for element, value in zip(toolkit.elements, dropdowns, strict=True)
        if value in LEVELS
    }
    return ProfileState(
        name=clean_plan_name(name) if isinstance(name, str) else "",
        checked=checked,
        overrides=overrides,
    )


def profile_browser_state(storage_secret: str) -> gr.BrowserState:
    """Where the browser keeps the profile.

    Create it outside any tab: a tab's components mount only when it is first opened, and the
    profile must be read at page load, since every question uses it.
    """
    return gr.BrowserState(
        ProfileState().model_dump(), storage_key=PROFILE_STORAGE_KEY, secret=storage_secret
    )


def build_profile_tab(toolkit: Toolkit, state: gr.BrowserState, downloads: Downloads) -> ProfileUI:
    """The self-assessment panel and the plan builder; returns the parts the app wires."""
    groups: list[gr.CheckboxGroup] = []
    overrides: list[gr.Dropdown] = []
    accordions: list[gr.Accordion] = []
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            gr.Markdown(
                "Tick what your health plan already does. A tier counts as completed when all "
                "its action items, and those of the tiers below, are ticked; or set it by hand "
                "with the menu. Answers in the chat take this profile into account. It is kept "
                "in this browser only."
            )
            for n, element in enumerate(toolkit.elements):
                with gr.Accordion(
                    accordion_label(element, "none", False),
                    open=n == 0,
                    elem_id=f"pg-profile-{element.key}",
                    elem_classes="pg-profile-element",
                ) as accordion:
                    gr.Markdown(f"*Goal: {element.goal}*")
                    overrides.append(
                        gr.Dropdown(
                            choices=_OVERRIDE_CHOICES,
                            value=AUTO,
                            label="Tier completed",
                            elem_id=f"pg-override-{element.key}",
                            interactive=True,
                        )
                    )
                    for tier in TIER_KEYS:
                        groups.append(
                            gr.CheckboxGroup(
                                choices=_item_choices(element, tier),
                                value=[],
                                label=TIER_NAMES[tier],
                                elem_id=f"pg-check-{element.key}-{tier}",
                                interactive=True,
                            )
                        )
                accordions.append(accordion)
        with gr.Column(scale=2, min_width=320, elem_id="pg-profile-side"):
            gr.Markdown("### Your profile")
            summary = gr.Markdown(
                profile_summary(toolkit, ProfileState()), elem_id="pg-profile-summary"
            )
            plan_name = gr.Textbox(
                label="Plan name (printed on the plan)",
                placeholder=DEFAULT_TITLE,
                max_length=NAME_MAX,
                elem_id="pg-plan-name",
            )
            gr.Markdown(
                "**Build my plan** lists, for each element, what is already in place and the "
                "action items still to do, with owner, due date, status and priority columns: "
                "ready for a team meeting. Download it as Markdown, HTML to print, Word or a "
                "spreadsheet."
            )
            with gr.Row():
                build = gr.Button("Build my plan", variant="primary", elem_id="pg-build-plan")
                clear = gr.Button("Clear my profile", elem_id="pg-clear-profile")
            with gr.Group(visible=False, elem_id="pg-clear-confirm") as confirm_box:
                gr.Markdown(
                    "Clear every tick, every tier set by hand and the plan name? You can undo "
                    "it right after."
                )
                with gr.Row():
                    confirm = gr.Button("Yes, clear it", variant="stop", elem_id="pg-clear-yes")
                    cancel = gr.Button("Keep my profile", elem_id="pg-clear-no")
            with gr.Group(visible=False, elem_id="pg-clear-undo") as undo_box:
                gr.Markdown("Your profile is cleared.")
                undo = gr.Button("Undo", elem_id="pg-clear-undo-button")
            plan_files = gr.HTML(visible=False, elem_id="pg-plan-files")
            plan_preview = gr.Markdown(
                elem_id="pg-plan-preview", elem_classes="pg-panel", visible=False
            )
    # kept in server memory for this session only, until the next clear or the session's end
    cleared = gr.State(None)

    inputs: list[Any] = [*groups, *overrides, plan_name]

    def save(*values: Any) -> list[Any]:
        new = state_from_inputs(toolkit, list(values))
        return [new.model_dump(), *_display(toolkit, new)]

    def clear_all(stored: Any) -> list[Any]:
        empty = ProfileState()
        return [
            empty.model_dump(),
            *restore_values(toolkit, empty.model_dump()),
            ProfileState.from_stored(stored).model_dump(),
            gr.update(visible=False),
            gr.update(visible=True),
        ]

    def undo_clear(kept: Any) -> list[Any]:
        restored = ProfileState.from_stored(kept)
        return [
            restored.model_dump(),
            *restore_values(toolkit, restored.model_dump()),
            None,
            gr.update(visible=False),
        ]

    def make_plan(stored: Any, name: Any, request: gr.Request) -> list[Any]:
        # the box, not the kept profile: a name typed just before the click is not saved yet
        typed = clean_plan_name(name) if isinstance(name, str) else ""
        plan = build_plan(toolkit, ProfileState.from_stored(stored), name=typed or None)
        preview = gr.update(value=preview_markdown(plan.markdown), visible=True)
        saved = downloads.save_for(request, plan.files())
        if saved is None:
            gr.Warning(NO_BROWSER)
            return [gr.update(visible=False), preview]
        return [
            gr.update(
                value=saved.html("Download your plan (for this browser only):"), visible=True
            ),
            preview,
        ]

    display_outputs: list[Any] = [summary, *accordions]
    restore_outputs: list[Any] = [*inputs, *display_outputs]
    for component in inputs:
        component.input(
            save, inputs, [state, *display_outputs], api_visibility="private", queue=False
        )
    clear.click(
        lambda: [gr.update(visible=True), gr.update(visible=False)],
        None,
        [confirm_box, undo_box],
        api_visibility="private",
        queue=False,
    )
    cancel.click(
        lambda: gr.update(visible=False), None, confirm_box, api_visibility="private", queue=False
    )
    confirm.click(
        clear_all,
        state,
        [state, *restore_outputs, cleared, confirm_box, undo_box],
        api_visibility="private",
        queue=False,
    )
    undo.click(
        undo_clear,
        cleared,
        [state, *restore_outputs, cleared, undo_box],
        api_visibility="private",
        queue=False,
    )
    plan_name.blur(save, inputs, [state, *display_outputs], api_visibility="private", queue=False)
    build.click(make_plan, [state, plan_name], [plan_files, plan_preview], api_visibility="private")
    return ProfileUI(
        state=state,
        summary=summary,
        groups=groups,
        overrides=overrides,
        plan_name=plan_name,
        accordions=accordions,
    )


def restore_values(toolkit: Toolkit, stored: Any) -> list[Any]:
    """Values for ``ProfileUI.restore_targets`` from what the browser kept."""
    current = ProfileState.from_stored(stored)
    checked = current.checked_in(toolkit)
    group_values = [
        [item.id for item in element.tier_items(tier) if item.id in checked]
        for element in toolkit.elements
        for tier in TIER_KEYS
    ]
    dropdown_values = [current.overrides.get(e.key, AUTO) for e in toolkit.elements]
    return [*group_values, *dropdown_values, current.name, *_display(toolkit, current)]


def _display(toolkit: Toolkit, current: ProfileState) -> list[Any]:
    """The summary table and the accordion labels for a profile."""
    profile, progress = current.profile(toolkit), current.progress(toolkit)
    labels = [
        gr.update(
            label=accordion_label(e, profile[e.key], e.key in current.overrides, progress[e.key])
        )
        for e in toolkit.elements
    ]
    return [profile_summary(toolkit, current), *labels]
