"""The Chroma index: an embedded ``PersistentClient`` or, with ``chroma_url``, a Chroma server.

Builds are atomic. Passages go into a fresh versioned collection (``toolkit--<stamp>``); only
when it is complete does the pointer collection (``toolkit``) switch its ``active`` metadata to
it. A build that dies half-way leaves the pointer, and so the previous index, untouched.

    store = Store.open(settings, embeddings)
    hits = store.dense("respite benefit", k=5)   # [(passage id, cosine distance), ...]
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from assistant.config import Settings
from assistant.errors import IndexMissing, IndexUnusable, StoreUnavailable
from assistant.schema import Passage

if TYPE_CHECKING:
    import chromadb
    from langchain_core.embeddings import Embeddings

VERSION_SEP = "--"
VECTOR_CACHE_SIZE = 1024
_RETIRED_KEPT = 20  # retirement times remembered (older collections are long gone)
_META_KEYS = ("kind", "element", "tier", "subgoal", "lead", "source", "title", "text")


def connect(settings: Settings, *, create: bool) -> chromadb.ClientAPI:
    """A Chroma client for ``settings``; errors name the path or URL and the next step."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        _heartbeat(settings)
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises ValueError for a refused connection
            raise StoreUnavailable(
                f"The Chroma server at {settings.chroma_url} does not answer ({exc}). "
                "Start it (`chroma run --path .chroma-server`) or unset ASSISTANT_CHROMA_URL "
                "to use the embedded index."
            ) from exc
        _limit_wait(client, settings.chroma_timeout_seconds)
        return client
    path = settings.chroma_path
    if not create and not (path / "chroma.sqlite3").is_file():
        raise IndexMissing(
            f"No index at {path} (collection '{settings.collection}'). "
            "Run `python ingest.py` (or `make run`) to build it."
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:
        raise IndexUnusable(
            f"Cannot open the index at {path}: {exc}. Check that the folder is writable, or "
            f"move it aside and rebuild with `python ingest.py --force`."
        ) from exc


def _heartbeat(settings: Settings) -> None:
    """Ask the server's heartbeat, bounded by ``chroma_timeout_seconds``.

    chromadb's client checks the server in its constructor with no time limit: a hung server
    would hang the app's start. A refused connection is left to the constructor's own message.
    """
    import httpx

    url = f"{str(settings.chroma_url).rstrip('/')}/api/v2/heartbeat"
    try:
        httpx.get(url, timeout=settings.chroma_timeout_seconds)
    except httpx.TimeoutException as exc:
        raise StoreUnavailable(
            f"The index server at {settings.chroma_url} is not answering (no reply within "
            f"{settings.chroma_timeout_seconds:g} s). Check that it is running and not "
            "overloaded, or unset ASSISTANT_CHROMA_URL to use the embedded index."
        ) from exc
    except httpx.HTTPError:
        return


def _limit_wait(client: Any, seconds: float) -> None:
    """Give up on a Chroma server that does not reply within ``seconds``.

    chromadb's HTTP client waits forever (its httpx session is made with ``timeout=None`` and
    takes no setting): a hung server would hold every request that reaches it.
    """
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(seconds)


def _to_metadata(passage: Passage) -> dict[str, str]:
    data = passage.model_dump()
    return {key: data[key] for key in _META_KEYS if data.get(key) is not None}


def _to_passage(pid: str, meta: dict[str, Any]) -> Passage:
    return Passage.model_validate({"id": pid, **{key: meta.get(key) for key in _META_KEYS}})


class Store:
    """Reads and writes the versioned index behind one pointer collection."""

    def __init__(self, *, client: chromadb.ClientAPI, settings: Settings, embeddings: Embeddings):
        self.client = client
        self.settings = settings
        self.embeddings = embeddings
        self._vectorstore: Any = None
        # One question is searched several times while it is planned and answered: embed it once.
        self._vectors: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self.model_calls = 0  # forward passes of the model, for tests and benchmarks

    def embed_query(self, text: str) -> tuple[float, ...]:
        """The embedding of ``text``, from the cache when it was embedded before."""
        return self.embed_many([text])[0]

    def embed_many(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """Embeddings of ``texts``; those not cached are embedded together in one model call."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self.model_calls += 1
            for text, vector in zip(missing, self.embeddings.embed_documents(missing), strict=True):
                self._vectors[text] = tuple(vector)
        for text in texts:  # the least recently asked go first
            self._vectors.move_to_end(text)
        out = [self._vectors[t] for t in texts]
        while len(self._vectors) > VECTOR_CACHE_SIZE:
            self._vectors.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        self._vectors.clear()

    @classmethod
    def open(cls, settings: Settings, embeddings: Embeddings, *, create: bool = False) -> Store:
        return cls(
            client=connect(settings, create=create), settings=settings, embeddings=embeddings
        )

    # -- the pointer ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a Chroma call, translating its errors into ours."""
        try:
            return fn()
        except (IndexMissing, IndexUnusable, StoreUnavailable):
            raise
        except Exception as exc:
            import httpx

            where = self.settings.chroma_url or str(self.settings.chroma_path)
            if isinstance(exc, httpx.TimeoutException):
                raise StoreUnavailable(
                    f"The index server at {where} is not answering (no reply within "
                    f"{self.settings.chroma_timeout_seconds:g} s while {what}). "
                    "Check that it is running and not overloaded."
                ) from exc
            if self.settings.chroma_url and "connect" in str(exc).lower():
                raise StoreUnavailable(
                    f"The Chroma server at {where} stopped answering while {what}: {exc}. "
                    "Restart it and try again."
                ) from exc
            raise IndexUnusable(
                f"The index at {where} failed while {what}: {exc}. "
                "Rebuild it with `python ingest.py --force`."
            ) from exc

    def pointer(self) -> dict[str, Any] | None:
        """The pointer collection's metadata, or None when no index was ever completed."""
        names = self._call(
            "listing collections", lambda: [c.name for c in self.client.list_collections()]
        )
        if self.settings.collection not in names:
            return None
        collection = self._call(
            "reading the pointer", lambda: self.client.get_collection(self.settings.collection)
        )
        return dict(collection.metadata or {})

    def manifest(self) -> dict[str, Any] | None:
        pointer = self.pointer()
        if not pointer or "manifest" not in pointer:
            return None
        return dict(json.loads(pointer["manifest"]))

    def version(self) -> tuple[str, str]:
        """(active collection, word index folder): changes with every rebuild or update."""
        pointer = self.pointer() or {}
        return str(pointer.get("active") or ""), str(pointer.get("words") or "")

    def active_name(self) -> str:
        pointer = self.pointer()
        if not pointer or not pointer.get("active"):
            raise IndexMissing(
                f"No index in {self.settings.chroma_url or self.settings.chroma_path} "
                f"(collection '{self.settings.collection}'). Run `python ingest.py` to build it."
            )
        return str(pointer["active"])

    # -- reading ----------------------------------------------------------------------------------
    def vectorstore(self) -> Any:
        """The LangChain ``Chroma`` over the active collection (opened once)."""
        if self._vectorstore is None:
            from langchain_chroma import Chroma

            name = self.active_name()
            self._vectorstore = self._call(
                "opening the collection",
                lambda: Chroma(
                    client=self.client,
                    collection_name=name,
                    embedding_function=self.embeddings,
                    create_collection_if_not_exists=False,
                ),
            )
        return self._vectorstore

    def passages(self) -> list[Passage]:
        """Every passage in the active collection, in document order."""
        return [passage for passage, _ in self._read(["metadatas"])]

    def passages_with_vectors(self, *, sources: Sequence[str]) -> tuple[list[Passage], Any]:
        """The passages of ``sources`` and their stored embeddings (a float32 matrix), in order."""
        return self._with_vectors({"source": {"$in": list(sources)}})

    def documents(self) -> tuple[list[Passage], Any]:
        """Every passage of a plan's own documents, in order, and their vectors (a matrix)."""
        return self._with_vectors({"kind": "document"})

    def _with_vectors(self, where: dict[str, Any]) -> tuple[list[Passage], Any]:
        import numpy as np

        pairs = self._read(["metadatas", "embeddings"], where=where)
        vectors = np.asarray([vector for _, vector in pairs], dtype=np.float32)
        return [passage for passage, _ in pairs], vectors

    def _read(
        self, include: list[str], where: dict[str, Any] | None = None
    ) -> list[tuple[Passage, Any]]:
        vs = self.vectorstore()
        data = self._call("reading passages", lambda: vs.get(include=include, where=where))
        vectors = data.get("embeddings")
        rows = sorted(
            range(len(data["ids"])), key=lambda i: int(data["metadatas"][i].get("order", 0))
        )
        return [
            (
                _to_passage(data["ids"][i], data["metadatas"][i]),
                vectors[i] if vectors is not None else None,
            )
            for i in rows
        ]

    def dense(
        self,
        query: str | None = None,
        *,
        k: int,
        vector: Sequence[float] | None = None,
    ) -> list[tuple[str, float]]:
        """(passage id, cosine distance) of the ``k`` nearest passages (HNSW).

        Only ids and distances are read, and nothing is filtered: a Chroma ``where`` clause
        reads the metadata of every passage it admits (33-41 ms a query at 13,000 passages,
        against about 1 ms without). Callers filter the few results.
        """
        collection = self.vectorstore()._collection
        embedding = list(vector) if vector is not None else list(self.embed_query(query or ""))
        found = self._call(
            "searching",
            lambda: collection.query(
                query_embeddings=[embedding], n_results=k, include=["distances"]
            ),
        )
        return [
            (str(pid), float(distance))
            for pid, distance in zip(found["ids"][0], found["distances"][0], strict=True)
        ]

    # -- writing ----------------------------------------------------------------------------------
    def write_collection(
        self, passages: Sequence[Passage], *, progress: Callable[[int], None] | None = None
    ) -> tuple[str, dict[str, list[float]]]:
        """Embed ``passages`` into a new versioned collection (not yet the active one).

        Returns its name and the vectors of the plan's document passages (for the word index).
        Call ``activate`` to switch to it.
        """
        from langchain_chroma import Chroma

        name = f"{self.settings.collection}{VERSION_SEP}{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 10**6:06d}"
        vs = self._call(
            "creating a collection",
            lambda: Chroma(
                client=self.client,
                collection_name=name,
                embedding_function=self.embeddings,
                collection_configuration={"hnsw": {"space": "cosine"}},
            ),
        )
        vectors = self._add(vs._collection, passages, first=0, progress=progress)
        count = self._call("counting", lambda: vs._collection.count())
        if count != len(passages):
            raise IndexUnusable(
                f"The new collection {name} holds {count} of {len(passages)} passages."
            )
        return name, vectors

    def write_changes(
        self,
        *,
        remove_sources: Sequence[str],
        add: Sequence[Passage],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[str, dict[str, list[float]]]:
        """Change the active collection in place: drop the passages of ``remove_sources`` and
        add ``add``. Returns its name and the added documents' vectors; ``activate`` records
        the new manifest. Run again after a failure, it finishes the job."""
        name = self.active_name()
        collection = self.vectorstore()._collection
        if remove_sources:
            self._call(
                "removing changed documents",
                lambda: collection.delete(where={"source": {"$in": list(remove_sources)}}),
            )
        first = self._call("counting", lambda: collection.count())
        return name, self._add(collection, add, first=first, progress=progress)

    def activate(
        self, name: str, manifest: dict[str, Any], *, extra: dict[str, str] | None = None
    ) -> None:
        """Make ``name`` the active collection, built from ``manifest``; ``extra`` is more
        pointer metadata set in the same write (the word index's folder). Then prune."""
        self._point(name, manifest, extra)
        self.prune(keep=name)

    def _add(
        self,
        collection: Any,
        passages: Sequence[Passage],
        *,
        first: int,
        progress: Callable[[int], None] | None,
    ) -> dict[str, list[float]]:
        """Embed and write ``passages`` a batch at a time; the documents' vectors, by id."""
        documents: dict[str, list[float]] = {}
        batch = self.settings.ingest_batch
        for start in range(0, len(passages), batch):
            chunk = passages[start : start + batch]
            texts = [p.embed_text for p in chunk]
            vectors = self.embeddings.embed_documents(texts)
            metadatas = [
                {**_to_metadata(p), "order": first + start + i} for i, p in enumerate(chunk)
            ]
            self._call(
                "adding passages",
                partial(
                    collection.add,
                    ids=[p.id for p in chunk],
                    embeddings=vectors,
                    metadatas=metadatas,
                    documents=texts,
                ),
            )
            documents.update(
                (p.id, vector)
                for p, vector in zip(chunk, vectors, strict=True)
                if p.kind == "document"
            )
            if progress:
                progress(len(chunk))
        return documents

    def _point(self, name: str, manifest: dict[str, Any], extra: dict[str, str] | None) -> None:
        old = self.pointer() or {}
        retired = _retired(old)
        if old.get("active") and old["active"] != name:
            retired[str(old["active"])] = time.time()
        retired = dict(sorted(retired.items(), key=lambda pair: pair[1])[-_RETIRED_KEPT:])
        pointer_meta = {
            "active": name,
            "manifest": json.dumps(manifest, sort_keys=True),
            "retired": json.dumps(retired, sort_keys=True),
            **(extra or {}),
        }
        self._call(
            "switching to the new collection",
            lambda: self.client.get_or_create_collection(self.settings.collection).modify(
                metadata=pointer_meta
            ),
        )
        self._vectorstore = None

    def prune(self, *, keep: str) -> list[str]:
        """Delete versioned collections other than ``keep`` once no process can still need them.

        A running app keeps answering from the collection it opened until it notices the new
        one (within ``reindex_check_seconds``), so a collection is deleted only when it was
        retired (or, never made active, created) ``index_grace_seconds`` ago or more.
        """
        prefix = self.settings.collection + VERSION_SEP
        names = self._call(
            "listing collections", lambda: [c.name for c in self.client.list_collections()]
        )
        retired = _retired(self.pointer() or {})
        now = time.time()
        dropped = [
            name
            for name in names
            if name.startswith(prefix)
            and name != keep
            and now - retired.get(name, _created(name)) >= self.settings.index_grace_seconds
        ]
        for stale in dropped:
            self._call(
                "removing an old collection",
                partial(self.client.delete_collection, stale),
            )
        return dropped


def _retired(pointer: dict[str, Any]) -> dict[str, float]:
    """Collection name -> when it stopped being the active one."""
    try:
        return {str(k): float(v) for k, v in json.loads(pointer.get("retired") or "{}").items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _created(name: str) -> float:
    """When a versioned collection was created, from its name (0 when it does not say)."""
    stamp = name.rsplit(VERSION_SEP, 1)[-1].split("-", 1)[0]
    try:
        return time.mktime(time.strptime(stamp, "%Y%m%d%H%M%S"))
    except ValueError:
        return 0.0
