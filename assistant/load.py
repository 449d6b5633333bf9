"""Load benchmark: `python -m assistant load` starts the app and has simulated users ask at once.

Chat users speak the browser's own protocol (Gradio's queue: join, then read the session's event
stream); API users call `/ask` the way `gradio_client` does. Each user asks, waits for the whole
reply, thinks 2-8 s, and asks again, for a fixed time. It prints replies, errors and reply time
(p50, p95, max) measured from the request to the complete reply, and whether the targets hold.

    python -m assistant load --users 100 --seconds 60            # chat users
    python -m assistant load --users 100 --seconds 60 --api      # /ask users
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings

TARGET_P95_SECONDS = 2.0
THINK_SECONDS = (2.0, 8.0)
REQUEST_TIMEOUT = 60.0


@dataclass
class Tally:
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _questions() -> list[str]:
    from assistant.bench import questions

    return [question for question, _, _ in questions(100)]


async def _events(response: Any) -> AsyncIterator[dict[str, Any]]:
    """The JSON messages of a server-sent event stream."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload:
                yield json.loads(payload)


def _respond_endpoint(config: dict[str, Any]) -> tuple[int, int]:
    """(fn_index, trigger component) of the chat's answer: the event that fills the chat."""
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"] if "props" in c}
    chat, question = ids["pg-chat"], ids["pg-question"]
    for n, dependency in enumerate(config["dependencies"]):
        if chat in dependency["outputs"] and [question, "submit"] in dependency["targets"]:
            return int(dependency.get("id", n)), question
    raise RuntimeError("the app has no chat answer event")


async def _chat_turn(
    client: Any, url: str, endpoint: tuple[int, int], session: str, q: str
) -> None:
    fn_index, trigger = endpoint
    joined = await client.post(
        f"{url}gradio_api/queue/join",
        json={
            "data": [q, None, None],
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": trigger,
            "session_hash": session,
        },
    )
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    stream = client.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session})
    async with stream as response:
        response.raise_for_status()
        async for message in _events(response):
            if message.get("event_id") not in (None, event_id):
                continue
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                chat = (output.get("data") or [None])[0]
                if not message.get("success", False) or not chat:
                    raise RuntimeError(str(output)[:200])
                return
            if message.get("msg") in ("queue_full", "unexpected_error"):
                raise RuntimeError(message.get("msg", ""))
    raise RuntimeError("the event stream ended before the reply")


async def _api_turn(client: Any, url: str, q: str) -> None:
    called = await client.post(f"{url}gradio_api/call/ask", json={"data": [q, {}]})
    called.raise_for_status()
    event_id = called.json()["event_id"]
    async with client.stream("GET", f"{url}gradio_api/call/ask/{event_id}") as response:
        response.raise_for_status()
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                if kind == "error":
                    raise RuntimeError(line[5:].strip()[:200])
                return
    raise RuntimeError("the event stream ended before the reply")


async def _user(
    client: Any, url: str, endpoint: tuple[int, int] | None, deadline: float, tally: Tally
) -> None:
    rng = random.Random()
    questions = _questions()
    session = uuid.uuid4().hex
    await asyncio.sleep(rng.uniform(0, THINK_SECONDS[1]))  # users arrive over the first turn
    while time.monotonic() < deadline:
        question = rng.choice(questions)
        started = time.monotonic()
        try:
            if endpoint is None:
                await _api_turn(client, url, question)
            else:
                await _chat_turn(client, url, endpoint, session, question)
            tally.seconds.append(time.monotonic() - started)
        except Exception as exc:  # every failure is a counted result, never a crash
            tally.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        await asyncio.sleep(rng.uniform(*THINK_SECONDS))


async def run_load(url: str, *, users: int, seconds: float, api: bool) -> Tally:
    """``users`` simulated users against the app at ``url`` for ``seconds``."""
    import httpx

    tally = Tally()
    limits = httpx.Limits(max_connections=4 * users, max_keepalive_connections=2 * users)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        config = (await client.get(f"{url}config")).json()
        endpoint = None if api else _respond_endpoint(config)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_user(client, url, endpoint, deadline, tally) for _ in range(users)))
    return tally


@contextmanager
def _served(settings: Settings) -> Any:
    """The app in its own process on a free loopback port, as `make run` starts it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    data = Path(tempfile.mkdtemp(prefix="plan-guide-load-"))
    env = {
        **settings.environment(),
        "ASSISTANT_HOST": "127.0.0.1",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_FEEDBACK_DB": str(data / "feedback.sqlite3"),
        "ASSISTANT_AUTH": "",
    }
    process = subprocess.Popen(
        [sys.executable, str(root / "app.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the app stopped while starting: run `python app.py` to see why")
        try:
            with urllib.request.urlopen(url + "config", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the app did not start within 180 s")


def run_load_bench(
    settings: Settings, *, users: int, seconds: float, api: bool, url: str | None = None
) -> int:
    """Serve the app (or use ``url``), load it, print the figures; 1 when a target is missed."""
    from assistant.bench import percentile

    with _served(settings) if url is None else _given(url) as target:
        started = time.monotonic()
        tally = asyncio.run(run_load(target, users=users, seconds=seconds, api=api))
        elapsed = time.monotonic() - started
    kind = "API (/ask)" if api else "chat"
    done = tally.seconds
    print(
        f"{users} {kind} users, {THINK_SECONDS[0]:g}-{THINK_SECONDS[1]:g} s think time, {seconds:g} s"
    )
    if done:
        print(
            f"replies {len(done)} ({len(done) / elapsed:.1f}/s), errors {len(tally.errors)}; "
            f"reply time p50 {statistics.median(done):.2f} s, p95 {percentile(done, 95):.2f} s, "
            f"max {max(done):.2f} s"
        )
    else:
        print(f"replies 0, errors {len(tally.errors)}")
    for error in sorted(set(tally.errors))[:5]:
        print(f"  error: {error}")
    met = bool(done) and not tally.errors and percentile(done, 95) <= TARGET_P95_SECONDS
    print(f"targets (0 errors, p95 <= {TARGET_P95_SECONDS:g} s): {'met' if met else 'NOT met'}")
    return 0 if met else 1


@contextmanager
def _given(url: str) -> Any:
    yield url if url.endswith("/") else url + "/"
