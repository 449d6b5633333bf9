"""Described progress: "we pay a bundled rate, and we don't have tiers of service yet".

The account of past work is split into clauses; each clause is matched to the toolkit's action
items by cosine similarity and read for negation. Items in clauses that are not negated are
done; the plan is at the highest tier of any done item (tiers are cumulative), and wants the
next one.

    reader = ProgressReader(passages=toolkit_passages, rules=rules, embed=embed)
    progress = reader.read(text, "payment")
    progress.done_tier, progress.done_items, progress.nothing_done
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, Field

from assistant.config import TIER_KEYS
from assistant.guards import Rules
from assistant.schema import Passage

# A clause this close (cosine) to an action item describes that item.
MATCH_SIMILARITY = 0.4
# A clause of at most this many words that ends with a colon heads a list ("Not in place yet:").
HEADER_WORDS = 6
# Clause boundaries: sentence ends, semicolons, and "and/but ..." before a new subject.
_CLAUSE = re.compile(
    r"(?<=[.!?;:])\s+|\s*[;\n]\s*|\s*,?\s+(?:and|but|while|plus|also|so)\s+"
    r"(?=(?:we|we've|we're|our|they|the plan|nothing|no one|there)\b)|,\s+(?=(?:we|we've|we're|our)\b)"
    r"|,\s+(?=(?:what|how|where|which|who|why|should|can|could|any|now|so|then|is|are)\b)"
    r"|\s+[-–—]+\s+",
    re.IGNORECASE,
)
_ASK = re.compile(
    r"^(what|which|where|how|why|who|when|should|could|can|would|do|does|is|are|any|tell|give|"
    r"show|help|list|explain|suggest|recommend|ideas|thoughts|now what|so what|next|remind|"
    r"walk|describe|summari[sz]e|please)\b",
    re.IGNORECASE,
)
# A wish or plan is not progress: "we want to lead on caregiver support", "we must start".
# What others must do is a requirement in place: "every contracted group must submit data".
_WISH = re.compile(
    r"\b(want|wants|wanting|would like|'d like|need to|needs to|hope|hoping|plan to|planning|"
    r"trying|try to|aim to|aiming|looking to|going to|gonna|wish|should|could|"
    r"would|will|asked (me|us)|wants us)\b"
    r"|\b(we|i|you|us)\s+(?:\w+\s+)?(must|have to|has to)\b",
    re.IGNORECASE,
)
# Negation belongs to the main clause: "we pay for it even when members say no" is not negated.
_SUBORDINATE = re.compile(
    r"\b(even (when|if|though)|when|whenever|if|unless|because|since|so that|whether)\b"
)


class Match(BaseModel):
    """One account clause and the action item nearest to it."""

    clause: str
    item: str
    tier: str
    similarity: float
    negated: bool
    accepted: bool = Field(description="close enough to count as describing the item")


class Progress(BaseModel):
    """What a question says is already done (or not)."""

    matches: list[Match] = Field(default_factory=list)

    @property
    def done(self) -> list[Match]:
        return [m for m in self.matches if m.accepted and not m.negated]

    @property
    def done_items(self) -> list[str]:
        return [m.item for m in self.done]

    @property
    def done_tier(self) -> str | None:
        tiers = [m.tier for m in self.done]
        return max(tiers, key=TIER_KEYS.index) if tiers else None

    @property
    def nothing_done(self) -> bool:
        return bool(self.matches) and all(m.negated for m in self.matches)

    def evidence(self) -> list[float]:
        """Features for the tier head: best similarity per tier, affirmed and negated; the tier
        the matched items put the plan at (one-hot, or "nothing done"); whether any account."""
        out = []
        for negated in (False, True):
            for tier in TIER_KEYS:
                sims = [
                    m.similarity for m in self.matches if m.negated == negated and m.tier == tier
                ]
                out.append(max(sims, default=0.0))
        out += [1.0 if self.done_tier == tier else 0.0 for tier in TIER_KEYS]
        out.append(1.0 if self.nothing_done else 0.0)
        out.append(1.0 if self.matches else 0.0)
        return out


def account_clauses(text: str) -> list[str]:
    """The clauses of ``text`` that tell what the plan does, not what it asks."""
    return list(_account_clauses(text))


@lru_cache(maxsize=1024)
def _account_clauses(text: str) -> tuple[str, ...]:
    # A turn reads its question's clauses several times (embedding, cues, progress): split once.
    clauses = []
    header = ""
    for raw in _CLAUSE.split(text):
        part = raw.strip(" ,.-–—")
        entry = bool(header) and not part.endswith(":")
        asks = part.endswith("?") or (not entry and _ASK.match(part))
        if len(part.split()) >= 2 and not asks and not _WISH.search(part):
            # A list's header goes with each of its entries, so "Not in place: any X, or Y"
            # reads X and Y as not done (and "Have: X" as done).
            clauses.append(f"{header} {part}" if entry else part)
        if part.endswith(":") and len(part.split()) <= HEADER_WORDS:
            header = part
        elif raw.rstrip().endswith((".", "!", "?")):
            header = ""  # a list ends with its sentence
    return tuple(clauses)


def main_clause(clause: str) -> str:
    """The clause up to its first subordinate marker (where negation is read)."""
    match = _SUBORDINATE.search(clause.lower(), 8)
    return clause[: match.start()] if match else clause


def match_clauses(
    clauses: Sequence[str],
    clause_vectors: np.ndarray,
    *,
    rules: Rules,
    items: Sequence[Passage],
    item_vectors: np.ndarray,
    threshold: float = MATCH_SIMILARITY,
) -> Progress:
    """Each clause with its nearest action item of ``items`` (already embedded)."""
    if not clauses or not len(items):
        return Progress()
    sims = np.asarray(clause_vectors) @ np.asarray(item_vectors).T
    matches = []
    for clause, row in zip(clauses, sims, strict=True):
        best = int(np.argmax(row))
        matches.append(
            Match(
                clause=clause,
                item=items[best].id,
                tier=str(items[best].tier),
                similarity=round(float(row[best]), 3),
                negated=rules.negated(main_clause(clause)),
                accepted=float(row[best]) >= threshold,
            )
        )
    return Progress(matches=matches)


class ProgressReader:
    """Reads described progress against the toolkit's action items, line by line.

    Each line of an item (its lead sentence and each sub-step) is embedded on its own, without
    the heading path, so a clause is matched on what the item says, not on the tier's name.
    """

    def __init__(
        self,
        *,
        passages: Sequence[Passage],
        rules: Rules,
        embed: Callable[[list[str]], np.ndarray],
    ) -> None:
        self.rules = rules
        self.embed = embed
        self.rows = [i for i, p in enumerate(passages) if p.kind == "action_item"]
        self.items = [passages[i] for i in self.rows]
        lines = [
            (n, line.strip(" -*•\t"))
            for n, item in enumerate(self.items)
            for line in item.text.split("\n")
            if len(line.split()) >= 3
        ]
        self.owners = [n for n, _ in lines]
        self.lines = [text for _, text in lines]
        self.vectors = np.asarray(embed(self.lines), dtype=np.float32)
        self._by_item = {item.id: n for n, item in enumerate(self.items)}

    def best_line(self, item_id: str, vector: np.ndarray) -> str | None:
        """The line of an action item (its lead sentence or a sub-step) nearest to ``vector``."""
        n = self._by_item.get(item_id)
        rows = [k for k, owner in enumerate(self.owners) if owner == n]
        if n is None or not rows:
            return None
        sims = self.vectors[rows] @ np.asarray(vector, dtype=np.float32)
        return self.lines[rows[int(np.argmax(sims))]]

    def read(
        self, text: str, element: str | None, clause_vectors: np.ndarray | None = None
    ) -> Progress:
        """``text``'s account clauses matched to ``element``'s action items (all if None)."""
        clauses = account_clauses(text)
        if not clauses:
            return Progress()
        vectors = self.embed(clauses) if clause_vectors is None else clause_vectors
        chosen = [k for k, n in enumerate(self.owners) if element in (None, self.items[n].element)]
        if not chosen:
            return Progress()
        return match_clauses(
            clauses,
            vectors,
            rules=self.rules,
            items=[self.items[self.owners[k]] for k in chosen],
            item_vectors=self.vectors[chosen],
        )
