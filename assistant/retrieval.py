"""Hybrid retrieval: dense (Chroma, raw cosine distance) plus BM25 (bm25s), fused by RRF.

Hard restrictions (passage kinds) arrive as ``Filters``; the query plan's element and tier arrive
as a ``Boost``, which ranks matching passages higher without hiding the others.

    retriever = HybridRetriever(store=store, passages=store.passages())
    hits = retriever.search("respite benefit", k=5)
    docs = retriever.invoke("respite benefit")   # LangChain Documents
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, ConfigDict, PrivateAttr

from assistant.schema import Passage
from assistant.store import Store

RRF_K = 60
# Boosts on the fused RRF scale (1/61 is a first place in one list): a sure element is worth
# about as much as ranking first in one of the two lists.
ELEMENT_BONUS = 1 / (RRF_K + 1)
TIER_BONUS = 0.25 / (RRF_K + 1)
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


class Filters(BaseModel):
    """Hard metadata restrictions on a search (the kinds of passage an answer may use)."""

    element: str | None = None
    tier: str | None = None
    kinds: tuple[str, ...] | None = None

    def accepts(self, passage: Passage) -> bool:
        return (
            (self.element is None or passage.element == self.element)
            and (self.tier is None or passage.tier == self.tier)
            and (self.kinds is None or passage.kind in self.kinds)
        )

    def where(self) -> dict[str, Any] | None:
        """The same restriction as a Chroma ``where`` clause."""
        clauses: list[dict[str, Any]] = []
        if self.element:
            clauses.append({"element": self.element})
        if self.tier:
            clauses.append({"tier": self.tier})
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class Boost(BaseModel):
    """Soft preferences from the query plan: a matching passage ranks higher, nothing is hidden.

    A plan's own documents (no element) and other elements' passages still win when they fit
    the question best.
    """

    elements: dict[str, float] = {}
    tier: str | None = None

    def bonus(self, passage: Passage) -> float:
        # A plan's document has no element: it is not another element's passage, so it gets the
        # plan's best element weight and competes on its words alone.
        weight = (
            max(self.elements.values(), default=0.0)
            if passage.kind == "document"
            else self.elements.get(passage.element or "", 0.0)
        )
        score = weight * ELEMENT_BONUS
        if self.tier and passage.tier == self.tier:
            score += TIER_BONUS
        return score


class Hit(BaseModel):
    """A ranked passage with the evidence behind its rank."""

    passage: Passage
    score: float
    distance: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None


class HybridRetriever(BaseRetriever):
    """Dense + BM25 with reciprocal rank fusion over the passages of one index."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Store
    passages: list[Passage]
    k: int = 8
    filters: Filters = Filters()
    depth: int = 24
    memory_ids: list[str] = []
    memory_vectors: Any = None
    _by_id: dict[str, Passage] = PrivateAttr(default_factory=dict)
    _bm25: Any = PrivateAttr(default=None)
    _documents: bool = PrivateAttr(default=False)
    _rows_by_id: dict[str, int] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        import bm25s

        self._by_id = {p.id: p for p in self.passages}
        self._documents = any(p.kind == "document" for p in self.passages)
        self._rows_by_id = {pid: row for row, pid in enumerate(self.memory_ids)}
        corpus = [tokens(f"{p.title} {p.lead or ''} {p.text}") for p in self.passages]
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus, show_progress=False)

    def passage(self, pid: str) -> Passage:
        return self._by_id[pid]

    def lexical(self, query: str, *, filters: Filters, limit: int) -> list[tuple[str, float]]:
        """BM25 ranking of the passages that pass ``filters``; zero scores are dropped."""
        query_tokens = tokens(query)
        if not query_tokens:
            return []
        import numpy as np

        scores = self._bm25.get_scores(query_tokens)
        ranked: list[tuple[str, float]] = []
        for i in np.argsort(-scores):  # best first; stop at the first zero or at the limit
            if scores[i] <= 0 or len(ranked) == limit:
                break
            passage = self.passages[i]
            if filters.accepts(passage):
                ranked.append((passage.id, float(scores[i])))
        return ranked

    @property
    def has_documents(self) -> bool:
        """Whether the index holds any of a plan's own documents."""
        return self._documents

    def _rows(self, ids: list[str]) -> list[int]:
        return [self._rows_by_id[pid] for pid in ids if pid in self._rows_by_id]

    def similarities(self, vector: Any, ids: list[str]) -> list[float]:
        """Cosine of ``vector`` with each in-memory passage of ``ids`` (same order)."""
        import numpy as np

        rows = self._rows(ids)
        return [float(v) for v in np.asarray(self.memory_vectors)[rows] @ np.asarray(vector)]

    def mean_vector(self, ids: list[str]) -> Any:
        """The normalised mean of the in-memory vectors of ``ids`` (zeros when none)."""
        import numpy as np

        rows = self._rows(ids)
        if not rows:
            return np.zeros(np.asarray(self.memory_vectors).shape[1], dtype=np.float32)
        mean = np.asarray(self.memory_vectors)[rows].mean(axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)

    def dense(
        self, query: str, *, filters: Filters, vector: list[float] | None
    ) -> list[tuple[str, float]]:
        """(id, cosine distance), nearest first: the toolkit's passages from memory, a plan's
        documents (if any) from Chroma."""
        if self.memory_vectors is None:
            return self.store.dense(query, k=self.depth, where=filters.where(), vector=vector)
        import numpy as np

        point = np.asarray(
            vector if vector is not None else self.store.embed_query(query), dtype=np.float32
        )
        sims = self.memory_vectors @ point
        found: list[tuple[str, float]] = []
        for row in np.argsort(-sims):
            passage = self._by_id.get(self.memory_ids[row])
            if passage is not None and filters.accepts(passage):
                found.append((passage.id, 1.0 - float(sims[row])))
                if len(found) == self.depth:
                    break
        if self._documents and (filters.kinds is None or "document" in filters.kinds):
            where = Filters(element=filters.element, tier=filters.tier, kinds=("document",))
            found += self.store.dense(
                query, k=self.depth, where=where.where(), vector=point.tolist()
            )
            found.sort(key=lambda pair: pair[1])
        return found[: self.depth]

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        vector: list[float] | None = None,
        boost: Boost | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query`` under ``filters``, fused by RRF, then boosted."""
        filters = filters or self.filters
        k = k or self.k
        dense = self.dense(query, filters=filters, vector=vector)
        lexical = self.lexical(query, filters=filters, limit=self.depth)
        fused: dict[str, Hit] = {}
        for rank, (pid, distance) in enumerate(dense, start=1):
            if pid not in self._by_id:
                continue
            # model_construct: the values are ours and already typed; validation is per-query cost.
            fused[pid] = Hit.model_construct(
                passage=self._by_id[pid],
                score=1 / (RRF_K + rank),
                distance=distance,
                dense_rank=rank,
                lexical_rank=None,
            )
        for rank, (pid, _score) in enumerate(lexical, start=1):
            hit = fused.get(pid) or Hit.model_construct(
                passage=self._by_id[pid],
                score=0.0,
                distance=None,
                dense_rank=None,
                lexical_rank=None,
            )
            hit.score += 1 / (RRF_K + rank)
            hit.lexical_rank = rank
            fused[pid] = hit
        if boost is not None:
            for hit in fused.values():
                hit.score += boost.bonus(hit.passage)
        return sorted(fused.values(), key=lambda h: -h.score)[:k]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                id=hit.passage.id,
                page_content=hit.passage.text,
                metadata={
                    **hit.passage.model_dump(exclude={"text"}),
                    "score": hit.score,
                    "distance": hit.distance,
                },
            )
            for hit in self.search(query)
        ]
