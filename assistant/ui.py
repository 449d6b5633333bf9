"""The Plan Guide web app (Gradio Blocks): chat, plan profile, toolkit grid and onboarding.

The assistant (model and index) is opened once per process and shared by every session. Member
health information can reach a question by accident, so nothing is shared or recorded by Gradio:
no share links, analytics, run history or flagging, no chat history kept in the browser, HTML
escaped, and the question length checked here on the server.

    demo = build_ui(settings, Assistant.from_settings(settings))
    launch(settings)  # what `make run` does
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import gradio as gr
from starlette.middleware import Middleware

from assistant.config import Settings, offline_environment
from assistant.downloads import BrowserDownloads, downloads_for
from assistant.errors import AssistantError, InvalidInput, public_message
from assistant.feedback import FeedbackStore
from assistant.plan import ProfileState
from assistant.toolkit import Toolkit, load_toolkit
from assistant.ui_browse import build_onboarding_tab, build_toolkit_tab
from assistant.ui_chat import (
    AssistantHolder,
    answer_concurrency,
    build_chat_panel,
    profile_line,
    question_problem,
    wire_chat,
)
from assistant.ui_profile import (
    ProfileUI,
    build_profile_tab,
    profile_browser_state,
    restore_values,
    state_from_inputs,
)
from assistant.ui_theme import CSS, HEAD, THEME

if TYPE_CHECKING:
    from assistant.chat import Assistant

log = logging.getLogger(__name__)


class Login:
    """Gradio's login check: a name and its password, with a limit on guessing.

    After ``failures`` wrong passwords for one name within ``window`` seconds, that name is
    refused (even with the right password) until the oldest of them is ``window`` seconds old.
    """

    def __init__(
        self,
        users: list[tuple[str, str]],
        *,
        failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = dict(users)
        self.failures, self.window, self.clock = failures, window, clock
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        now = self.clock()
        with self._lock:
            recent = self._failed.setdefault(username, deque())
            while recent and now - recent[0] >= self.window:
                recent.popleft()
            if len(recent) >= self.failures:
                return False
            known = self.users.get(username)
            ok = known is not None and hmac.compare_digest(known.encode(), password.encode())
            if ok:
                self._failed.pop(username, None)
            else:
                recent.append(now)
                if len(self._failed) > _MAX_TRACKED_NAMES:  # names guessed at random
                    # Forget names whose last failure is out of the window (they no longer count).
                    self._failed = {
                        k: v for k, v in self._failed.items() if v and now - v[-1] < self.window
                    }
            return ok


_MAX_TRACKED_NAMES = 10_000


def login_check(settings: Settings) -> Login | None:
    users = parse_auth(settings.auth)
    if users is None:
        return None
    return Login(users, failures=settings.login_failures, window=settings.login_window_seconds)


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """``"ann:pw1,bob:pw2"`` -> [("ann", "pw1"), ("bob", "pw2")]; None or "" -> no login."""
    if not value or not value.strip():
        return None
    pairs = []
    for number, entry in enumerate(value.split(","), start=1):
        user, sep, password = entry.strip().partition(":")
        if not sep or not user.strip() or not password:
            # the entry itself is not echoed: it may hold a password
            raise InvalidInput(
                f"ASSISTANT_AUTH entry {number} is not user:password. Write it as "
                "ASSISTANT_AUTH=user:password, with commas between several users."
            )
        pairs.append((user.strip(), password))
    return pairs


def storage_secret(settings: Settings) -> str:
    """The key the browser's profile is encrypted with; kept in the data dir across restarts.

    With a fresh key on each start the browser could no longer read a profile saved earlier.
    """
    path = settings.data_dir / "browser-state.key"
    try:
        if path.is_file():
            key = path.read_text("ascii").strip()
            if len(key) >= 16:
                return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        path.write_text(key, "ascii")
        path.chmod(0o600)
        return key
    except OSError:
        log.warning("Cannot keep the profile key in %s; profiles last until restart.", path)
        return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def build_ui(settings: Settings, bot_or_error: Assistant | AssistantError) -> gr.Blocks:
    """The whole app. With an error instead of an assistant, the chat explains how to fix it.

    Args:
        settings: serving, feedback and limits.
        bot_or_error: the opened assistant, or the ``AssistantError`` raised opening it (for
            example ``IndexMissing``, whose message says how to build the index).

    Returns:
        The Blocks, not yet launched: pass it to ``launch`` options or call ``.launch``.
    """
    holder = AssistantHolder(settings, bot_or_error)
    feedback = FeedbackStore(settings.resolved_feedback_db)
    toolkit, toolkit_error = _toolkit_for(settings, bot_or_error)
    with gr.Blocks(
        title="Plan Guide",
        analytics_enabled=False,
        # Anything Gradio itself caches (downloads go through ``downloads.py``, not Gradio):
        # checked and deleted as often as a download expires.
        delete_cache=(int(settings.download_ttl_seconds), int(settings.download_ttl_seconds)),
    ) as demo:
        profile_state = profile_browser_state(storage_secret(settings))
        with gr.Row(elem_id="pg-header"):
            gr.Markdown(
                "# Plan Guide\nCited answers from the palliative care toolkit "
                "*Develop a Plan*, for health-plan champions and their teams. "
                "Please leave out any member's personal or health details."
            )
        with gr.Tabs(selected="chat", overflow_behavior="wrap") as tabs:
            with gr.Tab("Chat", id="chat", elem_id="pg-tab-chat"):
                _tab_heading("Chat")
                chat = build_chat_panel(settings, holder, toolkit, toolkit_error)
            if toolkit is not None:
                with gr.Tab("My plan", id="plan", elem_id="pg-tab-plan"):
                    _tab_heading("My plan")
                    profile_ui = build_profile_tab(toolkit, profile_state, downloads_for(settings))
                with gr.Tab("Toolkit", id="toolkit", elem_id="pg-tab-toolkit"):
                    _tab_heading("Toolkit: elements and tiers")
                    build_toolkit_tab(toolkit)
                with gr.Tab("Onboarding", id="onboarding", elem_id="pg-tab-onboarding"):
                    _tab_heading("Onboarding tour")
                    tour = build_onboarding_tab(toolkit)
        wire_chat(chat, settings, holder, feedback, toolkit, profile_state)
        if toolkit is not None:
            for button in tour.ask_buttons:
                button.click(
                    lambda q: (q, gr.Tabs(selected="chat")),
                    button,
                    [chat.question, tabs],
                    api_visibility="private",
                    queue=False,
                ).then(**chat.respond_event)
            _wire_profile_sync(toolkit, profile_ui, chat.profile_line)
        _add_api(holder, settings)
    return demo


def _tab_heading(text: str) -> None:
    """A tab's level-2 heading, read by screen readers and kept out of sight.

    It links the page's title (h1) to the panels' own headings (h3), so no level is skipped.
    """
    gr.Markdown(f"## {text}", elem_classes="pg-sr-only")


def _wire_profile_sync(toolkit: Toolkit, profile_ui: ProfileUI, line: gr.Markdown) -> None:
    """Show the kept profile once the browser has read it, and keep the chat's line current.

    The browser reads its storage after the page has loaded, then reports a change: that, not
    the page load, is when the checkboxes can be restored. Changes made here echo back too;
    those are skipped so a fast clicker's boxes do not flicker.
    """
    targets = profile_ui.restore_targets

    def sync(stored: Any, *shown: Any) -> list[Any]:
        text = profile_line(toolkit, stored)
        if ProfileState.from_stored(stored) == state_from_inputs(toolkit, list(shown)):
            return [*(gr.skip() for _ in targets), text]
        return [*restore_values(toolkit, stored), text]

    profile_ui.state.change(
        sync,
        [profile_ui.state, *profile_ui.inputs],
        [*targets, line],
        api_visibility="private",
        queue=False,
        show_progress="hidden",  # instant: a spinner over every box would only flicker
    )


def _toolkit_for(
    settings: Settings, bot_or_error: Assistant | AssistantError
) -> tuple[Toolkit | None, AssistantError | None]:
    """The toolkit for browsing: the assistant's, or parsed directly when there is no index."""
    try:
        if isinstance(bot_or_error, AssistantError):
            return load_toolkit(settings.corpus_dir), None
        return bot_or_error.toolkit, None
    except AssistantError as exc:
        return None, exc


def _add_api(holder: AssistantHolder, settings: Settings) -> None:
    def ask(question: str, profile: dict[str, str] | None = None) -> dict[str, Any]:
        """Ask Plan Guide a question about the toolkit.

        Args:
            question: the question, at most ASSISTANT_MAX_QUESTION_CHARS characters.
            profile: element -> highest tier completed ("none", "essentials",
                "progressing-further", "setting-the-standard").

        Returns:
            The reply: kind, element, tier, text with [n] markers, citations, suggestions, notes.
        """
        # Wrong types get the assistant's own message (``InvalidInput``), not a crash here.
        if isinstance(question, str):
            question = question.strip()
            problem = question_problem(question, settings)
            if problem:
                raise gr.Error(problem, print_exception=False)
        try:
            reply = holder.get().ask(question, history=[], profile=profile)
        except AssistantError as exc:
            raise gr.Error(public_message(exc), print_exception=False) from exc
        return reply.model_dump()

    gr.api(
        ask,
        api_name="ask",
        concurrency_limit=answer_concurrency(settings),
        concurrency_id="assistant",
    )


# Sent with every response: no framing by other sites, no type sniffing, no referrer, and no
# images or plugins from elsewhere (Gradio itself needs inline scripts and styles).
SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # "same-origin", not "no-referrer": under "no-referrer" the page's own POSTs say
    # "Origin: null", which a sandboxed page of any site can say too.
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; img-src 'self' data: blob:"
    ),
}


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class SameOrigin:
    """ASGI middleware refusing (403) browser requests sent from another site's page.

    A browser names the page a request comes from in ``Origin``; only the app's own (the host
    the request is addressed to) may call it. Requests without ``Origin`` (scripts, the API
    client) are not from a page and pass; "null" (a sandboxed or local page) is another site.
    Preflights from other sites get 403 too: ``outermost`` puts this check before Gradio's CORS
    layer, which would let any ``localhost`` page in, with credentials.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        if origin and urlparse(origin).netloc != host:
            await _refuse(send, 403, "Requests from other sites are not accepted.")
            return
        await self.app(scope, receive, send)


class RequestLimit:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413.

    A question, a profile and the session's state are all a request carries (the chat itself
    stays on the server): anything bigger is not the app's own page talking.
    """

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await _refuse(
                send, 413, f"The request is larger than {self.limit} bytes. Ask a shorter question."
            )
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a body sent without its length: stop reading it
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    """Answer a request with ``status`` and a one-line JSON message, without the app."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def launch_options(settings: Settings) -> dict[str, Any]:
    """Everything ``launch`` passes to Gradio: loopback, no sharing, nothing recorded."""
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": login_check(settings),
        "auth_message": "Plan Guide: sign in with the name and password your team gave you.",
        "share": False,
        "run_history": False,
        "footer_links": [],
        "enable_monitoring": False,
        "mcp_server": False,
        "pwa": False,
        "ssr_mode": False,
        "show_error": False,
        "quiet": True,
        "max_file_size": "1mb",
        "theme": THEME,
        "css": CSS,
        "head": HEAD,
        "app_kwargs": {
            "middleware": [
                Middleware(SecurityHeaders),
                Middleware(SameOrigin),
                Middleware(RequestLimit, limit=settings.max_request_bytes),
                Middleware(BrowserDownloads, downloads=downloads_for(settings)),
            ]
        },
    }


def queue_options(settings: Settings) -> dict[str, Any]:
    """A bounded queue; answers run ``answer_concurrency(settings)`` at a time.

    An answer takes about 10 ms of CPU, so ``queue_size`` waiting requests are a fraction of a
    second of work: the bound keeps memory in check, not users out.
    """
    return {
        "default_concurrency_limit": answer_concurrency(settings),
        "max_size": settings.queue_size,
    }


def outermost(app: Any) -> None:
    """Run the app's own middleware (``launch_options``) before Gradio's, CORS included.

    Gradio adds its CORS layer outside the middleware it is given, so a preflight from any
    ``localhost`` page would be answered yes before ``SameOrigin`` sees it. Starlette builds
    its stack on first use; clearing it makes the next request build it in the new order.
    """
    ours = {SecurityHeaders, SameOrigin, RequestLimit, BrowserDownloads}
    mine = [m for m in app.user_middleware if m.cls in ours]
    app.user_middleware = mine + [m for m in app.user_middleware if m.cls not in ours]
    app.middleware_stack = None


def open_assistant(settings: Settings) -> Assistant | AssistantError:
    """The assistant, or the error that says why it cannot open (shown in the UI)."""
    from assistant.chat import Assistant

    try:
        return Assistant.from_settings(settings)
    except AssistantError as exc:
        log.warning("%s", exc)
        return exc


def _private_file_cache(settings: Settings) -> None:
    """Gradio keeps copies of files it serves in its cache folder: keep that folder in the data
    folder, readable by this process's user only (not in a /tmp folder open to all)."""
    if "GRADIO_TEMP_DIR" in os.environ:
        return
    folder = (settings.data_dir / "served-files").resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)


def launch(settings: Settings, *, prevent_thread_lock: bool = False) -> gr.Blocks:
    """Open the assistant once, build the app and serve it (blocks unless told not to)."""
    offline_environment()
    launch_kwargs = launch_options(settings)  # a bad ASSISTANT_AUTH fails before the model loads
    _private_file_cache(settings)
    demo = build_ui(settings, open_assistant(settings))
    demo.queue(**queue_options(settings))
    try:
        demo.launch(prevent_thread_lock=True, **launch_kwargs)
        outermost(demo.server_app)
    except OSError as exc:
        raise AssistantError(
            f"Cannot serve Plan Guide on {settings.host}:{settings.port}: is another program "
            "using that port? Stop it, or set ASSISTANT_PORT to a free port."
        ) from exc
    print(f"Plan Guide is running at {demo.local_url} (press Ctrl+C to stop).", flush=True)
    if not prevent_thread_lock:
        demo.block_thread()
    return demo
