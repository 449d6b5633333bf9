"""The "My plan" tab: self-assessment checkboxes, tier overrides, and "Build my plan".

The profile lives in the browser (``gr.BrowserState``), so it survives a reload and never
reaches a server-side database; every question reads it from there.

    state = profile_browser_state(secret)    # outside the tabs, so it loads with the page
    profile_ui = build_profile_tab(toolkit, state)
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.config import TIER_KEYS
from assistant.plan import AUTO, LEVEL_NAMES, LEVELS, ProfileState, build_plan, profile_summary
from assistant.toolkit import TIER_NAMES, Element, Toolkit

PROFILE_STORAGE_KEY = "plan-guide-profile"
_DOWNLOAD_TTL_SECONDS = 600.0
_OVERRIDE_CHOICES = [("Work it out from the boxes", AUTO)] + [
    (f"Completed: {LEVEL_NAMES[level]}", level) for level in LEVELS
]


def download_dir(ttl_seconds: float = _DOWNLOAD_TTL_SECONDS) -> Path:
    """A fresh folder for one download, readable by this process's user only; folders older
    than ``ttl_seconds`` are removed on the way."""
    root = Path(tempfile.gettempdir()) / "plan-guide-downloads"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)  # also when an older version made it open to all
    cutoff = time.time() - ttl_seconds
    for old in root.iterdir():
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    folder = root / uuid.uuid4().hex
    folder.mkdir(mode=0o700)
    return folder


def keep_private(*paths: Path) -> None:
    """Files of one user's download: readable and writable by this process's user only."""
    for path in paths:
        path.chmod(0o600)


_HEADING = re.compile(r"^(#{1,4}) ", re.MULTILINE)


def preview_markdown(markdown: str) -> str:
    """The plan as shown in the tab: its headings two levels down, under the tab's heading.

    The downloaded plan is a document of its own and keeps its title as a level-1 heading.
    """
    return _HEADING.sub(lambda match: "#" * (len(match.group(1)) + 2) + " ", markdown)


def _item_choices(element: Element, tier: str) -> list[tuple[str, str]]:
    return [(f"{item.text}", item.id) for item in element.tier_items(tier)]


def accordion_label(element: Element, level: str, overridden: bool) -> str:
    by_hand = ", set by hand" if overridden else ""
    return f"{element.number}. {element.name}  ·  completed: {LEVEL_NAMES[level]}{by_hand}"


@dataclass
class ProfileUI:
    state: gr.BrowserState
    summary: gr.Markdown
    groups: list[gr.CheckboxGroup]
    overrides: list[gr.Dropdown]
    accordions: list[gr.Accordion]

    @property
    def inputs(self) -> list[Any]:
        """The user's answers: checkbox groups (element-major, tier-minor), then dropdowns."""
        return [*self.groups, *self.overrides]

    @property
    def restore_targets(self) -> list[Any]:
        """What ``restore_values`` fills: checkboxes, dropdowns, summary, accordion labels."""
        return [*self.groups, *self.overrides, self.summary, *self.accordions]


def state_from_inputs(toolkit: Toolkit, values: list[Any]) -> ProfileState:
    """Checkbox groups (element-major, tier-minor) then one dropdown per element."""
    count = len(toolkit.elements) * len(TIER_KEYS)
    groups, dropdowns = values[:count], values[count:]
    checked = sorted({item_id for group in groups for item_id in (group or [])})
    overrides = {
        element.key: value
        for element, value in zip(toolkit.elements, dropdowns, strict=True)
        if value in LEVELS
    }
    return ProfileState(checked=checked, overrides=overrides)


def profile_browser_state(storage_secret: str) -> gr.BrowserState:
    """Where the browser keeps the profile.

    Create it outside any tab: a tab's components mount only when it is first opened, and the
    profile must be read at page load, since every question uses it.
    """
    return gr.BrowserState(
        ProfileState().model_dump(), storage_key=PROFILE_STORAGE_KEY, secret=storage_secret
    )


def build_profile_tab(
    toolkit: Toolkit, state: gr.BrowserState, *, download_ttl: float = _DOWNLOAD_TTL_SECONDS
) -> ProfileUI:
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
            gr.Markdown(
                "**Build my plan** lists, for each element, the action items still to do in "
                "the next tier, with the resources and empty owner and due-date columns: "
                "ready for a team meeting."
            )
            with gr.Row():
                build = gr.Button("Build my plan", variant="primary", elem_id="pg-build-plan")
                clear = gr.Button("Clear my profile", elem_id="pg-clear-profile")
            plan_files = gr.File(
                label="Download your plan (Markdown, and HTML to print)",
                file_count="multiple",
                interactive=False,
                visible=False,
                elem_id="pg-plan-files",
            )
    plan_preview = gr.Markdown(elem_id="pg-plan-preview", elem_classes="pg-panel", visible=False)

    inputs: list[Any] = [*groups, *overrides]

    def save(*values: Any) -> list[Any]:
        new = state_from_inputs(toolkit, list(values))
        return [new.model_dump(), *_display(toolkit, new)]

    def clear_all() -> list[Any]:
        empty = ProfileState()
        return [empty.model_dump(), *restore_values(toolkit, empty.model_dump())]

    def make_plan(stored: Any) -> list[Any]:
        plan = build_plan(toolkit, ProfileState.from_stored(stored))
        md_path, html_path = plan.write(download_dir(download_ttl))
        keep_private(md_path, html_path)
        return [
            gr.update(value=[str(md_path), str(html_path)], visible=True),
            gr.update(value=preview_markdown(plan.markdown), visible=True),
        ]

    display_outputs: list[Any] = [summary, *accordions]
    for component in inputs:
        component.input(
            save, inputs, [state, *display_outputs], api_visibility="private", queue=False
        )
    clear.click(
        clear_all, None, [state, *inputs, *display_outputs], api_visibility="private", queue=False
    )
    build.click(make_plan, state, [plan_files, plan_preview], api_visibility="private")
    return ProfileUI(
        state=state, summary=summary, groups=groups, overrides=overrides, accordions=accordions
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
    return [*group_values, *dropdown_values, *_display(toolkit, current)]


def _display(toolkit: Toolkit, current: ProfileState) -> list[Any]:
    """The summary table and the accordion labels for a profile."""
    profile = current.profile(toolkit)
    labels = [
        gr.update(label=accordion_label(e, profile[e.key], e.key in current.overrides))
        for e in toolkit.elements
    ]
    return [profile_summary(toolkit, current), *labels]
