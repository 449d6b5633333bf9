"""Ingest against a real Chroma store on disk: idempotent, atomic, stale-aware, clear errors."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant import Assistant, build_index
from assistant.errors import IndexMissing, IndexUnusable, StoreUnavailable
from assistant.indexer import index_is_current
from assistant.store import Store, connect

from .app_server import run_ingest
from .conftest import REPO, make_settings


def _ids(settings) -> list[str]:  # type: ignore[no-untyped-def]
    store = Store(client=connect(settings, create=False), settings=settings, embeddings=None)  # type: ignore[arg-type]
    return [p.id for p in store.passages()]


def test_summary_counts(built_settings) -> None:  # type: ignore[no-untyped-def]
    summary = build_index(built_settings, show_progress=False)
    assert summary.skipped
    assert summary.passages == 133
    assert summary.by_kind["action_item"] == 51
    assert summary.by_kind["resource"] == 37
    assert summary.elements == 7
    assert "133 passages" in summary.line()


def test_ingest_is_idempotent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, index_grace_seconds=0)
    first = build_index(settings, show_progress=False)
    ids = _ids(settings)
    again = build_index(settings, show_progress=False)
    assert again.skipped and again.collection == first.collection
    forced = build_index(settings, force=True, show_progress=False)
    assert not forced.skipped and forced.collection != first.collection
    assert _ids(settings) == ids
    assert len(ids) == len(set(ids)) == 133
    client = connect(settings, create=False)
    versions = [c.name for c in client.list_collections() if c.name.startswith("toolkit--")]
    assert versions == [forced.collection]


def test_a_replaced_collection_is_kept_for_the_grace_period(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # index_grace_seconds: 600 by default
    first = build_index(settings, show_progress=False)
    second = build_index(settings, force=True, show_progress=False)
    names = [c.name for c in connect(settings, create=False).list_collections()]
    assert {first.collection, second.collection} <= set(names)  # apps may still read the first
    later = make_settings(tmp_path, index_grace_seconds=0)
    assert build_index(later, show_progress=False).skipped
    names = [c.name for c in connect(later, create=False).list_collections()]
    assert first.collection not in names and second.collection in names


def test_changed_corpus_is_stale_and_extra_documents_are_ingested(
    tmp_path: Path, corpus_copy: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["pdf.fonttype"] = 42
    import matplotlib.pyplot as plt

    settings = make_settings(tmp_path, corpus_dir=corpus_copy)
    build_index(settings, show_progress=False)
    assert index_is_current(settings)
    (corpus_copy / "our-policy.md").write_text(
        "# Our caregiver policy\n\nWe offer a bereavement phone line to family caregivers.\n\n"
        "## Respite\n\nMembers' caregivers may use four respite days a year.\n",
        "utf-8",
    )
    fig = plt.figure()
    fig.text(0.1, 0.8, "NETWORK MEMO")
    fig.text(0.1, 0.6, "Our oncology clinics embed a palliative nurse every Tuesday.")
    fig.savefig(corpus_copy / "memo.pdf")
    plt.close(fig)
    (corpus_copy / "broken.txt").write_bytes(b"\xff\xfe\x00not utf-8 \xc3\x28")
    assert not index_is_current(settings)
    summary = build_index(settings, show_progress=False)
    assert not summary.skipped
    assert summary.by_kind["document"] == 3
    assert summary.passages == 136
    assert len(summary.warnings) == 1 and "broken.txt" in summary.warnings[0]
    bot = Assistant.from_settings(settings)
    hits = bot.retriever.search("bereavement phone line", k=1)
    assert hits[0].passage.source == "our-policy.md"
    assert hits[0].passage.title == "our-policy.md › Our caregiver policy"
    memo = bot.retriever.search("palliative nurse in oncology clinics on Tuesday", k=1)[0].passage
    assert memo.source == "memo.pdf" and "every Tuesday" in memo.text


def _ingest_and_kill(settings_env: dict[str, str]) -> int:
    """Start a forced rebuild and kill it once it has written part of the new collection."""
    proc = subprocess.Popen(
        [sys.executable, "ingest.py", "--force"],
        cwd=REPO,
        env=settings_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    done = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while not done.is_set():
            chunk = proc.stderr.read1(256)  # type: ignore[attr-defined]
            if not chunk:
                break
            seen.extend(chunk)
            if b"32/133" in seen or b"64/133" in seen:
                done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert done.wait(timeout=120), seen.decode(errors="replace")[-400:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode


def test_killed_ingest_leaves_old_index_answering(tmp_path: Path, built_settings) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(built_settings.chroma_path, tmp_path / "index")
    settings = make_settings(tmp_path, index_grace_seconds=0)
    before = _ids(settings)
    env = {
        **os.environ,
        "ASSISTANT_CHROMA_PATH": str(settings.chroma_path),
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        "ASSISTANT_INGEST_BATCH": "32",  # small batches: the kill lands half-way
    }
    assert _ingest_and_kill(env) == -signal.SIGKILL
    client = connect(settings, create=False)
    names = [c.name for c in client.list_collections()]
    assert (
        len([n for n in names if n.startswith("toolkit--")]) == 2
    )  # the old one and the partial one
    assert _ids(settings) == before
    reply = Assistant.from_settings(settings).ask("respite benefit")
    assert reply.citations[0].id == "family-caregiver-support.setting-the-standard.1"
    again = build_index(settings, show_progress=False)
    assert again.skipped
    names = [c.name for c in connect(settings, create=False).list_collections()]
    assert [n for n in names if n.startswith("toolkit--")] == [again.collection]
    assert len(_vector_folders(settings.chroma_path)) == 1  # the killed build's folder is gone


def test_respite_query_finds_the_respite_item(bot) -> None:  # type: ignore[no-untyped-def]
    hits = bot.retriever.search("respite benefit", k=3)
    assert hits[0].passage.id == "family-caregiver-support.setting-the-standard.1"
    docs = bot.retriever.invoke("respite benefit")
    assert docs[0].id == "family-caregiver-support.setting-the-standard.1"


def test_model_loads_offline_from_the_package() -> None:
    code = (
        "import os; from assistant.config import Settings; from assistant.embeddings import make_embeddings;"
        "e = make_embeddings(Settings(_env_file=None)); v = e.embed_query('respite');"
        "print(len(v), os.environ['HF_HUB_OFFLINE'], round(sum(x * x for x in v), 3))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HUB_OFFLINE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["384", "1", "1.0"]


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(IndexMissing, match=r"Run `python ingest.py`"):
        Assistant.from_settings(settings)
    assert not (tmp_path / "index").exists()


def test_corrupt_index_is_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.chroma_path.mkdir(parents=True)
    (settings.chroma_path / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexUnusable, match="ingest.py --force"):
        Assistant.from_settings(settings)


def test_forced_ingest_sets_a_corrupt_index_aside_and_rebuilds(
    tmp_path: Path, built_settings
) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(built_settings.chroma_path, tmp_path / "index")
    settings = make_settings(tmp_path)
    database = settings.chroma_path / "chroma.sqlite3"
    data = bytearray(database.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\x00garbage" * 409 + b"\x00" * 6
    database.write_bytes(bytes(data))
    done = run_ingest(settings, "--force", "--quiet")
    assert done.returncode == 0, done.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("index.unreadable-")]
    assert len(aside) == 1 and (aside[0] / "chroma.sqlite3").is_file()  # kept, not deleted
    assert str(aside[0]) in done.stderr
    reply = Assistant.from_settings(settings).ask("respite benefit")
    assert reply.citations[0].id == "family-caregiver-support.setting-the-standard.1"


def _vector_folders(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if p.is_dir() and re.fullmatch(r"[0-9a-f-]{36}", p.name)}


def test_rebuilds_and_killed_builds_leave_no_orphan_folders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, index_grace_seconds=0)
    build_index(settings, show_progress=False)
    for _ in range(3):
        build_index(settings, force=True, show_progress=False)
    # one folder for the active collection's vectors; none for the three deleted ones
    assert len(_vector_folders(settings.chroma_path)) == 1


def test_rebuilds_and_killed_builds_do_not_grow_the_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, index_grace_seconds=0)
    build_index(settings, show_progress=False)
    database = settings.chroma_path / "chroma.sqlite3"
    first = database.stat().st_size
    code = (
        "from assistant.indexer import build_index; from assistant.config import Settings; "
        "build_index(Settings(), force=True, show_progress=False)"
    )
    env = settings.environment()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    time.sleep(3.0)  # killed part-way through a rebuild
    child.kill()
    child.wait()
    for _ in range(2):
        build_index(settings, force=True, show_progress=False)
    assert database.stat().st_size <= 1.25 * first, (first, database.stat().st_size)
    reply = Assistant.from_settings(settings).ask("respite benefit")
    assert reply.citations[0].id == "family-caregiver-support.setting-the-standard.1"


def test_unwritable_index_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = make_settings(tmp_path, chroma_path=blocker / "index")
    with pytest.raises(IndexUnusable, match="Cannot write the index"):
        build_index(settings, show_progress=False)


def test_server_that_does_not_answer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = make_settings(tmp_path, chroma_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StoreUnavailable, match="does not answer"):
        build_index(settings, show_progress=False)
    with pytest.raises(StoreUnavailable):
        Assistant.from_settings(settings)


def test_ingest_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ASSISTANT_CORPUS_DIR": str(tmp_path / "nowhere"),
        "ASSISTANT_CHROMA_PATH": str(tmp_path / "i"),
    }
    run = subprocess.run(
        [sys.executable, "ingest.py"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("error: Toolkit file not found")
    assert "previous index, if any, is unchanged" in run.stderr
