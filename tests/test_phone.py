"""The app on a phone: 390 × 844 pixels, touch, in headless Chromium (see test_browser.py).

What a champion does on her phone: reach every tab with one tap, ask without scrolling, read
the toolkit grid as cards that name their tiers, tap a citation and read the whole passage. No
page scrolls sideways, and axe finds nothing critical or serious on any tab.

Set PLAN_GUIDE_SCREENSHOTS=docs to refresh the phone screenshots (docs/phone-*.png) too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests import test_browser as browser_tests
from tests.test_a11y import TABS, TIERS, assert_clean, scan, scan_every_tab
from tests.test_browser import NEXT_ON_EQUITY, SCROLL_CHAT_TO_TOP, WAIT_MS, ask, bot_text, shot

pytestmark = [pytest.mark.browser, pytest.mark.server]

# The browser tests' running app and Chromium, and their page (which fails a test when the page
# reaches outside the app), opened in the phone context below.
app, browser, page = browser_tests.app, browser_tests.browser, browser_tests.page

WIDTH, HEIGHT = 390, 844
SCROLL_MS = 5_000  # a smooth scroll ends well within this
# The box of an element in the viewport (CSS pixels), as [top, bottom, left, right].
BOX = """
(element) => {
  const box = element.getBoundingClientRect();
  return [box.top, box.bottom, box.left, box.right];
}
"""
# Controls shown on the page that reach past the screen's sides (clipped or scrolled away).
CUT_OFF_CONTROLS = """
() => [...document.querySelectorAll("button, a[href], input, textarea, select, [role=tab]")]
  .filter((control) => control.checkVisibility({ visibilityProperty: true }))
  .filter((control) => !control.closest('[aria-hidden="true"], .pg-sr-only'))
  .filter((control) => {
    const box = control.getBoundingClientRect();
    return box.width > 0 && (box.left < -1 || box.right > window.innerWidth + 1);
  })
  .map((control) => `${control.id || control.tagName}: ${control.textContent.trim().slice(0, 30)}`)
"""
IN_VIEW = """
(selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}
"""


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh phone: its size, touch, and a mobile viewport."""
    ctx = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True
    )
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


def settle_layout(page: Any) -> None:
    """Let Gradio finish laying out (its tab bar measures itself a frame after mounting)."""
    for _ in range(3):
        page.evaluate("new Promise(done => requestAnimationFrame(() => done()))")


def box(locator: Any) -> tuple[float, float, float, float]:
    """Top, bottom, left and right of ``locator`` in the viewport."""
    top, bottom, left, right = locator.evaluate(BOX)
    return top, bottom, left, right


def wait_until_in_view(page: Any, selector: str) -> None:
    """Wait for a scroll to bring ``selector`` into view; the assertion after it says where."""
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(IN_VIEW, arg=selector, timeout=SCROLL_MS)


def assert_in_view(locator: Any, what: str) -> None:
    top, bottom, left, right = box(locator)
    assert bottom > top, f"{what} is not shown"
    assert top >= 0 and bottom <= HEIGHT, f"{what} is at {top:.0f}-{bottom:.0f} px, not in view"
    assert left >= 0 and right <= WIDTH, f"{what} is at {left:.0f}-{right:.0f} px across"


def assert_no_sideways_scroll(page: Any, where: str) -> None:
    """The page is no wider than the screen, and no control is cut off at its sides."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{where}: the page is {width} px wide on a {WIDTH} px screen"
    cut = page.evaluate(CUT_OFF_CONTROLS)
    assert cut == [], f"{where}: controls reach past the screen's sides: {cut}"


def show_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).tap()
    page.locator(TABS[name]).wait_for(state="visible")


def test_every_tab_is_one_tap_away(page: Any) -> None:
    settle_layout(page)
    tabs = page.get_by_role("tab")
    assert tabs.all_inner_texts() == list(TABS)
    assert not page.get_by_role("button", name="More tabs").is_visible()
    for n, name in enumerate(TABS):
        assert_in_view(tabs.nth(n), f"the {name} tab")
        show_tab(page, name)
        assert tabs.nth(n).get_attribute("aria-selected") == "true"
        assert_no_sideways_scroll(page, name)


def test_the_question_box_and_a_suggestion_show_without_scrolling(page: Any) -> None:
    settle_layout(page)
    assert page.evaluate("window.scrollY") == 0
    assert_in_view(page.locator("#pg-question textarea"), "the question box")
    assert_in_view(page.locator("#pg-send"), "the Ask button")
    assert_in_view(page.locator("#pg-suggest-0"), "the first suggestion")
    assert_no_sideways_scroll(page, "Chat")


def test_toolkit_cards_name_each_cell_tier(page: Any, tmp_path: Path) -> None:
    show_tab(page, "Toolkit")
    cells = page.locator("button.pg-cell")
    cells.first.wait_for()
    assert cells.count() == 21
    row = page.locator(".pg-grid-row", has=page.locator("#pg-cell-payment-essentials"))
    text = row.inner_text()
    for tier in TIERS:
        assert tier in text, f"the Payment card does not say {tier!r}: {text!r}"
    for tier, cell in zip(TIERS, row.locator("button.pg-cell").all(), strict=True):
        label = row.get_by_text(tier, exact=True).filter(visible=True).first
        top, bottom, _, _ = box(label)
        cell_top, cell_bottom, _, _ = box(cell)
        beside = cell_top <= (top + bottom) / 2 <= cell_bottom
        above = 0 <= cell_top - bottom <= 12
        where = (
            f"{tier!r} at {top:.0f}-{bottom:.0f} px, its cell at {cell_top:.0f}-{cell_bottom:.0f}"
        )
        assert beside or above, where
    # the cell's name, read out by screen readers, is the same as on a wide screen
    cell = page.get_by_role("button", name="Payment, The Essentials: 2 action items", exact=True)
    assert cell.inner_text() == "2 action items"
    assert_no_sideways_scroll(page, "Toolkit")

    # a tapped cell's detail opens below the cards: it is brought into view
    page.locator("#pg-cell-uptake-essentials").tap()
    detail = page.locator("#pg-cell-detail")
    detail.get_by_text("4. Uptake › The Essentials").wait_for()
    wait_until_in_view(page, "#pg-cell-detail h3")
    assert_in_view(detail.locator("h3").first, "the heading of the tapped cell's detail")
    assert_no_sideways_scroll(page, "Toolkit, a cell open")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "phone-toolkit.png", tmp_path, full_page=True)


@pytest.mark.parametrize("marker", [1, 2])
def test_a_tapped_citation_shows_its_whole_passage(page: Any, marker: int, tmp_path: Path) -> None:
    ask(page, NEXT_ON_EQUITY, 0)
    # the chat and the question box under it fit on one screen
    chat_top, _, _, _ = box(page.locator("#pg-chat"))
    _, question_bottom, _, _ = box(page.locator("#pg-question textarea"))
    assert question_bottom - chat_top <= HEIGHT
    # the reply's source list names what [n] cites: "[2] Equity › The Essentials · <id>"
    source = re.search(rf"\[{marker}\][^\n]*·\s*(\S+)", bot_text(page))
    assert source, bot_text(page)
    cited_id = source.group(1)

    link = page.locator(f'#pg-chat a[href="#cite-0-{marker}"]').first
    link.tap()
    passage = page.locator("#pg-passage")
    passage.get_by_text(cited_id).first.wait_for()
    wait_until_in_view(page, "#pg-passage")
    assert_in_view(passage, f"the passage of [{marker}]")
    assert f"[{marker}]" in passage.inner_text()
    assert passage.get_attribute("tabindex") == "0"  # it scrolls: the keyboard reaches it
    assert_no_sideways_scroll(page, f"Chat, [{marker}] open")
    if marker == 1:
        page.evaluate(SCROLL_CHAT_TO_TOP)
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "phone-chat.png", tmp_path, full_page=True)


def test_axe_on_every_tab_of_a_phone(page: Any) -> None:
    found = scan_every_tab(page, "phone, before asking")
    ask(page, NEXT_ON_EQUITY, 0)
    page.locator('#pg-chat a[href="#cite-0-1"]').first.tap()
    page.locator("#pg-passage").get_by_text("[1]").first.wait_for()
    found += scan(page, "Chat, a citation open (phone)")
    assert_clean(found)
