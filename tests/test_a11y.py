"""WCAG 2.1 AA in headless Chromium: axe-core on every tab, and the checks axe cannot make.

axe-core (bundled by axe-playwright-python: nothing is downloaded) runs inside the page on each
tab, before a question is asked, after an answer is shown and after a citation is opened, in
light and in dark mode. No violation of impact "critical" or "serious" may remain, nor one of
the rules a user audit found broken (heading order, scroll panels out of keyboard reach).
Moderate and minor findings are printed: see them with ``pytest -rP``. The contrast of control
borders (WCAG 1.4.11) is outside axe's rules, so it is measured here from the computed styles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests import test_browser as browser_tests
from tests.app_server import AppServer
from tests.test_browser import WAIT_MS, ask, open_app

pytestmark = pytest.mark.browser

# The browser tests' fixtures: the running app and one Chromium for this module, and a fresh
# page (empty browser storage) for each test.
app, browser = browser_tests.app, browser_tests.browser
context, page = browser_tests.context, browser_tests.page

AXE = Axe()
BLOCKING_IMPACTS = ("critical", "serious")
# moderate in axe, but the audit found them and they stay fixed
AUDITED_RULES = ("heading-order", "scrollable-region-focusable")
SHOWN_TARGETS = 3
QUESTION = "We've got the basics covered on equity. What should we do next?"
TABS = {
    "Chat": "#pg-tab-chat",
    "My plan": "#pg-tab-plan",
    "Toolkit": "#pg-tab-toolkit",
    "Onboarding": "#pg-tab-onboarding",
}
TIERS = ("The Essentials", "Progressing Further", "Setting the Standard")
NON_TEXT_CONTRAST = 3.0  # WCAG 1.4.11: borders that identify a control

# The colour of a control's edge and of what surrounds it (its nearest opaque ancestor).
EDGE_COLOURS = """
(control) => {
  let around = control.parentElement;
  while (around && getComputedStyle(around).backgroundColor.match(/rgba\\(.*, 0\\)$/)) {
    around = around.parentElement;
  }
  return [getComputedStyle(control).borderTopColor, getComputedStyle(around).backgroundColor];
}
"""


def settle(page: Any) -> None:
    """Wait for transitions (a button changing colour) to end: axe reads colours as shown."""
    page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")


def scan(page: Any, where: str) -> list[str]:
    """Run axe on the page as shown; the violations that fail the test, one line each."""
    settle(page)
    failing = []
    for violation in AXE.run(page).response["violations"]:
        nodes = violation["nodes"]
        targets = [" ".join(map(str, node["target"])) for node in nodes[:SHOWN_TARGETS]]
        more = f" (+{len(nodes) - SHOWN_TARGETS} more)" if len(nodes) > SHOWN_TARGETS else ""
        line = (
            f"{where}: {violation['id']} ({violation['impact']}, {len(nodes)} nodes): "
            f"{' | '.join(targets)}{more}"
        )
        print(line)
        if violation["impact"] in BLOCKING_IMPACTS or violation["id"] in AUDITED_RULES:
            failing.append(line)
    return failing


def assert_clean(found: list[str]) -> None:
    assert not found, "axe found violations:\n" + "\n".join(found)


def show_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.locator(TABS[name]).wait_for(state="visible")


def build_plan(page: Any) -> Any:
    page.click("#pg-build-plan")
    preview = page.locator("#pg-plan-preview")
    preview.get_by_text("Palliative care plan").first.wait_for()
    return preview


def scan_every_tab(page: Any, stage: str) -> list[str]:
    """Each tab as first shown; then the plan with a box ticked and built, and a grid cell open."""
    found = []
    for name in TABS:
        show_tab(page, name)
        found += scan(page, f"{name} ({stage})")
        if name == "My plan":
            page.locator("#pg-check-payment-essentials input[type=checkbox]").first.check()
            build_plan(page)
            found += scan(page, f"My plan, a box ticked, plan built ({stage})")
        if name == "Toolkit":
            page.click("#pg-cell-payment-essentials")
            page.locator("#pg-cell-detail").get_by_text("1. Payment › The Essentials").wait_for()
            found += scan(page, f"Toolkit, a cell open ({stage})")
    show_tab(page, "Chat")
    return found


def open_first_citation(page: Any) -> Any:
    marker = page.locator("#pg-chat a[href='#cite-0-1']").first
    label = marker.inner_text()
    marker.click()
    passage = page.locator("#pg-passage")
    passage.get_by_text(label).first.wait_for(timeout=WAIT_MS)
    return passage


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS ``rgb(...)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def dark_page(browser: Any, app: AppServer) -> Iterator[Any]:
    """The app for a reader whose system asks for dark mode."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, color_scheme="dark")
    ctx.set_default_timeout(WAIT_MS)
    page = ctx.new_page()
    open_app(page, app)
    yield page
    ctx.close()


def test_every_tab_before_asking(page: Any) -> None:
    assert_clean(scan_every_tab(page, "before asking"))


def test_every_tab_after_an_answer(page: Any) -> None:
    ask(page, QUESTION, 0)
    assert_clean(scan_every_tab(page, "after an answer"))


def test_an_opened_citation_is_announced(page: Any) -> None:
    ask(page, QUESTION, 0)
    passage = open_first_citation(page)
    assert passage.get_attribute("aria-live") == "polite"
    assert passage.get_attribute("role") == "region"
    assert passage.get_attribute("aria-label") == "Cited passage"
    assert_clean(scan(page, "Chat, a citation open"))


def test_every_tab_in_dark_mode(dark_page: Any) -> None:
    assert dark_page.evaluate("document.body.classList.contains('dark')")
    found = scan_every_tab(dark_page, "dark, before asking")
    ask(dark_page, QUESTION, 0)
    open_first_citation(dark_page)
    found += scan(dark_page, "Chat, a citation open (dark)")
    assert_clean(found)


def test_grid_cells_name_their_element_and_tier(page: Any) -> None:
    show_tab(page, "Toolkit")
    cell = page.get_by_role("button", name="Payment, The Essentials: 2 action items", exact=True)
    assert cell.inner_text() == "2 action items"  # the grid's columns and rows say the rest
    assert cell.get_attribute("id") == "pg-cell-payment-essentials"
    cells = page.locator("button.pg-cell")
    assert cells.count() == 21
    names = []
    for n in range(cells.count()):
        name = cells.nth(n).get_attribute("aria-label") or ""
        element, _, rest = name.partition(", ")
        tier, _, count = rest.partition(": ")
        assert element and not element[0].isdigit() and tier in TIERS, name
        assert count == cells.nth(n).inner_text(), name  # the visible text is part of the name
        names.append(name)
    assert len(set(names)) == 21


def test_the_plan_preview_scrolls_from_the_keyboard(page: Any) -> None:
    show_tab(page, "My plan")
    preview = build_plan(page)
    assert preview.get_attribute("tabindex") == "0"
    assert preview.get_attribute("role") == "region"
    assert preview.get_attribute("aria-label") == "Plan preview"
    page.focus("#pg-build-plan")
    for _ in range(20):  # from the button, Tab reaches the preview after the plan's files
        page.keyboard.press("Tab")
        if preview.evaluate("e => e === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the plan preview")
    page.keyboard.press("PageDown")
    page.wait_for_function("document.getElementById('pg-plan-preview').scrollTop > 0")


def test_control_borders_stand_out(page: Any, dark_page: Any) -> None:
    """Unticked boxes, the question box and the tier menus: edges of 3:1 or more."""
    shown = []
    for mode, each in (("light", page), ("dark", dark_page)):
        show_tab(each, "My plan")
        each.locator("#pg-override-payment input").wait_for()
        controls = {
            "unticked box": "#pg-check-payment-essentials input[type=checkbox]:not(:checked)",
            "tier menu": "#pg-override-payment .wrap:has(input)",
            "question box": "#pg-question textarea",
        }
        for what, selector in controls.items():
            if what == "question box":
                show_tab(each, "Chat")
            settle(each)
            edge, around = each.locator(selector).first.evaluate(EDGE_COLOURS)
            ratio = contrast(edge, around)
            shown.append(f"{what} ({mode}): {edge} on {around}, {ratio:.2f}:1")
            assert ratio >= NON_TEXT_CONTRAST, shown[-1]
    print("\n".join(shown))
