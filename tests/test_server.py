"""A real Chroma server process on 127.0.0.1: index through HttpClient, answer, then lose it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, StoreUnavailable, build_index

from .conftest import make_settings

pytestmark = pytest.mark.server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _free_port()
    proc = subprocess.Popen(
        [
            exe,
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the Chroma server did not start within 60 s")
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_index_and_answer_through_a_chroma_server(tmp_path: Path, chroma_server) -> None:  # type: ignore[no-untyped-def]
    url, proc = chroma_server
    settings = make_settings(tmp_path, chroma_url=url)
    first = build_index(settings, show_progress=False)
    assert first.passages == 133 and not first.skipped
    assert build_index(settings, show_progress=False).skipped  # the manifest lives on the server
    bot = Assistant.from_settings(settings)
    reply = bot.ask("We've got the basics covered on equity. What should we do next?")
    assert reply.tier == "progressing-further"
    assert "equity.progressing-further.1" in [c.id for c in reply.citations]
    proc.kill()
    proc.wait(timeout=30)
    # The toolkit's own passages are held in memory: a running assistant keeps answering.
    assert bot.ask("respite benefit").citations
    with pytest.raises(StoreUnavailable, match="stopped answering|does not answer"):
        Assistant.from_settings(settings)


def test_a_hung_server_is_reported_within_the_timeout_and_the_toolkit_still_answers(
    tmp_path: Path, corpus_copy: Path, chroma_server
) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from assistant.scale import NEW_DOCUMENT, NEW_QUESTION, new_document

    url, proc = chroma_server
    (corpus_copy / NEW_DOCUMENT).write_text(new_document(), "utf-8")
    settings = make_settings(
        tmp_path, chroma_url=url, corpus_dir=corpus_copy, chroma_timeout_seconds=2
    )
    build_index(settings, show_progress=False)
    bot = Assistant.from_settings(settings)
    assert any(c.source == NEW_DOCUMENT for c in bot.ask(NEW_QUESTION).citations)
    # A toolkit question searches the plan's documents too (boosts, not filters).
    toolkit_question = "We've got the basics covered on equity. What should we do next?"
    bot.retriever.clear_cache()
    os.kill(proc.pid, signal.SIGSTOP)  # the server hangs: it accepts, never replies
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            started = time.monotonic()
            reply = pool.submit(bot.ask, toolkit_question).result(timeout=30)
            waited = time.monotonic() - started
            # opening the index (an app starting, a re-index switch) is bounded too
            started = time.monotonic()
            opening = pool.submit(Assistant.from_settings, settings)
            with pytest.raises(StoreUnavailable, match="not answering"):
                opening.result(timeout=30)
            opened_in = time.monotonic() - started
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert waited < 2 * 2 + 2, waited  # the timeout, twice at most, and the answer itself
    assert opened_in < 2 + 2, opened_in
    assert "equity.progressing-further.1" in [c.id for c in reply.citations]  # the toolkit answered
    assert any("index server is not answering" in note for note in reply.notes), reply.notes
    # Once the server answers again, so do the documents.
    bot.retriever.clear_cache()
    assert any(c.source == NEW_DOCUMENT for c in bot.ask(NEW_QUESTION).citations)
