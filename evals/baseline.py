"""The naive baseline: what a default LangChain tutorial gives a user.

The raw toolkit files are split with ``RecursiveCharacterTextSplitter`` (1000 characters, 200
overlap), embedded with the same MiniLM model as the assistant, stored in a real Chroma
collection in a temporary directory, and searched dense top-4 with the question alone. Every
retrieved chunk counts as cited and it never refuses.

    with NaiveBaseline(embeddings=bot.embeddings, corpus_dir=Path("corpus")) as baseline:
        observed = baseline.observe("What should we do next on equity?")
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.config import OVERVIEW_FILE, TOOLKIT_FILE
from assistant.errors import CorpusError, IndexUnusable
from evals.metrics import CitedPassage, Observed

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
RANK_K = 5  # recall@5 / MRR are measured on the same ranking, one deeper than what is cited
COLLECTION = "naive_baseline"


def split_corpus(corpus_dir: Path) -> list[Document]:
    """The toolkit and overview files split the tutorial way, with ids ``baseline.<n>``."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    documents: list[Document] = []
    for name in (TOOLKIT_FILE, OVERVIEW_FILE):
        path = corpus_dir / name
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(
                f"Baseline cannot read {path}: {exc}. "
                "Set ASSISTANT_CORPUS_DIR to the corpus folder."
            ) from exc
        documents.extend(splitter.create_documents([text], metadatas=[{"source": name}]))
    for number, document in enumerate(documents, start=1):
        document.id = f"baseline.{number}"
    return documents


class NaiveBaseline:
    """Dense top-4 over 1000/200 character chunks in a throwaway Chroma collection."""

    def __init__(
        self, *, embeddings: Embeddings, corpus_dir: Path, workdir: Path | None = None
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma

        self.documents = split_corpus(corpus_dir)
        self._owned = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="plan-guide-baseline-"))
        try:
            self._client: ClientAPI | None = chromadb.PersistentClient(
                path=str(self.workdir), settings=ChromaSettings(anonymized_telemetry=False)
            )
            self._store = Chroma(
                client=self._client, collection_name=COLLECTION, embedding_function=embeddings
            )
            self._store.add_documents(self.documents, ids=[str(d.id) for d in self.documents])
        except Exception as exc:  # chromadb raises many types; all mean "cannot build"
            self.close()
            raise IndexUnusable(
                f"Cannot build the baseline index in {self.workdir}: {exc}. "
                "Check the directory is writable, or run with --no-baseline."
            ) from exc

    def chunk_ids(self) -> set[str]:
        return {str(d.id) for d in self.documents}

    def observe(self, question: str) -> Observed:
        """Search and 'answer': the top-4 chunks are the citations, the top-5 the ranking."""
        start = time.perf_counter()
        ranked = self._store.similarity_search(question, k=RANK_K)
        latency = time.perf_counter() - start
        cited = [
            CitedPassage(marker=n, id=str(d.id), text=d.page_content, title=d.metadata["source"])
            for n, d in enumerate(ranked[:TOP_K], start=1)
        ]
        text = "\n\n".join(f"[{c.marker}] {c.text}" for c in cited)
        return Observed(
            kind=None,
            text=text,
            citations=cited,
            refused=False,
            retrieved_ids=[str(d.id) for d in ranked],
            retrieved_texts=[d.page_content for d in ranked],
            latency_s=latency,
        )

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._owned:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NaiveBaseline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
