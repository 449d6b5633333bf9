"""The app in headless Chromium (Debian's package, driven by Playwright): what a champion does.

The app runs as `python app.py` on a free loopback port over the test index. Chromium cannot be
downloaded here, so Playwright drives /usr/bin/chromium; as root it needs --no-sandbox, and the
other flags keep it off the network. Every page also checks that nothing outside the app loads.

Set PLAN_GUIDE_SCREENSHOTS=docs to refresh the README screenshots (docs/*.png).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from assistant.config import Settings
from tests.app_server import AppServer, running_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 30_000
SCROLL_CHAT_TO_TOP = """
for (const el of document.querySelectorAll('#pg-chat *')) {
  if (el.scrollHeight > el.clientHeight + 4) el.scrollTop = 0;
}
"""
NEXT_ON_EQUITY = "What should we do next on equity?"


@pytest.fixture(scope="module")
def app(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_app(built_settings, tmp_path_factory.mktemp("browser-app")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make browser` (apt-get install chromium).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (empty local storage) per test."""
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(WAIT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, app: AppServer) -> Iterator[Any]:
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((app.url, "data:", "blob:"))
            else None
        ),
    )
    open_app(page, app)
    yield page
    assert outside == [], f"the page reached outside the app: {outside}"


def open_app(page: Any, app: AppServer) -> None:
    page.goto(app.url)
    page.wait_for_selector("#pg-question textarea")


def ask(page: Any, question: str, turn: int) -> Any:
    """Type a question, send it, wait for the finished reply of ``turn`` (0-based)."""
    page.fill("#pg-question textarea", question)
    page.click("#pg-send")
    page.wait_for_selector(f'#pg-chat a[href="#cite-{turn}-1"]')
    return page.locator("#pg-chat .message-row.bot-row, #pg-chat [data-testid='bot']").last


def bot_text(page: Any) -> str:
    return page.locator("#pg-chat [data-testid='bot']").last.inner_text()


def open_section(page: Any, element: str) -> None:
    """Unfold one element of the profile panel (all but the first start folded)."""
    page.click(f"#pg-profile-{element} .label-wrap")
    page.locator(f"#pg-override-{element}").wait_for(state="visible")


def wait_for_summary(page: Any, text: str) -> None:
    """Wait until the profile summary table shows ``text`` (its cells are joined by tabs)."""
    page.wait_for_function(
        "text => document.querySelector('#pg-profile-summary').innerText.includes(text)", arg=text
    )


def tick_equity_essentials(page: Any) -> None:
    page.get_by_role("tab", name="My plan").click()
    open_section(page, "equity")
    boxes = page.locator("#pg-check-equity-essentials input[type=checkbox]")
    boxes.first.wait_for()
    assert boxes.count() == 3
    for n in range(boxes.count()):
        boxes.nth(n).check()
    wait_for_summary(page, "5. Equity\tThe Essentials")


def shot(page: Any, name: str, tmp_path: Path, **options: Any) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), **options)
    assert path.stat().st_size > 10_000
    target = os.environ.get("PLAN_GUIDE_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / name)
    return path


def test_question_gets_a_cited_reply_and_a_citation_opens_its_passage(
    page: Any, tmp_path: Path
) -> None:
    ask(page, NEXT_ON_EQUITY, 0)
    reply = bot_text(page)
    assert "Equity › The Essentials" in reply
    assert "Sources" in reply and "equity.essentials.1" in reply
    follow_ups = page.locator(".pg-suggestion:visible")
    assert 2 <= follow_ups.count() <= 3
    assert "What resources go with this?" in follow_ups.all_inner_texts()

    marker = page.locator("#pg-chat a[href^='#cite-0-']").nth(1)
    label = marker.inner_text()
    marker.click()
    passage = page.locator("#pg-passage")
    passage.get_by_text(label).first.wait_for()
    text = passage.inner_text()
    assert "Equity › The Essentials" in text
    assert "equity.essentials.1" in text
    assert (
        "Prioritize contracting with providers and hiring plan staff who have characteristics"
        in text
    )
    assert page.url.endswith("/")  # the click opened the passage, not a new location
    page.evaluate(SCROLL_CHAT_TO_TOP)
    shot(page, "chat.png", tmp_path)


def test_profile_changes_what_next_and_survives_a_reload(
    page: Any, app: AppServer, tmp_path: Path
) -> None:
    ask(page, NEXT_ON_EQUITY, 0)
    assert "Equity › The Essentials" in bot_text(page)

    tick_equity_essentials(page)
    open_section(page, "uptake")
    page.locator("#pg-override-uptake input").click()
    page.get_by_role("option", name="Completed: Progressing Further").click()
    wait_for_summary(page, "set by hand")
    for folded in ("payment", "uptake"):  # leave Equity's ticks in the picture
        page.click(f"#pg-profile-{folded} .label-wrap")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # let the folding finish before the picture
    shot(page, "profile.png", tmp_path)

    page.get_by_role("tab", name="Chat").click()
    assert "Equity: The Essentials" in page.inner_text("#pg-profile-line")
    # a new conversation: the same question, now read against the profile alone
    page.click("#pg-new-chat")
    page.wait_for_function("!document.querySelector('#pg-chat [data-testid=\"bot\"]')")
    ask(page, NEXT_ON_EQUITY, 0)
    assert "Equity › Progressing Further" in bot_text(page)
    assert "Engage with diverse communities" in bot_text(page)

    page.reload()
    page.wait_for_selector("#pg-question textarea")
    page.wait_for_function(
        "document.querySelector('#pg-profile-line').innerText.includes('Equity: The Essentials')"
    )
    page.get_by_role("tab", name="My plan").click()
    summary = page.inner_text("#pg-profile-summary")
    assert "5. Equity\tThe Essentials" in summary
    assert "4. Uptake\tProgressing Further (set by hand)" in summary
    open_section(page, "equity")
    checked = page.locator("#pg-check-equity-essentials input[type=checkbox]:checked")
    checked.first.wait_for()
    assert checked.count() == 3


def test_a_follow_up_moves_on_from_the_tier_the_chat_showed(page: Any) -> None:
    tick_equity_essentials(page)
    page.get_by_role("tab", name="Chat").click()
    ask(page, "Where do we start on equity?", 0)
    assert "Equity › Progressing Further" in bot_text(page)  # the profile's next tier
    ask(page, "We did all of that. Next?", 1)
    assert "Equity › Setting the Standard" in bot_text(page)


def test_build_my_plan_and_download_it(page: Any, browser: Any, app: AppServer) -> None:
    tick_equity_essentials(page)
    page.fill("#pg-plan-name textarea, #pg-plan-name input", "Acme Health 2027")
    page.locator("#pg-plan-name textarea, #pg-plan-name input").press("Tab")
    page.click("#pg-build-plan")
    preview = page.locator("#pg-plan-preview")
    preview.get_by_text("Acme Health 2027").first.wait_for()
    # the preview opens beside the button, not below the page's fold
    button, shown = page.locator("#pg-build-plan").bounding_box(), preview.bounding_box()
    assert shown["y"] - (button["y"] + button["height"]) < 400
    links = page.locator("#pg-plan-files a[download]")
    links.first.wait_for()
    assert links.count() == 4
    downloaded = {}
    for n in range(4):
        with page.expect_download() as info:
            links.nth(n).click()
        download = info.value
        downloaded[Path(download.suggested_filename).suffix] = Path(download.path()).read_bytes()
    assert set(downloaded) == {".md", ".html", ".docx", ".xlsx"}
    markdown, html = downloaded[".md"].decode(), downloaded[".html"].decode()
    assert markdown.startswith("# Acme Health 2027")
    equity = markdown.split("## 5. Equity", 1)[1].split("## 6.", 1)[0]
    assert "Completed: The Essentials. Next: Progressing Further" in equity
    in_place, todo = equity.split("**Already in place**", 1)[1].split("**To do**", 1)
    assert "equity.essentials.1" in in_place and "equity.essentials.1" not in todo
    assert "| Owner | Due date | Status | Priority |" in todo
    assert "equity.progressing-further.1" in todo and "`equity.resource.2`" in todo
    assert "<th>Owner</th>" in html and "@media print" in html
    # another browser cannot fetch this browser's plan
    url = app.url + links.first.get_attribute("href")
    other = browser.new_context()
    try:
        assert other.request.get(url).status == 404
    finally:
        other.close()


def test_clear_my_profile_asks_first_and_can_be_undone(page: Any) -> None:
    tick_equity_essentials(page)
    page.click("#pg-clear-profile")
    page.click("#pg-clear-no")  # changed her mind: nothing is lost
    checked = page.locator("#pg-check-equity-essentials input:checked")
    assert checked.count() == 3
    page.click("#pg-clear-profile")
    page.click("#pg-clear-yes")
    page.locator("#pg-clear-undo-button").wait_for(state="visible")
    page.wait_for_function(
        "document.querySelectorAll('#pg-check-equity-essentials input:checked').length === 0"
    )
    summary = page.locator("#pg-profile-summary").inner_text()
    assert "5. Equity" in summary and "3 of 3" not in summary
    page.click("#pg-clear-undo-button")
    page.wait_for_function(
        "document.querySelectorAll('#pg-check-equity-essentials input:checked').length === 3"
    )
    page.reload()  # the restored profile is the one the browser keeps
    page.wait_for_selector("#pg-question textarea")
    page.get_by_role("tab", name="My plan").click()
    open_section(page, "equity")
    page.wait_for_function(
        "document.querySelectorAll('#pg-check-equity-essentials input:checked').length === 3"
    )


def test_one_ticked_item_shows_as_progress_not_as_not_started(page: Any) -> None:
    page.get_by_role("tab", name="My plan").click()
    open_section(page, "equity")
    page.locator("#pg-check-equity-essentials label").first.click()
    page.locator("#pg-profile-summary").get_by_text("1 of 3").wait_for()
    label = page.locator("#pg-profile-equity .label-wrap").inner_text()
    assert "1 of 3 The Essentials items done" in label


def test_thumbs_down_with_a_comment_lands_in_the_database(page: Any, app: AppServer) -> None:
    ask(page, "What resources help with equity?", 0)
    page.locator("#pg-chat button[aria-label='Dislike']").last.click()
    page.locator("#pg-feedback-comment textarea").wait_for(state="visible")
    page.fill("#pg-feedback-comment textarea", "Please add the CAPC equity toolkit first.")
    page.click("#pg-feedback-save")
    page.locator("#pg-feedback-note").get_by_text("is saved").wait_for()
    with closing(sqlite3.connect(app.feedback_db)) as conn:
        rows = conn.execute(
            "SELECT rating, comment, question, reply, citations, created_at FROM feedback"
            " WHERE question = ?",
            ("What resources help with equity?",),
        ).fetchall()
    assert len(rows) == 1
    rating, comment, _, reply, citations, created_at = rows[0]
    assert (rating, comment) == ("down", "Please add the CAPC equity toolkit first.")
    assert "[1]" in reply and created_at
    assert {c["id"] for c in json.loads(citations)} >= {"equity.resource.2"}


def test_conversation_exports_as_markdown(page: Any, browser: Any, app: AppServer) -> None:
    ask(page, NEXT_ON_EQUITY, 0)
    ask(page, "What resources go with this?", 1)
    page.click("#pg-export")
    link = page.locator("#pg-export-file a[download]")
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    text = Path(info.value.path()).read_text("utf-8")
    # the link is worth nothing to another browser, or to anyone without the session's cookie
    url = app.url + link.get_attribute("href")
    other = browser.new_context()
    try:
        assert other.request.get(url).status == 404
        assert other.new_page().goto(app.url) and other.request.get(url).status == 404
    finally:
        other.close()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 404
    assert page.context.request.get(url).text() == text
    assert text.startswith("# Plan Guide conversation")
    assert f"## 1. {NEXT_ON_EQUITY}" in text and "## 2. What resources go with this?" in text
    assert "**Citations**" in text and "(`equity.essentials.1`)" in text
    assert "equity.resource." in text


def test_toolkit_grid_and_onboarding_tour(page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Toolkit").click()
    cells = page.locator(".pg-cell")
    assert cells.count() == 21
    page.click("#pg-cell-uptake-essentials")
    detail = page.locator("#pg-cell-detail")
    detail.get_by_text("4. Uptake › The Essentials").wait_for()
    text = detail.inner_text()
    assert "uptake.essentials.3" in text and "Utilize claims and administrative data" in text
    assert "uptake.resource.1" in text
    shot(page, "toolkit-grid.png", tmp_path, full_page=True)

    page.get_by_role("tab", name="Onboarding").click()
    assert "Step 1 of 7: 1. Payment" in page.inner_text("#pg-tour")
    page.click("#pg-tour-next")
    page.locator("#pg-tour").get_by_text("Step 2 of 7: 2. Quality").wait_for()
    assert "quality.essentials.1" in page.inner_text("#pg-tour")
    ask_button = page.locator("#pg-tour-ask-1")
    assert ask_button.inner_text() == "What are the Essentials for quality?"
    ask_button.click()
    page.wait_for_selector('#pg-chat a[href="#cite-0-1"]')
    assert page.locator("#pg-tab-chat").is_visible()
    assert "Quality" in bot_text(page)


def test_html_in_a_question_is_shown_as_text(page: Any) -> None:
    hostile = 'Equity <img src=x onerror="window.pwned=1"> <b>bold</b> resources?'
    page.fill("#pg-question textarea", hostile)
    page.click("#pg-send")
    page.wait_for_selector("#pg-chat [data-testid='bot']")
    page.wait_for_function("!document.querySelector('#pg-chat').innerText.includes('▍')")
    assert page.locator("#pg-chat img[src='x'], #pg-chat b:text('bold')").count() == 0
    assert page.evaluate("window.pwned") is None
    user = page.locator("#pg-chat [data-testid='user']").last.inner_text()
    assert '<img src=x onerror="window.pwned=1">' in user


def test_mark_items_done_from_an_answer_and_my_plan_follows(page: Any) -> None:
    ask(page, NEXT_ON_EQUITY, 0)
    boxes = page.locator("#pg-mark-done input[type=checkbox]")
    boxes.first.wait_for()
    assert boxes.count() == 3
    boxes.first.check()
    page.locator("#pg-profile-line").get_by_text("1 of 3 The Essentials items done").wait_for()
    page.get_by_role("tab", name="My plan").click()
    open_section(page, "equity")
    page.wait_for_function(
        "document.querySelectorAll('#pg-check-equity-essentials input:checked').length === 1"
    )
    page.locator("#pg-profile-summary").get_by_text("1 of 3").wait_for()
    page.get_by_role("tab", name="Chat").click()
    ask(page, "What's next on equity?", 1)
    reply = bot_text(page)
    assert "Already done" in reply and "1 of 3 The Essentials items done" in reply


def test_the_item_asked_about_comes_first_and_the_answer_opens_at_its_start(page: Any) -> None:
    ask(page, "What resources help with equity?", 0)
    ask(page, "How should we pay for initial assessments?", 1)
    last = page.locator("#pg-chat [data-testid='bot']").last
    fold = last.locator("details")
    assert fold.count() == 1 and fold.get_attribute("open") is None
    assert "The rest of The Essentials" in fold.locator("summary").inner_text()
    assert last.get_by_text("Most relevant to your question").is_visible()
    folded = fold.locator("strong", has_text="Adopt a bundled payment model")
    assert not folded.is_visible()
    fold.locator("summary").click()
    folded.wait_for()
    # the chat shows the new answer from its start, not its sources list at the bottom
    ask(page, "What should we do next on quality?", 2)
    page.wait_for_timeout(700)
    top = page.locator("#pg-chat [data-testid='bot']").last.bounding_box()
    chat = page.locator("#pg-chat").bounding_box()
    assert chat["y"] - 2 <= top["y"] <= chat["y"] + 60, (top, chat)


def test_a_glossary_of_the_toolkits_own_definitions(page: Any) -> None:
    page.get_by_role("tab", name="Toolkit").click()
    page.click("#pg-glossary .label-wrap")
    glossary = page.locator("#pg-glossary-text")
    glossary.get_by_text("Bundled payment model").wait_for()
    text = glossary.inner_text()
    assert "payment.rationale.1" in text and "quality.essentials.1" in text
    assert "does not" not in text.lower() or "without defining" in text


def test_a_refusal_offers_clickable_suggestions(page: Any) -> None:
    page.fill("#pg-question textarea", "What's the capital of France?")
    page.click("#pg-send")
    page.locator("#pg-chat [data-testid='bot']").get_by_text("suggestions below").wait_for()
    first = page.locator("#pg-suggestions button:visible").first
    question = first.inner_text()
    first.click()
    page.wait_for_selector('#pg-chat a[href="#cite-1-1"]')
    assert question in page.locator("#pg-chat [data-testid='user']").last.inner_text()
