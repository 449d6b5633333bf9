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
