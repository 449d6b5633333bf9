"""Build the index from the corpus: parse, embed, store; skip when nothing changed.

summary = build_index(Settings(), force=False)
print(summary.line())
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from assistant.config import OVERVIEW_FILE, TOOLKIT_FILE, Settings
from assistant.embeddings import make_embeddings, model_fingerprint
from assistant.errors import CorpusError, IndexUnusable
from assistant.lexical import DocumentIndex, words_folder, words_root
from assistant.passages import document_passages, extra_files, toolkit_passages
from assistant.schema import Passage
from assistant.store import Store
from assistant.toolkit import load_toolkit

log = logging.getLogger(__name__)

# Bump when passage ids, texts or metadata change shape: it makes every old index stale.
SCHEMA_VERSION = 2
_CODE_FILES = ("toolkit.py", "passages.py")
_DOCUMENT = "corpus:"  # manifest keys of the corpus files; the toolkit's two are not documents


class IngestSummary(BaseModel):
    """What one run of the ingest did."""

    skipped: bool
    collection: str
    passages: int
    by_kind: dict[str, int]
    elements: int
    seconds: float
    warnings: list[str]
    mode: str = "rebuilt"  # "rebuilt", "updated" (only changed documents) or "up to date"
    embedded: int = 0  # passages embedded by this run
    changed_files: list[str] = []
    removed_files: list[str] = []

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind.items()))
        verb = {"up to date": "Index up to date", "updated": "Updated"}.get(self.mode, "Indexed")
        changes = ""
        if self.mode == "updated":
            changes = (
                f" ({len(self.changed_files)} new or changed, {len(self.removed_files)} removed "
                f"documents; {self.embedded} passages embedded)"
            )
        return (
            f"{verb}{changes}: {self.passages} passages ({kinds}); {self.elements} elements; "
            f"collection {self.collection}; {self.seconds:.1f} s"
        )


def corpus_manifest(settings: Settings) -> dict[str, str | int]:
    """Hashes of everything an index depends on: corpus files, model files, parser code."""
    digest: dict[str, str | int] = {"schema": SCHEMA_VERSION}
    corpus = settings.corpus_dir
    files = [corpus / name for name in ("develop-a-plan.md", "develop-a-plan-overview-page.txt")]
    if corpus.is_dir():
        files += sorted(extra_files(corpus))
    for path in files:
        if path.is_file():
            digest[f"{_DOCUMENT}{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest[f"code:{name}"] = hashlib.sha256((here / name).read_bytes()).hexdigest()
    digest["model"] = hashlib.sha256(model_fingerprint(settings).encode()).hexdigest()
    return digest


def _documents(manifest: dict[str, Any]) -> dict[str, str]:
    """File name -> hash of a plan's own documents in ``manifest``."""
    toolkit = {TOOLKIT_FILE, OVERVIEW_FILE}
    return {
        key[len(_DOCUMENT) :]: str(value)
        for key, value in manifest.items()
        if key.startswith(_DOCUMENT) and key[len(_DOCUMENT) :] not in toolkit
    }


def _base(manifest: dict[str, Any]) -> dict[str, Any]:
    """What forces a full rebuild when it changes: the toolkit, the parser, the model."""
    documents = {f"{_DOCUMENT}{name}" for name in _documents(manifest)}
    return {key: value for key, value in manifest.items() if key not in documents}


def index_is_current(settings: Settings) -> bool:
    """True when an index exists and was built from the current corpus, model and parser."""
    return _stored_manifest(settings) == corpus_manifest(settings)


def _stored_manifest(settings: Settings) -> dict[str, Any] | None:
    if not settings.chroma_url and not (settings.chroma_path / "chroma.sqlite3").is_file():
        return None
    from assistant.store import connect

    store = Store(client=connect(settings, create=False), settings=settings, embeddings=None)  # type: ignore[arg-type]
    return store.manifest()


def build_index(
    settings: Settings, *, force: bool = False, show_progress: bool = True
) -> IngestSummary:
    """Bring the index up to date with the corpus, doing as little as the change needs.

    A changed toolkit file, parser or model (or ``force``) rebuilds everything into a new
    collection; new, changed or removed documents of a plan only embed, replace or delete their
    own passages; nothing changed does nothing.

    Args:
        settings: paths, collection and model.
        force: rebuild everything even when nothing changed.
        show_progress: draw a progress bar on stderr.

    Returns:
        The run's summary. Raises ``CorpusError``, ``IndexUnusable``, ``StoreUnavailable`` or
        ``ModelError``; on a rebuild the previous index stays as it was, and an update that
        stopped half-way is finished by the next run.
    """
    started = time.perf_counter()
    toolkit = load_toolkit(settings.corpus_dir)
    manifest = corpus_manifest(settings)
    _check_writable(settings)
    warnings: list[str] = []
    if force:
        warnings += _set_aside_if_unreadable(settings)
    stored = None if force else _stored_manifest(settings)
    documents = _documents(manifest)
    folder = words_folder(settings, manifest) if documents else None
    extra = {"words": folder.name if folder else ""}
    changed: list[str] = []
    removed: list[str] = []
    held = 0  # document passages counted in the index, not read (nothing changed)
    if stored is not None and _base(stored) == _base(manifest):
        old = _documents(stored)
        changed = sorted(name for name, digest in documents.items() if old.get(name) != digest)
        removed = sorted(set(old) - set(documents))
        store = Store.open(settings, make_embeddings(settings) if changed else None)  # type: ignore[arg-type]
        mode = "updated" if changed or removed or stored != manifest else "up to date"
        if mode == "updated":
            kept, kept_vectors = _stored_documents(store, drop={*changed, *removed})
            added = _parse(settings, changed, warnings)
            with _bar(len(added), show_progress) as bar:
                name, vectors = store.write_changes(
                    remove_sources=[*changed, *removed], add=added, progress=bar.update
                )
            _save_words(folder, [*kept, *added], [*kept_vectors, *vectors.values()])
            store.activate(name, manifest, extra=extra)
            passages = [*toolkit_passages(toolkit), *kept, *added]
            embedded = len(added)
        else:
            name = store.active_name()
            store.prune(keep=name)  # collections left behind by a build that died
            passages = toolkit_passages(toolkit)
            held = _document_count(store)
            embedded = 0
    else:
        mode = "rebuilt"
        added = _parse(settings, sorted(documents), warnings)
        changed = sorted(p.source for p in added)
        passages = [*toolkit_passages(toolkit), *added]
        store = Store.open(settings, make_embeddings(settings), create=True)
        with _bar(len(passages), show_progress) as bar:
            name, vectors = store.write_collection(passages, progress=bar.update)
        _save_words(folder, added, list(vectors.values()))
        store.activate(name, manifest, extra=extra)
        embedded = len(passages)
    _prune_words(settings, keep=folder)
    _remove_orphan_segments(settings)
    compact(settings)
    by_kind = Counter(str(p.kind) for p in passages)
    if held:
        by_kind["document"] += held
    return IngestSummary(
        skipped=mode == "up to date",
        collection=name,
        passages=len(passages) + held,
        by_kind=dict(by_kind),
        elements=len(toolkit.elements),
        seconds=time.perf_counter() - started,
        warnings=warnings,
        mode=mode,
        embedded=embedded,
        changed_files=sorted(set(changed)),
        removed_files=removed,
    )


def _parse(settings: Settings, names: list[str], warnings: list[str]) -> list[Passage]:
    """The passages of the named documents; unreadable ones become warnings."""
    out: list[Passage] = []
    for name in names:
        try:
            out.extend(document_passages(settings.corpus_dir / name))
        except CorpusError as exc:
            warnings.append(str(exc))
    return out


def _stored_documents(store: Store, *, drop: set[str]) -> tuple[list[Passage], list[Any]]:
    """The documents' passages the index holds, but those of ``drop``, and their vectors: read
    from the word index (built from the store when it is not here)."""
    from assistant.lexical import document_index

    index = document_index(store)
    if index is None:
        return [], []
    kept = [p for p in index.passages() if p.source not in drop]
    return kept, list(index.vectors([p.id for p in kept]))


def _document_count(store: Store) -> int:
    """How many document passages the index holds (from the word index, nothing read)."""
    from assistant.lexical import document_index

    index = document_index(store)
    return len(index) if index is not None else 0


def _save_words(folder: Path | None, passages: list[Passage], vectors: list[Any]) -> None:
    """Write the word index of the documents, unless there are none."""
    if folder is not None and passages:
        DocumentIndex.build(passages, vectors).save(folder)


def _prune_words(settings: Settings, *, keep: Path | None) -> None:
    """Delete word indexes of earlier builds once no running app can still be reading them
    (the same grace as the collections')."""
    root = words_root(settings)
    if not root.is_dir():
        return
    cutoff = time.time() - settings.index_grace_seconds
    for folder in root.iterdir():
        if folder != keep and folder.stat().st_mtime <= cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _bar(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="Embedding passages", unit="passage", disable=not show)


def _set_aside_if_unreadable(settings: Settings) -> list[str]:
    """Move an embedded index that cannot be read out of the way (a forced rebuild starts
    afresh); the warning says where it went. Nothing is deleted."""
    path = settings.chroma_path
    if settings.chroma_url or not (path / "chroma.sqlite3").is_file():
        return []
    problem = _database_problem(path / "chroma.sqlite3")
    if problem is None:
        try:
            _stored_manifest(settings)
            return []
        except IndexUnusable as exc:
            problem = str(exc).split(". ")[0]
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(aside)
    return [
        f"The index at {path} could not be read ({problem}); it was moved to "
        f"{aside} and a new one was built. Delete {aside} once you no longer need it."
    ]


def _database_problem(database: Path) -> str | None:
    """What SQLite's own check finds wrong with the index database, or None when it is sound."""
    try:
        found = _query(database, "PRAGMA quick_check")
    except sqlite3.Error as exc:
        return str(exc)
    return None if found == ["ok"] else "; ".join(found[:3])


def _query(database: Path, sql: str) -> list[str]:
    """The first column of ``sql``'s rows, read from ``database`` opened read-only."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return [str(row[0]) for row in connection.execute(sql)]


_SEGMENT_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _remove_orphan_segments(settings: Settings) -> list[Path]:
    """Delete the vector folders of collections that are gone (Chroma leaves them behind
    when a collection is deleted, or when a build is killed)."""
    path = settings.chroma_path
    database = path / "chroma.sqlite3"
    if settings.chroma_url or not database.is_file():
        return []
    try:
        live = set(_query(database, "SELECT id FROM segments"))
    except sqlite3.Error:
        return []  # a store of another layout: leave its folders alone
    orphans = [
        folder
        for folder in path.iterdir()
        if folder.is_dir() and _SEGMENT_FOLDER.fullmatch(folder.name) and folder.name not in live
    ]
    for folder in orphans:
        shutil.rmtree(folder, ignore_errors=True)
    return orphans


# Compact the store's database once this share of its pages is free (deleted collections).
FREE_SHARE = 0.25
_FULL_TEXT = "embedding_fulltext_search"  # Chroma's FTS5 table of passage text


def compact(settings: Settings) -> bool:
    """VACUUM the store's SQLite file when deleted collections left much of it free.

    SQLite keeps freed pages for reuse, and the full-text index keeps deletion markers for the
    passages of deleted collections, so each rebuild would otherwise leave the file bigger. The
    full-text index is merged first (FTS5's "optimize"), then the file is rewritten. Both wait
    a few seconds for readers (a running app) and are skipped, to be tried at the next ingest,
    if one is still busy. Returns whether the file was compacted.
    """
    database = settings.chroma_path / "chroma.sqlite3"
    if settings.chroma_url or not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(database, timeout=5)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if _FULL_TEXT in tables:
                with connection:
                    connection.execute(f"INSERT INTO {_FULL_TEXT}({_FULL_TEXT}) VALUES('optimize')")
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            free = connection.execute("PRAGMA freelist_count").fetchone()[0]
            if not pages or free / pages < FREE_SHARE:
                return False
            connection.execute("VACUUM")
    except sqlite3.Error as exc:
        log.info("Not compacting %s this time: %s", database, exc)
        return False
    return True


def _check_writable(settings: Settings) -> None:
    if settings.chroma_url:
        return
    path = settings.chroma_path
    probe_dir = path if path.exists() else path.parent
    try:
        probe_dir.mkdir(parents=True, exist_ok=True)
        probe = probe_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise IndexUnusable(
            f"Cannot write the index at {path}: {exc.strerror or exc}. "
            "Choose a writable folder with ASSISTANT_CHROMA_PATH."
        ) from exc
