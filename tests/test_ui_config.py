"""The app's privacy and serving settings, and its chat logic, checked on the built Blocks.

Questions can carry member health information by accident, so each of these is asserted: no
share links, analytics off, run history off, no chat history kept by Gradio (in the browser or
anywhere else), no flagging, HTML in replies escaped, and the question length enforced on the
server. The chat handlers run here in-process against the real assistant.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from assistant.config import Settings
from assistant.errors import AssistantError, IndexMissing, InvalidInput, public_message
from assistant.schema import Citation, Reply
from assistant.ui import (
    build_ui,
    launch_options,
    open_assistant,
    parse_auth,
    queue_options,
    storage_secret,
)
from assistant.ui_chat import (
    STARTER_QUESTIONS,
    AssistantHolder,
    Conversation,
    answer_concurrency,
)
from assistant.ui_profile import PROFILE_STORAGE_KEY
from assistant.ui_render import (
    Turn,
    conversation_markdown,
    find_citation,
    plain_text_markdown,
    reply_markdown,
)
from tests.app_server import REPO


@pytest.fixture(scope="module")
def settings(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("ui-data")
    return built_settings.model_copy(
        update={"data_dir": data, "feedback_db": data / "feedback.sqlite3"}
    )


@pytest.fixture(scope="module")
def demo(settings: Settings, bot: Any) -> Iterator[gr.Blocks]:
    blocks = build_ui(settings, bot)
    blocks.queue(**queue_options(settings))
    yield blocks


def blocks_of(demo: gr.Blocks, kind: type) -> list[Any]:
    return [block for block in demo.blocks.values() if isinstance(block, kind)]


def handler(demo: gr.Blocks, name: str) -> Any:
    """The event named ``name``; events wired from several triggers share one function."""
    deps = [dep for dep in demo.fns.values() if dep.name == name]
    assert deps and len({id(dep.fn) for dep in deps}) == 1, name
    return deps[0]


def run_respond(
    demo: gr.Blocks, question: str, convo: Conversation, stored: Any = None
) -> list[Any]:
    """Run the chat's submit handler to its last update; returns that update."""
    respond = handler(demo, "respond").fn
    last: list[Any] = []
    for last in respond(question, convo, stored):  # noqa: B007 - the last yield is the result
        pass
    return list(last)


# -- nothing leaves the machine, nothing is recorded ---------------------------------------------


def test_launch_binds_loopback_without_share_links_history_or_monitoring(
    settings: Settings,
) -> None:
    options = launch_options(Settings())
    assert options["server_name"] == "127.0.0.1"
    assert options["share"] is False
    assert options["run_history"] is False  # Gradio's browser-side run history
    assert options["footer_links"] == []  # no API / settings / runs links for non-engineers
    assert options["enable_monitoring"] is False
    assert options["mcp_server"] is False
    assert options["ssr_mode"] is False
    assert options["auth"] is None
    custom = launch_options(settings.model_copy(update={"host": "0.0.0.0", "port": 9123}))
    assert (custom["server_name"], custom["server_port"]) == ("0.0.0.0", 9123)


def test_analytics_off(demo: gr.Blocks) -> None:
    assert demo.analytics_enabled is False


def test_chatbot_sanitizes_html_and_offers_no_share_or_flag(demo: gr.Blocks) -> None:
    [chatbot] = blocks_of(demo, gr.Chatbot)
    assert chatbot.sanitize_html is True
    assert chatbot.allow_tags is False
    assert "share" not in chatbot.buttons and "copy_all" not in chatbot.buttons
    # any option besides Like / Dislike would add Gradio's flag menu
    assert tuple(chatbot.feedback_options) == ("Like", "Dislike")


def test_no_flagging_interfaces_and_chat_history_not_kept_by_gradio(demo: gr.Blocks) -> None:
    assert not blocks_of(demo, gr.Interface) and not blocks_of(demo, gr.ChatInterface)
    assert "flag" not in str(demo.config).lower()
    # the one value kept in the browser is the plan profile, never the chat
    [browser_state] = blocks_of(demo, gr.BrowserState)
    assert browser_state.storage_key == PROFILE_STORAGE_KEY
    assert set(browser_state.default_value) == {"name", "checked", "overrides"}
    # the turns live in a server-side session State, dropped with the session
    respond = handler(demo, "respond")
    stateful = [block for block in respond.inputs if isinstance(block, gr.State)]
    assert stateful and all(not isinstance(b, gr.BrowserState) for b in stateful)


def test_only_the_ask_endpoint_is_public(demo: gr.Blocks) -> None:
    public = sorted(fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public")
    assert public == ["ask"]


def test_queue_is_bounded_and_answers_share_one_concurrency_limit(
    demo: gr.Blocks, settings: Settings
) -> None:
    limit = answer_concurrency(settings)
    assert demo._queue.default_concurrency_limit == limit
    assert demo._queue.max_size == settings.queue_size
    for name in ("respond", "ask"):
        fn = handler(demo, name)
        assert fn.concurrency_limit == limit
        assert fn.concurrency_id == "assistant"


def test_concurrency_is_sized_to_the_machine_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSISTANT_CONCURRENCY", raising=False)
    cpus = os.cpu_count() or 2
    assert answer_concurrency(Settings(_env_file=None)) == max(2, min(8, cpus))  # type: ignore[call-arg]
    assert answer_concurrency(Settings(_env_file=None, concurrency=5)) == 5  # type: ignore[call-arg]


def test_auth_accepts_several_users_and_explains_mistakes() -> None:
    assert parse_auth(None) is None and parse_auth(" ") is None
    assert parse_auth("ann:pw1, bob:p:w2") == [("ann", "pw1"), ("bob", "p:w2")]
    for bad in ("ann", "ann:", ":pw", "ann:pw,bob"):
        with pytest.raises(InvalidInput, match="user:password"):
            parse_auth(bad)
    check = launch_options(Settings(auth="ann:pw1"))["auth"]
    assert check("ann", "pw1") and not check("ann", "pw2") and not check("bob", "pw1")
    assert launch_options(Settings())["auth"] is None
    with pytest.raises(InvalidInput) as info:
        parse_auth("ann:pw1,:top-secret")
    assert "entry 2" in str(info.value) and "top-secret" not in str(info.value)


def test_app_py_reports_bad_settings_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_AUTH"] = "ann-without-password"
    run = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip().endswith(
        "error: ASSISTANT_AUTH entry 1 is not user:password. Write it as "
        "ASSISTANT_AUTH=user:password, with commas between several users."
    )
    assert "Traceback" not in run.stderr


def test_profile_key_survives_restarts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = storage_secret(settings)
    assert len(first) >= 16 and storage_secret(settings) == first


# -- the question length is enforced on the server ----------------------------------------------


def test_question_length_is_enforced_on_the_server(demo: gr.Blocks, settings: Settings) -> None:
    [question_box] = [b for b in blocks_of(demo, gr.Textbox) if b.elem_id == "pg-question"]
    assert question_box.max_length == settings.max_question_chars  # the browser's own limit
    convo = Conversation()
    too_long = "What next on equity? " * (settings.max_question_chars // 10)
    history = run_respond(demo, too_long, convo)[0]
    assert "the limit is" in history[-1]["content"]
    assert convo.turns[-1].reply is None  # never reached the assistant
    with pytest.raises(gr.Error, match="the limit is"):
        handler(demo, "ask").fn(too_long, {})


# -- the chat, in-process against the real assistant ------------------------------------------


def test_reply_shows_the_question_then_the_whole_reply_with_markers_sources_and_follow_ups(
    demo: gr.Blocks,
) -> None:
    respond = handler(demo, "respond").fn
    convo = Conversation()
    updates = list(respond("What should we do next on equity?", convo, None))
    assert len(updates) == 2  # the question at once, then the reply whole: no paced pieces
    history, cleared = updates[-1][0], updates[-1][1]
    assert cleared == ""
    assert history[0] == {"role": "user", "content": "What should we do next on equity?"}
    final = history[-1]["content"]
    reply = convo.turns[0].reply
    assert reply is not None and reply.citations
    assert "[\\[1\\]](#cite-0-1)" in final
    assert final.index("**Sources**") > final.index("#cite-0-1")
    assert f"`{reply.citations[0].id}`" in final
    suggestions = [u["value"] for u in updates[-1][4:7] if u.get("visible")]
    assert 2 <= len(suggestions) <= 3 and suggestions == reply.suggestions[:3]


def test_profile_from_the_browser_changes_the_next_tier(demo: gr.Blocks, bot: Any) -> None:
    question = "What should we do next on equity?"
    essentials = [item.id for item in bot.toolkit.element("equity").tier_items("essentials")]
    starting, done = Conversation(), Conversation()
    run_respond(demo, question, starting, None)
    run_respond(demo, question, done, {"checked": essentials, "overrides": {}})
    assert starting.turns[0].reply is not None and starting.turns[0].reply.tier == "essentials"
    assert done.turns[0].reply is not None and done.turns[0].reply.tier == "progressing-further"
    assert done.turns[0].profile["equity"] == "essentials"


def test_citation_click_shows_the_passage(demo: gr.Blocks) -> None:
    convo = Conversation()
    run_respond(demo, "What should we do next on equity?", convo)
    open_citation = handler(demo, "open_citation").fn
    reply = convo.turns[0].reply
    assert reply is not None
    cited = reply.citations[1]
    shown = open_citation(f"0-{cited.marker}", convo)
    assert shown.startswith(f"### [{cited.marker}] {cited.title}")
    assert f"`{cited.id}`" in shown
    assert "no longer in this conversation" in open_citation("7-1", convo)


def test_thumbs_and_comment_reach_the_database(demo: gr.Blocks, settings: Settings) -> None:
    convo = Conversation()
    run_respond(demo, "What resources help with equity?", convo)
    on_like = handler(demo, "on_like").fn
    on_comment = handler(demo, "on_comment").fn
    like = gr.LikeData(None, {"index": 1, "value": ["..."], "liked": False})
    convo, box, note, _ = on_like(convo, like)
    assert box["visible"] is True and "not helpful" in note
    note, cleared = on_comment("Missing the CAPC toolkit", convo)
    assert "saved" in note and cleared == ""
    with closing(sqlite3.connect(settings.resolved_feedback_db)) as conn:
        row = conn.execute(
            "SELECT rating, comment, question, citations FROM feedback WHERE session = ?",
            (convo.session,),
        ).fetchone()
    assert row[:3] == ("down", "Missing the CAPC toolkit", "What resources help with equity?")
    assert "equity.resource." in row[3]
    on_like(convo, gr.LikeData(None, {"index": 1, "value": ["..."], "liked": ""}))  # un-thumb
    with closing(sqlite3.connect(settings.resolved_feedback_db)) as conn:
        count = conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE session = ?", (convo.session,)
        ).fetchone()
    assert count == (0,)


def test_the_model_and_index_load_once(settings: Settings, bot: Any) -> None:
    holder = AssistantHolder(settings, bot)
    assert holder.get() is bot and holder.get() is bot


# -- a missing index is explained, not a crash ---------------------------------------------


def test_missing_index_shows_how_to_build_it(tmp_path: Path, settings: Settings) -> None:
    empty = settings.model_copy(update={"chroma_path": tmp_path / "no-index"})
    error = open_assistant(empty)
    assert isinstance(error, IndexMissing)
    demo = build_ui(empty, error)
    [notice] = [b for b in blocks_of(demo, gr.Markdown) if b.elem_id == "pg-not-ready"]
    # The message says what to do, without the server's paths (the log keeps them).
    shown = public_message(error)
    assert str(tmp_path) not in shown and "python ingest.py" in shown
    assert notice.visible is True and shown in notice.value
    convo = Conversation()
    history = run_respond(demo, "What should we do first on equity?", convo)[0]
    assert history[-1]["content"].startswith("**Sorry, I can't answer yet.**")
    assert shown in history[-1]["content"]
    # the toolkit can still be browsed
    assert any(b.elem_id == "pg-cell-equity-essentials" for b in blocks_of(demo, gr.Button))
    with pytest.raises(AssistantError):
        AssistantHolder(empty, error).get()


# -- HTML is escaped before it reaches the page -------------------------------------------------


def make_reply(text: str) -> Reply:
    citation = Citation(
        marker=1,
        id="equity.goal",
        kind="goal",
        element="equity",
        title="Equity › Goal",
        text="Ensure palliative care reaches <b>everyone</b>.",
        source="develop-a-plan.md",
    )
    return Reply(kind="explain", element="equity", text=text, citations=[citation])


def test_reply_and_question_html_is_escaped() -> None:
    hostile = 'You asked "<img src=x onerror=alert(1)>" ![t](http://x.test/p.png) [1] [9]'
    shown = reply_markdown(make_reply(hostile), turn=4)
    assert "<img" not in shown and "&lt;img" in shown
    assert "![t]" not in shown  # no remote image from an echoed question
    assert "[\\[1\\]](#cite-4-1)" in shown and "[9]" in shown  # only real markers are links
    question = plain_text_markdown("<script>alert(1)</script> **bold** [x](javascript:1)")
    assert "<script" not in question and "\\*\\*bold\\*\\*" in question and "\\[x\\]" in question


def test_conversation_export_has_turns_and_citations() -> None:
    turns = [
        Turn(question="Why equity?", reply=make_reply("Because [1].")),
        Turn(question="Too long", message="Your question is too long."),
    ]
    text = conversation_markdown(turns)
    assert "## 1. Why equity?" in text and "Because [1]." in text
    assert "[1] Equity › Goal (`equity.goal`): Ensure palliative care reaches" in text
    assert "## 2. Too long\n\nYour question is too long." in text
    assert find_citation(turns, "0-1") == turns[0].reply.citations[0]  # type: ignore[union-attr]
    assert find_citation(turns, "1-1") is None and find_citation(turns, "x") is None


def test_starter_questions_are_offered() -> None:
    assert 2 <= len(STARTER_QUESTIONS) <= 4


def test_a_conversation_has_its_session_id_before_any_rating(built_settings: Settings) -> None:
    demo = build_ui(built_settings, open_assistant(built_settings))
    convo = Conversation()
    run_respond(demo, "What should we do first on equity?", convo)
    first = convo.session
    assert first
    run_respond(demo, "And after that?", convo)
    assert convo.session == first


def test_guessing_a_password_is_limited_per_name() -> None:
    from assistant.ui import Login

    now = [0.0]
    login = Login([("ann", "right")], failures=5, window=60.0, clock=lambda: now[0])
    assert not any(login("ann", f"guess-{n}") for n in range(300))
    assert login("ann", "right") is False  # refused while the guesses are recent
    assert login("bob", "anything") is False
    now[0] += 61.0
    assert login("ann", "right") is True  # the window has passed
    for n in range(4):
        assert login("ann", f"again-{n}") is False
    assert login("ann", "right") is True  # under the limit, the right password still works


def test_names_guessed_at_random_are_forgotten_once_out_of_the_window() -> None:
    from assistant.ui import _MAX_TRACKED_NAMES, Login

    now = [0.0]
    login = Login([("ann", "right")], failures=5, window=60.0, clock=lambda: now[0])
    for n in range(_MAX_TRACKED_NAMES):
        login(f"name-{n}", "guess")
    now[0] += 61.0
    login("one-more", "guess")
    assert len(login._failed) <= 2  # only recent failures are still tracked
    assert login("ann", "right") is True


def test_an_export_is_private_to_its_session_and_deleted_when_the_session_ends(
    demo: gr.Blocks, settings: Settings
) -> None:
    import stat
    from types import SimpleNamespace

    from assistant.downloads import COOKIE, downloads_for

    convo = Conversation()
    run_respond(demo, "What should we do first on equity?", convo)
    mine, theirs = "a" * 43, "b" * 43
    export = handler(demo, "export_conversation").fn
    update = export(convo, SimpleNamespace(cookies={COOKIE: mine}))
    found = re.search(r'href="(downloads/\w+/[^"]+)"', update["value"])
    assert found, update
    _, folder, name = found.group(1).split("/")
    downloads = downloads_for(settings)
    path = downloads.find(mine, folder, name)
    assert path is not None and path.read_text("utf-8").startswith("# Plan Guide conversation")
    assert (
        downloads.find(theirs, folder, name) is None and downloads.find(None, folder, name) is None
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert convo.exports == [str(path.parent)]
    # an API client without the browser cookie gets no file
    with pytest.warns(UserWarning, match="browser that made them"):
        assert export(convo, SimpleNamespace(cookies={}))["visible"] is False
    states = [b for b in blocks_of(demo, gr.State) if isinstance(b.value, Conversation)]
    assert len(states) == 1 and states[0].delete_callback is not None
    states[0].delete_callback(convo)  # what Gradio calls when the browser session ends
    assert not path.exists() and not path.parent.exists()


def test_served_copies_of_downloads_live_in_a_private_folder(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stat

    from assistant.ui import _private_file_cache

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    _private_file_cache(settings)
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    assert folder.is_relative_to(settings.data_dir.resolve())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
