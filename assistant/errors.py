"""Errors the user can act on. The UI and CLI show their message; anything else is a bug.

AssistantError
├── CorpusError          the toolkit text is missing or cannot be parsed
├── IndexUnusable        the index is stale, corrupt or unwritable
│   └── IndexMissing     no index has been built yet
├── StoreUnavailable     the Chroma server does not answer
├── ModelError           the embedding model cannot be loaded
├── InvalidInput         a question, profile or option the assistant cannot take
├── LLMError             the optional language model failed (the answer falls back)
└── FeedbackUnavailable  the feedback database cannot be opened or written
"""

from __future__ import annotations

import logging
import re


class AssistantError(Exception):
    """Root of every error with a message meant for the user."""


class CorpusError(AssistantError):
    """The toolkit text is missing or malformed."""


class IndexUnusable(AssistantError):
    """The index cannot be used or written."""


class IndexMissing(IndexUnusable):
    """No index has been built yet."""


class StoreUnavailable(AssistantError):
    """The Chroma server does not answer."""


class ModelError(AssistantError):
    """The embedding model cannot be loaded."""


class InvalidInput(AssistantError):
    """A question, profile value or option that is not accepted."""


class LLMError(AssistantError):
    """The optional language model failed or broke the citation rules."""


class FeedbackUnavailable(AssistantError):
    """The feedback database cannot be opened or written."""


_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_COLLECTION = re.compile(r"\b(?:collection\s+)?toolkit--[\w-]*\d{6,}[\w-]*", re.I)
log = logging.getLogger("assistant")


def public_message(exc: BaseException) -> str:
    """The error's message for users: server paths cut to their last part, collection names
    and uuids left out. The full message goes to the log."""
    text = str(exc)
    log.warning("%s: %s", type(exc).__name__, text)
    text = _PATH.sub(r"\1", text)
    text = _UUID.sub("(id)", text)
    return _COLLECTION.sub("the index collection", text)
