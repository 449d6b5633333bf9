"""Records that cross a boundary: passages, citations and replies (JSON-able pydantic models).

reply = bot.ask("What should we do next on equity?", profile={"equity": "essentials"})
reply.model_dump()  # {"kind": "next_steps", "element": "equity", ...}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from assistant.query import QueryPlan

Kind = Literal["next_steps", "explain", "resources", "overview", "out_of_scope"]
KINDS: tuple[str, ...] = ("next_steps", "explain", "resources", "overview", "out_of_scope")
PassageKind = Literal[
    "action_item",
    "subgoal",
    "resource",
    "rationale",
    "goal",
    "summary",
    "footnote",
    "tier",
    "intro",
    "appendix",
    "contact",
    "document",
]


class Passage(BaseModel):
    """One indexed passage: the unit of retrieval and of citation."""

    id: str
    kind: PassageKind
    text: str = Field(description="the toolkit's words, markdown removed")
    title: str = Field(description="heading path, e.g. 'Equity › Progressing Further'")
    element: str | None = None
    tier: str | None = None
    subgoal: str | None = None
    lead: str | None = Field(default=None, description="an item's bold lead or a resource's title")
    source: str

    @property
    def embed_text(self) -> str:
        """What is embedded: the heading path keeps a bare item findable by its element."""
        return f"{self.title}: {self.text}"


class Citation(BaseModel):
    """A numbered reference from a reply's text to one passage."""

    marker: int
    id: str
    kind: str
    element: str | None = None
    tier: str | None = None
    title: str
    text: str
    source: str


class Alternative(BaseModel):
    """Another fair reading of a question, offered as a one-click question."""

    kind: Kind
    element: str | None = None
    tier: str | None = Field(default=None, description="the tier a next-steps reading asks for")
    label: str = Field(description="e.g. 'resources for Workforce Capacity'")
    question: str = Field(description="the question to ask for this reading")


class Reply(BaseModel):
    """The assistant's answer: markdown with ``[n]`` markers, and the passages they cite."""

    kind: Kind
    element: str | None = None
    tier: str | None = None
    text: str
    citations: list[Citation] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="fallbacks, truncation, etc.")
    suggestions: list[str] = Field(default_factory=list, description="follow-up questions")
    alternatives: list[Alternative] = Field(
        default_factory=list, description="other readings when the best two were close"
    )
    plan: QueryPlan | None = Field(default=None, description="how the question was read")
