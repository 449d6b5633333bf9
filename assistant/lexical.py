"""BM25 over a plan's own documents: built at ingest, saved beside the index, memory-mapped.

The toolkit's passages are few and ranked in memory (``retrieval.py``). A plan's documents can
be tens of thousands of passages, so their BM25 index is built once, saved with bm25s, and
opened with ``mmap``: a question costs its own terms' postings and one top-k, and opening it
reads no passage text. Passages come back from the saved corpus file, one line each.

    DocumentIndex.build(passages, vectors).save(folder)
    index = DocumentIndex.open(folder)
    index.search(tokens("overnight respite nights"), k=24)   # [(Passage, score), ...]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.errors import IndexUnusable
from assistant.schema import Passage

if TYPE_CHECKING:
    from assistant.store import Store

_IDS = "passage-ids.json"  # row -> passage id, to read a passage found by the dense index
_VECTORS = "vectors.npy"  # row -> embedding, to score the words' best hits exactly
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "they",
        "this",
        "to",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "me",
        "my",
        "about",
        "any",
        "into",
        "more",
        "most",
        "than",
        "then",
    ]
)


def _quiet_bm25s() -> None:
    import logging

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import


def tokens(text: str) -> list[str]:
    """Lower-case word tokens without stop words (hyphenated words also split)."""
    out: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if token in _STOP:
            continue
        out.append(token)
        if "-" in token:
            out.extend(part for part in token.split("-") if part not in _STOP)
    return out


def passage_tokens(passage: Passage) -> list[str]:
    """The words a passage is found by: its title, lead and text."""
    return tokens(f"{passage.title} {passage.lead or ''} {passage.text}")


class DocumentIndex:
    """BM25 (bm25s) over passages, with the passages themselves kept beside it."""

    def __init__(self, bm25: Any, corpus: Any, ids: Sequence[str], vectors: Any) -> None:
        self._bm25 = bm25
        self._corpus = corpus
        self._rows = {pid: row for row, pid in enumerate(ids)}
        self._vectors = vectors

    @classmethod
    def build(cls, passages: Sequence[Passage], vectors: Any) -> DocumentIndex:
        """The index of ``passages``; ``vectors`` are their embeddings (rows in the same order)."""
        import bm25s
        import numpy as np

        _quiet_bm25s()
        bm25 = bm25s.BM25()
        bm25.index([passage_tokens(p) for p in passages], show_progress=False)
        corpus = [p.model_dump(exclude_none=True) for p in passages]
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(passages), -1)
        return cls(bm25, corpus, [p.id for p in passages], matrix)

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` whole: a reader sees the old folder or the new one."""
        import numpy as np
        from bm25s.utils.corpus import JsonlCorpus

        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        self._bm25.save(str(partial), corpus=self._corpus, show_progress=False)
        JsonlCorpus(str(partial / "corpus.jsonl"), show_progress=False)  # writes its line index
        (partial / _IDS).write_text(json.dumps(list(self._rows)), "utf-8")
        np.save(partial / _VECTORS, np.asarray(self._vectors, dtype=np.float32))
        shutil.rmtree(folder, ignore_errors=True)
        try:
            partial.rename(folder)
        except OSError:  # another process saved the same index first: keep theirs
            shutil.rmtree(partial, ignore_errors=True)

    @classmethod
    def open(cls, folder: Path) -> DocumentIndex:
        """The saved index, memory-mapped. Raises ``IndexUnusable`` when it cannot be read."""
        import bm25s
        import numpy as np

        _quiet_bm25s()
        try:
            bm25 = bm25s.BM25.load(str(folder), load_corpus=True, mmap=True, show_progress=False)
            ids = json.loads((folder / _IDS).read_text("utf-8"))
            vectors = np.load(folder / _VECTORS, mmap_mode="r")
        except Exception as exc:  # bm25s raises OSError, ValueError, JSON errors...
            raise IndexUnusable(
                f"Cannot read the document word index at {folder}: {exc}. "
                "Rebuild it with `python ingest.py --force`."
            ) from exc
        return cls(bm25, bm25.corpus, ids, vectors)

    def __len__(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def get(self, pid: str) -> Passage | None:
        """The passage with this id, or None when it is not one of the documents'."""
        row = self._rows.get(pid)
        return None if row is None else Passage.model_validate(self._corpus[row])

    def ids(self) -> set[str]:
        return set(self._rows)

    def vectors(self, ids: Sequence[str]) -> Any:
        """The embeddings of ``ids`` (all in the index), one row each."""
        import numpy as np

        return np.asarray(self._vectors[[self._rows[pid] for pid in ids]], dtype=np.float32)

    def distance(self, pid: str, point: Any) -> float:
        """Exact cosine distance of one passage to a (normalised) query vector."""
        return 1.0 - float(self._vectors[self._rows[pid]] @ point)

    def passages(self) -> list[Passage]:
        """Every passage in the index, in order (reads the whole corpus file)."""
        return [Passage.model_validate(self._corpus[i]) for i in range(len(self))]

    def search(self, query_tokens: list[str], *, k: int) -> list[tuple[Passage, float]]:
        """The ``k`` best passages for ``query_tokens`` by BM25, best first; zero scores dropped."""
        import numpy as np

        if not query_tokens or not len(self):
            return []
        scores = self._bm25.get_scores(query_tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [
            (Passage.model_validate(self._corpus[int(i)]), float(scores[i]))
            for i in top
            if scores[i] > 0
        ]


def words_root(settings: Settings) -> Path:
    """Where word indexes live: beside the embedded index, or a local folder for a server."""
    return settings.chroma_path / "words"


def words_folder(settings: Settings, manifest: Mapping[str, Any]) -> Path:
    """The word index of the index built from ``manifest`` (one folder per build)."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    return words_root(settings) / digest


def document_index(store: Store) -> DocumentIndex | None:
    """The word index of the store's documents, or None when the index has no documents.

    A process that has no local copy (another machine serving from the same Chroma server)
    builds it once from the store.
    """
    name = (store.pointer() or {}).get("words")
    if not name:
        return None
    folder = words_root(store.settings) / str(name)
    if not all((folder / name).is_file() for name in ("params.index.json", _IDS, _VECTORS)):
        DocumentIndex.build(*store.documents()).save(folder)
    return DocumentIndex.open(folder)
