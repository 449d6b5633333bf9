"""A plan's own documents at scale: incremental ingest, word index on disk, bounded work per turn.

Real model, real Chroma on disk, the real toolkit plus generated policy manuals.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Assistant, build_index
from assistant.lexical import words_root
from assistant.scale import NEW_DOCUMENT, NEW_QUESTION, generate_documents, new_document
from assistant.store import Store, connect

from .conftest import REPO, make_settings

POLICY = (
    "# Bereavement line\n\nOur plan runs a bereavement phone line staffed by social workers "
    "for the families of members who died in the serious illness program.\n"
)


def _sources(settings) -> set[str]:  # type: ignore[no-untyped-def]
    store = Store(client=connect(settings, create=False), settings=settings, embeddings=None)  # type: ignore[arg-type]
    return {p.source for p in store.passages()}


@pytest.mark.slow
def test_ingest_embeds_only_new_or_changed_documents_and_deletes_removed_ones(
    tmp_path: Path, corpus_copy: Path
) -> None:
    generate_documents(corpus_copy, 60)
    settings = make_settings(tmp_path, corpus_dir=corpus_copy, index_grace_seconds=0)
    first = build_index(settings, show_progress=False)
    assert first.mode == "rebuilt" and first.embedded == first.passages
    # One new document: only its passages are embedded, in the same collection.
    (corpus_copy / "bereavement.md").write_text(POLICY, "utf-8")
    added = build_index(settings, show_progress=False)
    assert (added.mode, added.embedded, added.collection) == ("updated", 1, first.collection)
    assert added.changed_files == ["bereavement.md"] and added.passages == first.passages + 1
    hits = Assistant.from_settings(settings).retriever.search("bereavement phone line", k=3)
    assert hits[0].passage.source == "bereavement.md"
    # A changed document replaces its own passages; a removed one leaves the index.
    (corpus_copy / "bereavement.md").write_text(POLICY.replace("phone line", "text service"))
    generated = sorted(p.name for p in corpus_copy.glob("*-0001.md"))
    (corpus_copy / generated[0]).unlink()
    changed = build_index(settings, show_progress=False)
    assert changed.mode == "updated" and changed.embedded == 1
    assert changed.removed_files == generated[:1]
    assert generated[0] not in _sources(settings)
    bot = Assistant.from_settings(settings)
    words = bot.retriever.search("bereavement text service", k=3)
    assert words[0].passage.source == "bereavement.md" and "text service" in words[0].passage.text
    assert all(
        h.passage.source != generated[0] for h in bot.retriever.search("prior authorization", k=20)
    )
    # Nothing changed: nothing embedded. A changed toolkit file rebuilds everything.
    assert build_index(settings, show_progress=False).mode == "up to date"
    toolkit = corpus_copy / "develop-a-plan-overview-page.txt"
    toolkit.write_text(toolkit.read_text("utf-8") + "\n", "utf-8")
    rebuilt = build_index(settings, show_progress=False)
    assert rebuilt.mode == "rebuilt" and rebuilt.collection != first.collection
    assert rebuilt.embedded == rebuilt.passages
    assert len(list(words_root(settings).iterdir())) == 1  # earlier word indexes are pruned


@pytest.mark.slow
def test_a_missing_word_index_is_rebuilt_from_the_store(tmp_path: Path, corpus_copy: Path) -> None:
    (corpus_copy / "bereavement.md").write_text(POLICY, "utf-8")
    settings = make_settings(tmp_path, corpus_dir=corpus_copy)
    build_index(settings, show_progress=False)
    # Another machine serving from the same store has no local copy of the word index.
    shutil.rmtree(words_root(settings))
    bot = Assistant.from_settings(settings)
    assert bot.retriever.has_documents
    toolkit_words, document_words = bot.retriever.lexical(
        "bereavement social workers", filters=bot.retriever.filters, limit=5
    )
    assert document_words and document_words[0][0].source == "bereavement.md"
    assert bot.passage(document_words[0][0].id).text.startswith("Our plan runs")


@pytest.mark.slow
def test_each_turn_queries_the_documents_index_once(tmp_path: Path, corpus_copy: Path) -> None:
    generate_documents(corpus_copy, 120)
    (corpus_copy / NEW_DOCUMENT).write_text(new_document(), "utf-8")
    settings = make_settings(tmp_path, corpus_dir=corpus_copy)
    build_index(settings, show_progress=False)
    bot = Assistant.from_settings(settings)
    store = bot.retriever.store
    calls: list[int] = []
    real_dense = store.dense
    store.dense = lambda *a, **kw: calls.append(1) or real_dense(*a, **kw)  # type: ignore[method-assign]
    for question in (
        NEW_QUESTION,
        "We've got the basics covered on equity. What should we do next?",
        "Why does payment matter?",
        "What resources help with workforce capacity?",
    ):
        before, model_calls = len(calls), store.model_calls
        reply = bot.ask(question)
        assert len(calls) - before <= 1, question
        assert store.model_calls - model_calls <= 1, question  # one embedding per question
    reply = bot.ask(NEW_QUESTION)
    assert any(c.source == NEW_DOCUMENT for c in reply.citations), reply.text


def test_generated_documents_are_repeatable_and_sized(tmp_path: Path) -> None:
    from assistant.passages import document_passages

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    count = generate_documents(first, 300)
    assert generate_documents(second, 300) == count
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    passages = [p for n in names for p in document_passages(first / n)]
    assert len(passages) >= 300
    assert len({p.id for p in passages}) == len(passages)


@pytest.mark.slow
def test_scale_benchmark_prints_both_sizes_and_finds_the_new_document() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "bench", "--scale", "2", "--rounds", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for row in ("| reply p50 ms |", "| reply p95 ms |", "| start-up s", "| resident memory"):
        assert row in out, out
    assert "passages/s" in out and "python ingest.py` took" in out
    assert "finds it: yes" in out, out


def test_a_question_the_toolkit_does_not_cover_is_answered_from_a_document_only_if_it_fits(
    tmp_path: Path, corpus_copy: Path
) -> None:
    (corpus_copy / NEW_DOCUMENT).write_text(new_document(), "utf-8")
    settings = make_settings(tmp_path, corpus_dir=corpus_copy)
    build_index(settings, show_progress=False)
    bot = Assistant.from_settings(settings)
    reply = bot.ask(NEW_QUESTION)
    assert reply.text.startswith("The Develop a Plan toolkit does not cover that topic.")
    assert {c.source for c in reply.citations} == {NEW_DOCUMENT}
    # Uncovered questions the policy does not answer, though its words are near theirs
    # (billing, appeals, records, training): refused, with nothing quoted from the policy.
    for question in (
        "Which CPT codes should our providers use to bill advance care planning conversations?",
        "How long are we required to retain caregiver burden assessments and enrollment records?",
        "How does a family appeal when the plan denies more home health aide hours?",
    ):
        refused = bot.ask(question)
        assert (refused.kind, refused.citations) == ("out_of_scope", []), question
