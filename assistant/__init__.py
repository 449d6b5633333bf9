"""Plan Guide: cited, tier-aware answers from the "Develop a Plan" palliative care toolkit.

from assistant import Assistant
reply = Assistant.from_settings().ask("What should we do next on equity?")
"""

from __future__ import annotations

from assistant.chat import Assistant, Route
from assistant.config import ELEMENT_KEYS, TIER_KEYS, Settings
from assistant.errors import (
    AssistantError,
    CorpusError,
    IndexMissing,
    IndexUnusable,
    InvalidInput,
    LLMError,
    ModelError,
    StoreUnavailable,
)
from assistant.indexer import IngestSummary, build_index
from assistant.schema import Citation, Passage, Reply
from assistant.toolkit import Toolkit, load_toolkit

__all__ = [
    "ELEMENT_KEYS",
    "TIER_KEYS",
    "Assistant",
    "AssistantError",
    "Citation",
    "CorpusError",
    "IndexMissing",
    "IndexUnusable",
    "IngestSummary",
    "InvalidInput",
    "LLMError",
    "ModelError",
    "Passage",
    "Reply",
    "Route",
    "Settings",
    "StoreUnavailable",
    "Toolkit",
    "build_index",
    "load_toolkit",
]
