"""Private downloads: files made for one browser, served to that browser only.

Every browser gets a random token in an HttpOnly, SameSite=Strict cookie. A download (an
exported conversation, a plan) is written 0600 into a 0700 folder of its own that records a
hash of the token; ``BrowserDownloads`` serves it only to a request carrying that token, so a
link that leaks is worth nothing to anyone else. Folders go when the session ends (the caller
calls ``remove``) or after ``ttl_seconds``, whichever is first.

    downloads = Downloads(settings.data_dir / "downloads", ttl_seconds=600)
    saved = downloads.save(browser_token(request), {"plan.md": b"..."})
    saved.links  # [("plan.md", "downloads/<id>/plan.md")]: relative, so a path prefix works
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import shutil
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from starlette.responses import FileResponse, PlainTextResponse

from assistant.config import Settings

COOKIE = "plan-guide-browser"
ROUTE = "downloads"
_OWNER = ".owner"
NO_BROWSER = "Downloads open in the browser that made them: reload the page and try again."
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")  # what ``secrets.token_urlsafe(32)`` gives
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_PATH = re.compile(rf"^/{ROUTE}/([0-9a-f]{{32}})/([^/]+)$")


class Saved(BaseModel):
    """One saved download: its folder (delete it when the session ends) and its links."""

    folder: str
    links: list[tuple[str, str]]

    def html(self, label: str) -> str:
        """The links as HTML, each a download of its own."""
        items = "".join(
            f'<li><a href="{html.escape(href)}" download="{html.escape(name)}">'
            f"{html.escape(name)}</a></li>"
            for name, href in self.links
        )
        return f'<p class="pg-downloads-label">{html.escape(label)}</p><ul>{items}</ul>'


def _owner(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The browser token from a request's raw headers, if it sent one."""
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value.decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            return None
        morsel = jar.get(COOKIE)
        if morsel and _TOKEN.fullmatch(morsel.value):
            return morsel.value
    return None


def browser_token(request: Any) -> str | None:
    """The browser token of a Gradio request (``gr.Request``), or None (an API client)."""
    cookies: Any = getattr(request, "cookies", None)  # a dict, or Gradio's dict-like ``Obj``
    token = cookies.get(COOKIE) if hasattr(cookies, "get") else None
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


def downloads_for(settings: Settings) -> Downloads:
    """The app's download folders (``settings.downloads_dir``, ``download_ttl_seconds``)."""
    return Downloads(settings.downloads_dir, ttl_seconds=settings.download_ttl_seconds)


class Downloads:
    """Download folders under ``root`` (0700), each owned by one browser token."""

    def __init__(self, root: Path, *, ttl_seconds: float) -> None:
        self.root = root
        self.ttl_seconds = ttl_seconds

    def _ready(self) -> Path:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        return self.root

    def prune(self) -> None:
        """Remove folders older than ``ttl_seconds``."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - self.ttl_seconds
        for folder in self.root.iterdir():
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    def save(self, token: str, files: dict[str, bytes]) -> Saved:
        """Write ``files`` (name -> content) into a new folder owned by ``token``."""
        self.prune()
        folder = self._ready() / uuid.uuid4().hex
        folder.mkdir(mode=0o700)
        owner = folder / _OWNER
        owner.write_text(_owner(token), "ascii")
        owner.chmod(0o600)
        links = []
        for name, content in files.items():
            if not _NAME.match(name):
                raise ValueError(f"Not a safe download name: {name!r}")
            path = folder / name
            path.write_bytes(content)
            path.chmod(0o600)
            links.append((name, f"{ROUTE}/{folder.name}/{name}"))
        return Saved(folder=str(folder), links=links)

    def save_for(self, request: Any, files: dict[str, bytes]) -> Saved | None:
        """``save`` for the browser behind a Gradio request; None when it sent no token (an
        API client, or a page loaded before the cookie was set): say ``NO_BROWSER``."""
        token = browser_token(request)
        return None if token is None else self.save(token, files)

    def find(self, token: str | None, folder: str, name: str) -> Path | None:
        """The file, if it exists, is fresh and belongs to ``token``; else None."""
        if token is None or not _NAME.match(name) or not re.fullmatch(r"[0-9a-f]{32}", folder):
            return None
        where = self.root / folder
        try:
            owner = (where / _OWNER).read_text("ascii")
            path = where / name
            if not path.is_file() or where.stat().st_mtime < time.time() - self.ttl_seconds:
                return None
        except OSError:
            return None
        return path if hmac.compare_digest(owner, _owner(token)) else None

    @staticmethod
    def remove(folders: list[str]) -> None:
        """Delete these download folders now (their session has ended)."""
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


class BrowserDownloads:
    """ASGI middleware: gives each browser its token cookie and serves its downloads.

    ``GET /downloads/<id>/<name>`` is answered here, before the app: the file, if the request
    carries the token that made it, else 404 (the same for "not yours" and "gone").
    """

    def __init__(self, app: Any, *, downloads: Downloads) -> None:
        self.app = app
        self.downloads = downloads

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = cookie_token(scope.get("headers", []))
        found = _PATH.match(scope.get("path", ""))
        if found and scope.get("method") in ("GET", "HEAD"):
            path = self.downloads.find(token, found.group(1), found.group(2))
            if path is None:
                response: Any = PlainTextResponse(
                    "This download has expired or belongs to another browser session. "
                    "Export it again from Plan Guide.",
                    status_code=404,
                )
            else:
                response = FileResponse(
                    path,
                    filename=path.name,
                    headers={"Cache-Control": "no-store"},
                )
            await response(scope, receive, send)
            return
        if token is not None:
            await self.app(scope, receive, send)
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{COOKIE}={secrets.token_urlsafe(32)}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ).encode()

        async def with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, with_cookie)
