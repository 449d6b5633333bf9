"""Build the index from the corpus: parse, embed, store; skip when nothing changed.

summary = build_index(Settings(), force=False)
print(summary.line())
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from assistant.config import Settings
from assistant.embeddings import make_embeddings, model_fingerprint
from assistant.errors import IndexUnusable
from assistant.passages import corpus_passages, extra_files
from assistant.store import Store

# Bump when passage ids, texts or metadata change shape: it makes every old index stale.
SCHEMA_VERSION = 1
_CODE_FILES = ("toolkit.py", "passages.py")


class IngestSummary(BaseModel):
    """What one run of the ingest did."""

    skipped: bool
    collection: str
    passages: int
    by_kind: dict[str, int]
    elements: int
    seconds: float
    warnings: list[str]

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind.items()))
        verb = "Index up to date" if self.skipped else "Indexed"
        return (
            f"{verb}: {self.passages} passages ({kinds}); {self.elements} elements; "
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
            digest[f"corpus:{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    here = Path(__file__).parent
    for name in _CODE_FILES:
        digest[f"code:{name}"] = hashlib.sha256((here / name).read_bytes()).hexdigest()
    digest["model"] = hashlib.sha256(model_fingerprint(settings).encode()).hexdigest()
    return digest


def index_is_current(settings: Settings) -> bool:
    """True when an index exists and was built from the current corpus, model and parser."""
    if not settings.chroma_url and not (settings.chroma_path / "chroma.sqlite3").is_file():
        return False
    from assistant.store import connect

    store = Store(client=connect(settings, create=False), settings=settings, embeddings=None)  # type: ignore[arg-type]
    return store.manifest() == corpus_manifest(settings)


def build_index(
    settings: Settings, *, force: bool = False, show_progress: bool = True
) -> IngestSummary:
    """Parse the corpus and (re)build the index unless it is already current.

    Args:
        settings: paths, collection and model.
        force: rebuild even when the manifest shows nothing changed.
        show_progress: draw a progress bar on stderr.

    Returns:
        The run's summary. Raises ``CorpusError``, ``IndexUnusable``, ``StoreUnavailable`` or
        ``ModelError``; in every case the previous index stays as it was.
    """
    started = time.perf_counter()
    toolkit, passages, warnings = corpus_passages(settings.corpus_dir)
    manifest = corpus_manifest(settings)
    _check_writable(settings)
    skipped = not force and index_is_current(settings)
    if skipped:
        store = Store.open(settings, None)  # type: ignore[arg-type]
        name = store.active_name()
        store.prune(keep=name)  # collections left behind by a build that died
    else:
        store = Store.open(settings, make_embeddings(settings), create=True)
        from tqdm import tqdm

        with tqdm(
            total=len(passages),
            desc="Embedding passages",
            unit="passage",
            disable=not show_progress,
        ) as bar:
            name = store.rebuild(passages, manifest, progress=bar.update)
    return IngestSummary(
        skipped=skipped,
        collection=name,
        passages=len(passages),
        by_kind={str(kind): n for kind, n in Counter(p.kind for p in passages).items()},
        elements=len(toolkit.elements),
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )


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
