"""Re-indexing under a running app: it keeps answering, then answers from the new index.

The real app on 127.0.0.1, asked continuously through its API while `ingest.py --force` runs
twice against the same store (the second time with a new document of the plan's own).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client

from assistant.config import Settings
from assistant.scale import NEW_DOCUMENT, NEW_QUESTION, new_document
from tests.app_server import run_ingest, running_app

from .conftest import make_settings

pytestmark = [pytest.mark.server, pytest.mark.slow]
ASKERS = 2


def _client(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def _ingest(settings: Settings) -> None:
    done = run_ingest(settings, "--force", "--quiet")
    assert done.returncode == 0, done.stderr


def test_the_app_answers_throughout_two_rebuilds_and_then_from_the_new_index(
    tmp_path: Path, built_settings: Settings, corpus_copy: Path
) -> None:
    shutil.copytree(built_settings.chroma_path, tmp_path / "index")
    settings = make_settings(tmp_path, corpus_dir=corpus_copy, reindex_check_seconds=0.5)
    failures: list[str] = []
    answers = [0] * ASKERS
    stop = threading.Event()
    (tmp_path / "app").mkdir()
    with running_app(settings, tmp_path / "app") as app:

        def keep_asking(n: int) -> None:
            api = _client(app.url)
            while not stop.is_set():
                try:
                    reply = api.predict("What should we do first on payment?", {}, api_name="/ask")
                    if not reply["citations"]:
                        failures.append(f"no citations: {reply['text'][:200]}")
                    answers[n] += 1
                except Exception as exc:  # any failed request is what this test counts
                    failures.append(repr(exc)[:300])

        askers = [threading.Thread(target=keep_asking, args=(n,)) for n in range(ASKERS)]
        for thread in askers:
            thread.start()
        try:
            _ingest(settings)
            (corpus_copy / NEW_DOCUMENT).write_text(new_document(), "utf-8")
            _ingest(settings)
            api = _client(app.url)
            deadline, found = time.monotonic() + 30, False
            while not found and time.monotonic() < deadline:
                reply = api.predict(NEW_QUESTION, {}, api_name="/ask")
                found = any(c["source"] == NEW_DOCUMENT for c in reply["citations"])
                time.sleep(0.5)
        finally:
            stop.set()
            for thread in askers:
                thread.join(timeout=60)
        log = app.log_text()
    assert failures == [], failures[:5]
    assert all(n >= 5 for n in answers), answers
    # the new document is only in the rebuilt index: the app has switched to it, unrestarted
    assert found, "the app never answered from the rebuilt index:\n" + log[-2000:]
