"""Many users at once against the real app on 127.0.0.1: every request gets its reply.

Figures (reply time p50/p95) come from `python -m assistant load`, a benchmark that prints them;
here the check is that nobody is turned away or gets an error while 60 users chat or call /ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from assistant.config import Settings
from assistant.load import run_load
from tests.app_server import AppServer, running_app

pytestmark = [pytest.mark.server, pytest.mark.slow]
USERS = 60
SECONDS = 12.0


@pytest.fixture(scope="module")
def app(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_app(built_settings, tmp_path_factory.mktemp("load-app")) as server:
        yield server


@pytest.mark.parametrize("api", [False, True], ids=["chat", "api"])
def test_sixty_users_all_get_their_replies(app: AppServer, api: bool) -> None:
    tally = asyncio.run(run_load(app.url, users=USERS, seconds=SECONDS, api=api))
    assert tally.errors == [], sorted(set(tally.errors))[:5]
    assert len(tally.seconds) >= USERS  # every user was answered at least once
