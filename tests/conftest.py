"""Session fixtures: the real toolkit, the real model, one real index built once per run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings, offline_environment

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"

offline_environment()
# The query model fitted once per run (``query_model`` fixture), shared by every settings.
FITTED: list[Path] = []


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings isolated from the developer's environment and `.env`."""
    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        os.environ.pop(key)
    values: dict[str, object] = {
        "corpus_dir": CORPUS,
        "chroma_path": root / "index",
        "data_dir": root / "data",
        "llm": "none",
    }
    if FITTED:
        values["query_model"] = FITTED[0]
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def toolkit():  # type: ignore[no-untyped-def]
    from assistant.toolkit import load_toolkit

    return load_toolkit(CORPUS)


@pytest.fixture(scope="session")
def built_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An index built once from the real corpus with the real model."""
    from assistant.indexer import build_index

    settings = make_settings(tmp_path_factory.mktemp("built"))
    build_index(settings, show_progress=False)
    if not FITTED:
        fit_query_model(settings)
        FITTED.append(settings.resolved_query_model)
    return make_settings(settings.chroma_path.parent)


@pytest.fixture(scope="session", autouse=True)
def query_model(built_settings: Settings) -> Path:
    """Every test's settings use the query model fitted on the real examples."""
    return FITTED[0]


def fit_query_model(settings: Settings) -> None:
    """Fit the query stage into ``settings.data_dir`` (the repo's embedding cache is reused)."""
    from evals.fit import fit

    cache = REPO / ".data" / "example-vectors.npz"
    if cache.is_file():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache, settings.data_dir / cache.name)
    fit(settings)


@pytest.fixture(scope="session")
def bot(built_settings: Settings):  # type: ignore[no-untyped-def]
    from assistant import Assistant

    return Assistant.from_settings(built_settings)


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the corpus folder that a test may add files to."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    yield target
