"""Hybrid retrieval: dense (cosine) plus BM25 (bm25s), fused by RRF.

The toolkit's own passages (a few hundred) are ranked in memory. A plan's documents, however
many, are ranked by Chroma's HNSW index (dense) and a memory-mapped bm25s index (words), each
asked for its top few only: the work per question does not grow with the plan's documents.

Hard restrictions (passage kinds) arrive as ``Filters``; the query plan's element and tier arrive
as a ``Boost``, which ranks matching passages higher without hiding the others.

    retriever = HybridRetriever(store=store, passages=toolkit_passages, documents=index)
    hits = retriever.search("respite benefit", k=5)
    docs = retriever.invoke("respite benefit")   # LangChain Documents
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, ConfigDict, PrivateAttr

from assistant.errors import StoreUnavailable
from assistant.lexical import DocumentIndex, passage_tokens, tokens
from assistant.schema import Passage
from assistant.store import Store

log = logging.getLogger(__name__)
DOCUMENTS_UNSEARCHED = (
    "Your plan's own documents were not searched: the index server is not answering. "
    "This answer is from the toolkit alone."
)
RRF_K = 60
# Boosts on the fused RRF scale (1/61 is a first place in one list): a sure element is worth
# about as much as ranking first in one of the two lists.
ELEMENT_BONUS = 1 / (RRF_K + 1)
TIER_BONUS = 0.25 / (RRF_K + 1)
_REMEMBERED = 16  # document searches kept: a few turns' worth
_RESCORED = 5  # the words' best document hits, also scored by exact cosine

__all__ = ["Boost", "Filters", "Hit", "HybridRetriever", "tokens"]


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

    def admits_documents(self) -> bool:
        """Whether a plan's document (no element, no tier) can pass."""
        return (
            self.element is None
            and self.tier is None
            and (self.kinds is None or "document" in self.kinds)
        )


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
    """Dense + BM25 with reciprocal rank fusion: the toolkit in memory, documents from indexes.

    ``passages`` and ``memory_vectors`` are the toolkit's passages and their embeddings (same
    order); ``documents`` is the word index of a plan's own documents, if it has any.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Store
    passages: list[Passage]
    memory_vectors: Any
    documents: DocumentIndex | None = None
    k: int = 8
    filters: Filters = Filters()
    depth: int = 24
    _by_id: dict[str, Passage] = PrivateAttr(default_factory=dict)
    _rows_by_id: dict[str, int] = PrivateAttr(default_factory=dict)
    _bm25: Any = PrivateAttr(default=None)
    # A turn searches its question several times (plan, answer, resources, documents): the
    # documents' top hits depend only on the words or the vector, so each is fetched once.
    _document_hits: OrderedDict[Any, list[tuple[Passage, float]]] = PrivateAttr(
        default_factory=OrderedDict
    )
    _problems: threading.local = PrivateAttr(default_factory=threading.local)

    def model_post_init(self, context: Any, /) -> None:
        import bm25s
        import numpy as np

        self.memory_vectors = np.asarray(self.memory_vectors, dtype=np.float32)
        self._by_id = {p.id: p for p in self.passages}
        self._rows_by_id = {p.id: row for row, p in enumerate(self.passages)}
        self._bm25 = bm25s.BM25()
        self._bm25.index([passage_tokens(p) for p in self.passages], show_progress=False)

    def take_problem(self) -> str | None:
        """What this thread's searches could not do since the last call (then forgotten)."""
        note: str | None = getattr(self._problems, "note", None)
        self._problems.note = None
        return note

    def clear_cache(self) -> None:
        """Forget remembered embeddings and document hits (benchmarks time new questions)."""
        self.store.clear_cache()
        self._document_hits.clear()

    def passage(self, pid: str) -> Passage:
        """A toolkit passage from memory, or a plan document's from its word index."""
        found = self._by_id.get(pid) or (self.documents.get(pid) if self.documents else None)
        if found is None:
            raise KeyError(pid)
        return found

    @property
    def has_documents(self) -> bool:
        """Whether the index holds any of a plan's own documents."""
        return self.documents is not None and len(self.documents) > 0

    def document_ids(self) -> set[str]:
        """Every document passage id (reads the whole word index: for evaluations)."""
        return self.documents.ids() if self.documents else set()

    def lexical(
        self, query: str, *, filters: Filters, limit: int
    ) -> tuple[list[tuple[Passage, float]], list[tuple[Passage, float]]]:
        """BM25 rankings of the toolkit's passages and of the documents that pass ``filters``.

        Two lists: scores from two indexes are not on one scale, so each is fused by its rank.
        """
        query_tokens = tokens(query)
        if not query_tokens:
            return [], []
        import numpy as np

        scores = self._bm25.get_scores(query_tokens)
        toolkit: list[tuple[Passage, float]] = []
        for i in np.argsort(-scores):  # a few hundred passages: stop at the first zero
            if scores[i] <= 0 or len(toolkit) == limit:
                break
            if filters.accepts(self.passages[i]):
                toolkit.append((self.passages[i], float(scores[i])))
        documents: list[tuple[Passage, float]] = []
        if self.documents is not None and filters.admits_documents():
            index = self.documents
            documents = self._remember(
                ("words", limit, *query_tokens), lambda: index.search(query_tokens, k=limit)
            )
        return toolkit, documents

    def _remember(
        self, key: Any, fetch: Callable[[], list[tuple[Passage, float]]]
    ) -> list[tuple[Passage, float]]:
        found = self._document_hits.get(key)
        if found is None:
            found = self._document_hits[key] = fetch()
            while len(self._document_hits) > _REMEMBERED:
                self._document_hits.popitem(last=False)
        return found

    def _rows(self, ids: list[str]) -> list[int]:
        return [self._rows_by_id[pid] for pid in ids if pid in self._rows_by_id]

    def similarities(self, vector: Any, ids: list[str]) -> list[float]:
        """Cosine of ``vector`` with each toolkit passage of ``ids`` (same order)."""
        import numpy as np

        rows = self._rows(ids)
        return [float(v) for v in self.memory_vectors[rows] @ np.asarray(vector)]

    def mean_vector(self, ids: list[str]) -> Any:
        """The normalised mean of the toolkit vectors of ``ids`` (zeros when none)."""
        import numpy as np

        rows = self._rows(ids)
        if not rows:
            return np.zeros(self.memory_vectors.shape[1], dtype=np.float32)
        mean = self.memory_vectors[rows].mean(axis=0)
        return mean / (np.linalg.norm(mean) or 1.0)

    def dense(
        self,
        query: str,
        *,
        filters: Filters,
        vector: list[float] | None,
        candidates: Sequence[Passage] = (),
    ) -> tuple[list[tuple[Passage, float]], list[tuple[Passage, float]]]:
        """(passage, cosine distance) lists, nearest first: the toolkit's passages from memory
        and a plan's documents (if any) from Chroma's HNSW index.

        Two lists, like ``lexical``: the toolkit's passages keep the ranks they have without any
        documents, so adding documents never reorders the toolkit's own answers. HNSW is
        approximate: document ``candidates`` (the words' best hits) are scored exactly and
        join the documents' list where their distance puts them.
        """
        import numpy as np

        point = np.asarray(
            vector if vector is not None else self.store.embed_query(query), dtype=np.float32
        )
        sims = self.memory_vectors @ point
        found: list[tuple[Passage, float]] = []
        for row in np.argsort(-sims):
            passage = self.passages[row]
            if filters.accepts(passage):
                found.append((passage, 1.0 - float(sims[row])))
                if len(found) == self.depth:
                    break
        documents: list[tuple[Passage, float]] = []
        if self.documents is not None and filters.admits_documents():
            index = self.documents
            try:
                documents = self._remember(
                    ("dense", self.depth, point.tobytes()),
                    lambda: self._nearest_documents(point.tolist()),
                )
            except StoreUnavailable as exc:
                # The toolkit is in memory and still answers; the answer says what is missing.
                log.warning("Documents not searched: %s", exc)
                self._problems.note = DOCUMENTS_UNSEARCHED
            seen = {passage.id for passage, _ in documents}
            extra = [(p, index.distance(p.id, point)) for p in candidates if p.id not in seen]
            if extra:
                documents = sorted([*documents, *extra], key=lambda pair: pair[1])[: self.depth]
        return found, documents

    def _nearest_documents(self, vector: list[float]) -> list[tuple[Passage, float]]:
        """Documents among the store's nearest passages, read from the word index.

        No filter: a Chroma filter costs a pass over every document's metadata, and the
        toolkit's passages among the results are already ranked from memory.
        """
        found: list[tuple[Passage, float]] = []
        if self.documents is None:
            return found
        for pid, distance in self.store.dense(k=self.depth, vector=vector):
            passage = self.documents.get(pid)
            if passage is not None:
                found.append((passage, distance))
        return found

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        vector: list[float] | None = None,
        boost: Boost | None = None,
        answered: Sequence[str] = (),
    ) -> list[Hit]:
        """The ``k`` best passages for ``query`` under ``filters``, fused by RRF, then boosted;
        ``answered``: passage ids that answered similar questions, best first (one more list)."""
        filters = filters or self.filters
        k = k or self.k
        fused: dict[str, Hit] = {}
        toolkit_words, document_words = self.lexical(query, filters=filters, limit=self.depth)
        toolkit_near, documents_near = self.dense(
            query,
            filters=filters,
            vector=vector,
            candidates=[p for p, _ in document_words[:_RESCORED]],
        )
        rankings = [
            ("dense", toolkit_near),
            ("lexical", toolkit_words),
            ("dense", documents_near),
            ("lexical", document_words),
        ]
        for source, ranking in rankings:
            for rank, (passage, value) in enumerate(ranking, start=1):
                hit = fused.get(passage.id)
                if hit is None:
                    # model_construct: the values are ours and already typed; validation is
                    # per-query cost.
                    hit = fused[passage.id] = Hit.model_construct(
                        passage=passage,
                        score=0.0,
                        distance=None,
                        dense_rank=None,
                        lexical_rank=None,
                    )
                hit.score += 1 / (RRF_K + rank)
                if source == "dense":
                    hit.distance, hit.dense_rank = value, rank
                else:
                    hit.lexical_rank = rank
        if answered:
            self._reorder_toolkit(fused, answered, filters)
        if boost is not None:
            for hit in fused.values():
                hit.score += boost.bonus(hit.passage)
        return sorted(fused.values(), key=lambda h: -h.score)[:k]

    def _reorder_toolkit(
        self, fused: dict[str, Hit], answered: Sequence[str], filters: Filters
    ) -> None:
        """Fuse ``answered`` (the passages that answered similar questions, best first) as one
        more ranked list, for the toolkit's passages only, then shift them all back so the
        toolkit's best keeps its score: the vote reorders the toolkit's passages, and a plan's
        document still competes with the same best passage as before."""
        toolkit = [hit for hit in fused.values() if hit.passage.kind != "document"]
        if not toolkit:
            return
        best = max(hit.score for hit in toolkit)
        voted = [
            passage
            for pid in answered
            if (passage := self._by_id.get(pid)) is not None and filters.accepts(passage)
        ]
        for rank, passage in enumerate(voted, start=1):
            hit = fused.get(passage.id)
            if hit is None:
                hit = fused[passage.id] = Hit.model_construct(
                    passage=passage, score=0.0, distance=None, dense_rank=None, lexical_rank=None
                )
                toolkit.append(hit)
            hit.score += 1 / (RRF_K + rank)
        shift = max(hit.score for hit in toolkit) - best
        for hit in toolkit:
            hit.score -= shift

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
