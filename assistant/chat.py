"""The ``Assistant``: an orchestrator of plan → retrieve → compose.

bot = Assistant.from_settings()
reply = bot.ask("What should we do next on equity?",
                history=["What are the first steps on equity?"],
                profile={"equity": "essentials"})
reply.plan          # the QueryPlan: kind, ranked elements, tier and why, focus, confidence
reply.alternatives  # other fair readings when the best two are close
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from functools import cached_property
from typing import Any

import numpy as np

from assistant.answer import (
    CitationBook,
    Composer,
    Standing,
    excerpt,
    item_count,
    recommend,
    reply_from,
)
from assistant.config import ELEMENT_KEYS, OVERVIEW_FILE, TIER_KEYS, TOOLKIT_FILE, Settings
from assistant.errors import InvalidInput
from assistant.glossary import Glossary
from assistant.lexical import tokens
from assistant.plan import NONE, completed_level, next_tier, tier_progress
from assistant.progress import account_clauses
from assistant.query import NO_TIER_AFTER, QueryPlan, QueryStage, refusal_plan
from assistant.retrieval import Boost, Filters, Hit, HybridRetriever
from assistant.schema import Passage, Reply
from assistant.toolkit import TIER_NAMES, Toolkit

PROFILE_VALUES = ("none", *TIER_KEYS)
TOOLKIT_SOURCES = (TOOLKIT_FILE, OVERVIEW_FILE)
SUGGESTED_START = (
    "We're new to this. What are The Essentials for family caregiver support?",
    "We've got the basics covered on equity. What should we do next?",
    "What resources help us price a bundled payment?",
)
# A question the toolkit does not cover is answered from a plan's document only when a document
# passage is this much nearer it (cosine) than the toolkit's nearest passage. With a generated
# 13-section policy in the corpus, 286 of 1,433 labelled out-of-scope questions had a document as
# their best hit and 23 a document nearer than the toolkit, none by 0.1; the two questions the
# policy answers ("how many nights of overnight respite...", "who approves in-home respite...")
# lead by 0.17 and 0.24.
DOCUMENT_LEAD = 0.1
# Keyed by refusal reason: a safety guard's name or a class of the learned refusal head.
_REFUSALS = {
    "empty": "Please type a question about the Develop a Plan toolkit.",
    "clinical": (
        "The Develop a Plan toolkit is about a health plan's palliative care strategy; it does not "
        "give clinical, medication or dosing advice. Please ask a clinician."
    ),
    "injection": (
        "I answer only from the Develop a Plan toolkit, and I can't change or reveal how I work."
    ),
    "member": (
        "Please don't type a member's personal details here. The toolkit is about a plan's "
        "strategy; it cannot make a decision about one member."
    ),
    "member_decision": (
        "The Develop a Plan toolkit is about a plan's palliative care strategy; it cannot make a "
        "decision about one member. Please follow your plan's clinical and care-management process."
    ),
    "write_new": (
        "I only quote the Develop a Plan toolkit; I don't write new documents, messages or "
        "contract language."
    ),
    "small_talk": "I'm Plan Guide: I answer questions about the Develop a Plan toolkit.",
    "not_covered": "The Develop a Plan toolkit does not cover that topic.",
    "other_language": "Plan Guide reads questions in English only. Please ask in English.",
}
# An item comes first in a next-steps answer when the question is this close to it (cosine)
# and this much closer than to any other item of the tier. Generic questions ("what next on
# family caregiver support?") are within 0.05 of their tier's top two items; questions about
# one item ("how should we pay for initial assessments?") are 0.14-0.28 ahead.
FOCUS_SIMILARITY = 0.45
FOCUS_GAP = 0.1
# A question word found in at most this many toolkit passages singles out the lines using it.
RARE_PASSAGES = 3
# Replays of recent turns, keyed by the turns and the profile: a session re-sends its history.
_PLAN_CACHE_SIZE = 2048


def clean_question(question: str, limit: int) -> tuple[str, list[str]]:
    """Control characters stripped, whitespace folded, cut at ``limit`` characters with a note."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in question or "")
    text = re.sub(r"\s+", " ", text).strip()
    notes: list[str] = []
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
        notes.append(
            f"Your question was longer than {limit} characters; only the first {limit} were read."
        )
    return text, notes


def check_profile(profile: Mapping[str, str] | None) -> dict[str, str]:
    """Normalised profile (elements with nothing complete left out); ``InvalidInput`` names the
    bad key or value and the valid ones."""
    return {k: v for k, v in _profile_levels(profile).items() if v != "none"}


def not_started(profile: Mapping[str, str] | None) -> set[str]:
    """The elements a (valid) profile marks as having nothing complete."""
    return {k for k, v in _profile_levels(profile).items() if v == "none"}


def _profile_levels(profile: Mapping[str, str] | None) -> dict[str, str]:
    if profile is not None and not isinstance(profile, Mapping):
        raise InvalidInput(
            f"The profile must map element -> tier, got {type(profile).__name__}. "
            'Example: {"equity": "essentials"}.'
        )
    out: dict[str, str] = {}
    for raw_key, raw_value in (profile or {}).items():
        key = str(raw_key).strip().lower().replace(" ", "-").replace("_", "-")
        value = str(raw_value).strip().lower().replace(" ", "-").replace("_", "-")
        value = {"the-essentials": "essentials", "": "none"}.get(value, value)
        if key not in ELEMENT_KEYS:
            raise InvalidInput(
                f"Unknown element {raw_key!r} in the profile. Valid elements: {', '.join(ELEMENT_KEYS)}."
            )
        if value not in PROFILE_VALUES:
            raise InvalidInput(
                f"Unknown tier {raw_value!r} for {key}. Valid values: {', '.join(PROFILE_VALUES)}."
            )
        out[key] = value
    return out


def check_done(done_items: Any, known: Collection[str]) -> set[str]:
    """The action item ids of ``done_items`` (ids this toolkit does not have are ignored);
    ``InvalidInput`` when it is not a list of ids."""
    if done_items is None:
        return set()
    if isinstance(done_items, str) or not isinstance(done_items, Sequence | AbstractSet):
        raise InvalidInput(
            "done_items must be a list of action item ids, e.g. "
            '["equity.essentials.1"]; they are shown in the toolkit grid and in citations.'
        )
    if not all(isinstance(item, str) for item in done_items):
        raise InvalidInput("done_items must hold action item ids (text), one per item done.")
    return {item for item in done_items if item in known}


# The passages that answered the labelled questions nearest to a question that are read, best
# first; an overview question whose nearest were answered by the summaries or goals of at
# least ELEMENTS_ASKED elements asks what the elements are.
ANSWERED_TOP = 6
ELEMENTS_ASKED = 3
# ... and one whose nearest were answered by at least two of the three tiers' descriptions
# (and not by several elements') asks what the tiers are.
TIERS_ASKED = 2


class Assistant:
    """Answers questions about the toolkit from the index, with citations."""

    def __init__(
        self,
        *,
        settings: Settings,
        retriever: HybridRetriever,
        query: QueryStage,
        llm: Any = None,
    ) -> None:
        self.settings = settings
        self.retriever = retriever
        self.query = query
        self.llm = llm
        passages = retriever.passages
        names = {p.element: p.title for p in passages if p.kind == "summary" and p.element}
        self.composer = Composer(passages=passages, element_names=names)
        self._toolkit: Any = None
        self._glossary: Glossary | None = None
        self._document_counts: Counter[str] | None = None
        self.opened: tuple[str, str] = ("", "")  # the index version this assistant answers from
        self._plans: OrderedDict[tuple[Any, ...], QueryPlan] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Open the index and the fitted query model; errors say how to build what is missing."""
        from assistant.classifier import Featurizer, Heads
        from assistant.embeddings import make_embeddings
        from assistant.guards import Rules
        from assistant.lexical import document_index
        from assistant.llm import make_chat_model
        from assistant.store import Store, connect

        settings = settings or Settings()
        client = connect(settings, create=False)  # fails fast, before the model loads
        heads = Heads.load(settings.resolved_query_model)
        embeddings = make_embeddings(settings)
        store = Store(client=client, settings=settings, embeddings=embeddings)
        opened = store.version()
        # Only the toolkit is held in memory; a plan's documents stay in the store and in their
        # memory-mapped word index, so opening does not grow with them.
        toolkit_passages, vectors = store.passages_with_vectors(sources=TOOLKIT_SOURCES)
        retriever = HybridRetriever(
            store=store,
            passages=toolkit_passages,
            memory_vectors=vectors,
            documents=document_index(store),
            k=settings.k,
        )

        def embed(texts: list[str]) -> np.ndarray:
            return np.asarray(store.embed_many(texts), dtype=np.float32)

        query = QueryStage(
            heads=heads,
            featurizer=Featurizer(toolkit_passages, vectors),
            rules=Rules.load(),
            embed=embed,
        )
        bot = cls(
            settings=settings, retriever=retriever, query=query, llm=make_chat_model(settings)
        )
        bot.opened = opened
        return bot

    def index_version(self) -> tuple[str, str]:
        """The store's active collection and word index now; differs from ``opened`` after a
        rebuild or an update of the index."""
        return self.retriever.store.version()

    def use_heads(self, heads: Any) -> None:
        """Swap the fitted heads (leave-one-writer-out refits them per writer)."""
        self.query.heads = heads
        self._plans.clear()

    # -- helpers the UI and evals use ---------------------------------------------------------------
    @property
    def embeddings(self) -> Any:
        return self.retriever.store.embeddings

    @property
    def toolkit(self) -> Toolkit:
        """The parsed toolkit (for browsing); parsed once from the corpus folder."""
        if self._toolkit is None:
            from assistant.toolkit import load_toolkit

            self._toolkit = load_toolkit(self.settings.corpus_dir)
        return self._toolkit

    def passage_ids(self) -> set[str]:
        """Every passage id an answer may cite: the toolkit's and the plan's documents'."""
        return set(self.composer.by_id) | self.retriever.document_ids()

    def passage(self, pid: str) -> Passage:
        """A passage by id; a plan document's is read from its word index when asked for."""
        return self.retriever.passage(pid)

    def vector(self, text: str) -> np.ndarray:
        """The question's one embedding, shared by the query stage and every search of the turn."""
        return np.asarray(self.retriever.store.embed_query(text), dtype=np.float32)

    # -- the query stage --------------------------------------------------------------------------------
    def plan(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
        previous: QueryPlan | None = None,
        progress_known: bool = False,
        not_started: Collection[str] | None = None,
    ) -> QueryPlan:
        """The ``QueryPlan`` of ``question``, after the earlier turns (or ``previous``);
        ``not_started``: elements the profile marks as having nothing complete (by default,
        those it marks "none")."""
        clean_profile = check_profile(profile)
        if not_started is None:
            not_started = {k for k, v in _profile_levels(profile).items() if v == NONE}
        text, _ = self._read(question)
        turns = [] if previous is not None else self._recent(history)
        # The question, its accounts of past work and any earlier turn whose plan is not
        # remembered go through the model together, in one call.
        unplanned = turns[self._planned(turns) :]
        self.retriever.store.embed_many(
            [*unplanned, *([text, *account_clauses(text)] if text else [])]
        )
        if previous is None:
            previous = self._replay(turns)
        if not text:
            return refusal_plan("empty")
        return self.query.plan(
            text,
            self.vector(text),
            previous=previous,
            profile=clean_profile,
            progress_known=progress_known,
            not_started=not_started,
        )

    def _read(self, question: str) -> tuple[str, list[str]]:
        """The question as the stage reads it: cleaned (``clean_question``), shorthand spelled
        out ("SNF" → "skilled nursing facility"); and notes on what was cut."""
        text, notes = clean_question(question, self.settings.max_question_chars)
        return self.query.rules.spelled_out(text), notes

    def _recent(self, history: Sequence[str]) -> list[str]:
        """The most recent earlier turns that are read (bounded work), cleaned, empty ones out."""
        recent = [t for t in history if isinstance(t, str)][-self.settings.max_history_turns :]
        cleaned = (self._read(turn)[0] for turn in recent)
        return [text for text in cleaned if text]

    @staticmethod
    def _plan_keys(turns: Sequence[str]) -> list[tuple[str, ...]]:
        """The remembered-plan key of each prefix of the conversation's recent turns."""
        return [tuple(turns[: n + 1]) for n in range(len(turns))]

    def _planned(self, turns: Sequence[str]) -> int:
        """How many of the leading turns already have their plan remembered."""
        keys = self._plan_keys(turns)
        return next((n for n, key in enumerate(keys) if key not in self._plans), len(keys))

    def _replay(self, turns: Sequence[str]) -> QueryPlan | None:
        """The last plan of the conversation, from its recent turns (``_recent``).

        Earlier turns given as text are read from their own words, without the profile: the
        profile says where the plan stands now, which may already include what the
        conversation has told since ("we've done all of that"), so "where do we start?" was
        answered with The Essentials then. A caller that kept the plan actually shown passes
        it as ``previous`` instead.
        """
        previous: QueryPlan | None = None
        for text, key in zip(turns, self._plan_keys(turns), strict=True):
            cached = self._plans.get(key)
            if cached is None:
                cached = self.query.plan(text, self.vector(text), previous=previous)
                self._plans[key] = cached
                while len(self._plans) > _PLAN_CACHE_SIZE:
                    self._plans.popitem(last=False)
            previous = cached
        return previous

    # Compatibility with earlier callers: ``route`` is the plan.
    route = plan

    def retrieve(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
        k: int = 5,
    ) -> list[Passage]:
        """The ranked passages the planned question retrieves (for recall@k)."""
        plan = self.plan(question, history=history, profile=profile)
        if plan.kind == "next_steps" and plan.element and plan.tier:
            return self.composer.items(plan.element, plan.tier)[:k]
        text, _ = self._read(question)
        return [hit.passage for hit in self._search(text, plan, k=k)]

    # -- the one public question ------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] | None = None,
        profile: Mapping[str, str] | None = None,
        previous: QueryPlan | None = None,
        done_items: Sequence[str] | None = None,
    ) -> Reply:
        """Answer ``question``; earlier user turns (oldest first) and the profile set context.

        Args:
            question: the user's words.
            history: earlier user turns, oldest first; only the last few are read.
            profile: element -> highest tier completed ("none" allowed); it wins over what
                ``done_items`` imply for the elements it names.
            previous: the last turn's ``reply.plan``, instead of replaying ``history``.
            done_items: ids of the action items the plan has done: answers show them as done,
                and elements the profile does not name take their tier from them.

        Raises ``InvalidInput`` for a question that is not text or an unknown profile value.
        """
        if not isinstance(question, str):
            raise InvalidInput(
                f"The question must be text, got {type(question).__name__}. Type a question."
            )
        if history is not None and (isinstance(history, str) or not isinstance(history, Sequence)):
            raise InvalidInput("history must be a list of earlier questions (text), oldest first.")
        text, notes = self._read(question)
        done = check_done(done_items, self._item_ids)
        explicit = check_profile(profile)
        clean_profile = {**self._levels(done), **explicit} if done else explicit
        self.retriever.take_problem()  # a problem of an earlier turn is not this one's
        plan = self.plan(
            text,
            history=list(history or []),
            profile=clean_profile,
            previous=previous,
            progress_known=bool(done),
            not_started=not_started(profile) - {i.split(".", 1)[0] for i in done},
        )
        if done and plan.kind == "next_steps" and plan.element not in explicit:
            self._working_tier(text, plan, done)
        reply = self._compose(text, plan, clean_profile, done)
        problem = self.retriever.take_problem()
        reply.notes = notes + reply.notes + ([problem] if problem else [])
        if self.llm is not None and reply.kind != "out_of_scope":
            from assistant.llm import synthesize

            reply = synthesize(
                self.llm, text, reply, timeout=self.settings.llm_timeout, rules=self.query.rules
            )
        reply.plan = plan
        reply.alternatives = list(plan.alternatives) if reply.kind != "out_of_scope" else []
        asked = {_said(turn) for turn in [text, *(history or [])] if isinstance(turn, str)}
        reply.suggestions = [
            q for q in self._suggestions(plan, clean_profile, done) if _said(q) not in asked
        ][:3]
        return reply

    def _working_tier(self, text: str, plan: QueryPlan, done: set[str]) -> None:
        """With items of the element done, a question that names no tier and tells no progress
        of its own is about the tier still being worked on: the lowest one with items left."""
        element = plan.element
        if (
            element is None
            or plan.direction == "lead"
            or self.query.rules.tier_named(text)
            or (plan.progress is not None and plan.progress.matches)
        ):
            return
        toolkit_element = self.toolkit.element(element)
        if not any(item.id in done for item in toolkit_element.items):
            return
        step = tier_progress(toolkit_element, completed_level(toolkit_element, done), done)
        if step.tier is not None:
            plan.tier, plan.known_tier = step.tier, True
            plan.tier_reason = (
                f"Your plan has {step.text} for {self.composer.name(element)}: here is what is "
                "left in that tier."
            )

    @cached_property
    def _item_ids(self) -> frozenset[str]:
        return frozenset(pid for pid, p in self.composer.by_id.items() if p.kind == "action_item")

    def _levels(self, done: set[str]) -> dict[str, str]:
        """Element -> highest tier whose items, and those below, are all in ``done``."""
        levels = {e.key: completed_level(e, done) for e in self.toolkit.elements}
        return {key: level for key, level in levels.items() if level != NONE}

    # -- composing ------------------------------------------------------------------------------------
    def _search(
        self, question: str, plan: QueryPlan, *, k: int, kinds: tuple[str, ...] | None = None
    ) -> list[Hit]:
        """Hybrid search with the plan's elements and tier as boosts, not filters."""
        boost = Boost(elements={e.element: e.score for e in plan.elements}, tier=plan.tier)
        query = plan.question or question  # a follow-up searches with the earlier turn's words
        return self.retriever.search(
            query,
            k=k,
            filters=Filters(kinds=kinds),
            vector=self.plan_vector(plan, question).tolist(),
            boost=boost,
            answered=plan.answered,
        )

    def plan_vector(self, plan: QueryPlan, question: str) -> np.ndarray:
        """The vector a plan searches with: the question's own, or a follow-up's joint one."""
        return plan.search_vector if plan.search_vector is not None else self.vector(question)

    def _compose(
        self,
        question: str,
        plan: QueryPlan,
        profile: Mapping[str, str],
        done: set[str] | None = None,
    ) -> Reply:
        if plan.kind == "explain":  # an overview is about the toolkit's own structure
            defined = self._define(question, plan)
            if defined is not None:
                return defined
        match plan.kind:
            case "out_of_scope":
                return self._from_documents(question, plan) or self._refuse(plan)
            case "next_steps":
                return self._next_steps(question, plan, profile, done or set())
            case "resources":
                return self._resources(question, plan)
            case "overview":
                return self._overview(question, plan)
            case _:
                return self._explain(question, plan)

    @property
    def glossary(self) -> Glossary:
        """The toolkit's own definitions (built on first use)."""
        if self._glossary is None:
            self._glossary = Glossary.from_toolkit(self.toolkit, list(self.composer.by_id.values()))
        return self._glossary

    def _define(self, question: str, plan: QueryPlan) -> Reply | None:
        """A definition question: the toolkit's definition, quoted; or, for a term it only
        uses, "the toolkit does not define X" and where X comes up. None when the question
        names no term the toolkit uses."""
        terms = self.glossary.terms_in(question)
        if not terms:
            return None
        book = CitationBook()
        lines: list[str] = []
        toolkit = list(self.composer.by_id.values())
        for term in terms:
            entry = self.glossary.lookup(term)
            passage = self.composer.by_id.get(entry.passage_id) if entry else None
            if entry is not None and passage is not None:
                lines += [f"**{entry.term}**, in the toolkit's words:", ""]
                lines += [f"> {entry.definition} {book.cite(passage)}", ""]
                continue
            places = [self.composer.by_id[pid] for pid in self.glossary.mentions(term, toolkit, 3)]
            if not places:
                continue
            lines += [f"The toolkit does not define “{term}”. It comes up in:", ""]
            for place in places:
                body = excerpt(place.text.replace("\n", " "), term, limit=220)
                lines.append(f"- **{place.title}**: “{body}” {book.cite(place)}")
            lines.append("")
        if not book.citations:
            return None
        first = self.composer.by_id[book.citations[0].id]
        return reply_from(
            book,
            "\n".join(lines).strip(),
            kind=plan.kind,
            element=plan.element or first.element,
            tier=first.tier,
        )

    def _from_documents(self, question: str, plan: QueryPlan) -> Reply | None:
        """A question the toolkit does not cover, by the learned reading (not a guard), that a
        plan's own document answers best ("how many nights of respite does our plan
        authorize?"): that document, under its own label. None otherwise."""
        if plan.refusal != "not_covered" or not plan.kind_scores:
            return None
        documents = self._documents(question, plan, leading=True)
        if not documents:
            return None
        book = CitationBook()
        lead = f"{_REFUSALS['not_covered']} Your plan's own documents say:"
        text = self.composer.documents(lead, documents, question, book)
        return reply_from(book, text, kind="explain")

    def _refuse(self, plan: QueryPlan) -> Reply:
        reason = plan.refusal or "not_covered"
        first = _REFUSALS.get(reason, _REFUSALS["not_covered"])
        if reason == "other_language":
            translated = self.query.rules.language_replies.get(plan.language or "")
            first = f"{translated}\n\n{first}" if translated else first
            return Reply(kind="out_of_scope", text=first)
        text = f"{first}\n\nThe suggestions below are questions the toolkit does answer."
        return Reply(kind="out_of_scope", text=text)

    def _next_steps(
        self, question: str, plan: QueryPlan, profile: Mapping[str, str], done: set[str]
    ) -> Reply:
        if not plan.element_keys:
            return self._where_we_stand(question, plan, profile, done)
        tier = plan.tier or "essentials"
        element = plan.element_keys[0]
        vector = self.plan_vector(plan, question)
        sections = [(element, tier, self._fitting_resources(vector, element, tier))]
        reason = plan.tier_reason

        rare = self._rare_lines(plan.question, element, tier)

        def highlight(item: Passage) -> str | None:
            own = [line for pid, line in rare if pid == item.id]
            return own[0] if own else self.query.progress.best_line(item.id, self.vector(question))

        text, book = self.composer.next_steps(
            sections,
            reason=reason,
            done=done,
            focus=self._pointed_at(plan, vector, element, tier, rare),
            highlight=highlight,
            collapse=plan.tier_reason == NO_TIER_AFTER,
        )
        documents = self._documents(question, plan)
        if documents:
            text = self.composer.documents(text, documents, question, book)
        return reply_from(book, text, kind="next_steps", element=plan.element, tier=tier)

    def _pointed_at(
        self,
        plan: QueryPlan,
        vector: np.ndarray,
        element: str,
        tier: str,
        rare: list[tuple[str, str]],
    ) -> list[str]:
        """The one item of the tier the question points at: the query stage's focus, or this
        close to the question, and clearly closer than the tier's other items. A question
        that only names the element and asks what is next points at none of them."""
        items = [item.id for item in self.composer.items(element, tier)]
        if len(items) < 2:
            return []
        by_words = {pid for pid, _ in rare}  # the tier's lines sharing a rare word
        if len(by_words) == 1:
            return list(by_words)
        sims = self.retriever.similarities(vector, items)
        ranked = sorted(zip(sims, items, strict=True), reverse=True)
        (best, top), (second, _) = ranked[0], ranked[1]
        if best - second >= FOCUS_GAP and (top in plan.focus or best >= FOCUS_SIMILARITY):
            return [top]
        return []

    def _rare_lines(self, question: str, element: str, tier: str) -> list[tuple[str, str]]:
        """(item id, line) of the tier's lines that share a rare word with the question: a
        word found in at most ``RARE_PASSAGES`` toolkit passages ("oncologists", "respite"),
        not one the whole element uses ("caregiver")."""
        if self._document_counts is None:
            self._document_counts = Counter(
                word for p in self.composer.by_id.values() for word in set(tokens(p.text))
            )
        counts = self._document_counts
        rare = {w for w in tokens(question) if 0 < counts.get(w, 0) <= RARE_PASSAGES}
        found = []
        for item in self.composer.items(element, tier):
            for line in item.text.split("\n"):
                if rare & set(tokens(line)):
                    found.append((item.id, line.strip(" -*•\t")))
        return found

    def _where_we_stand(
        self, question: str, plan: QueryPlan, profile: Mapping[str, str], done: set[str]
    ) -> Reply:
        """Every element's progress and next open items in one table, then one focus."""
        rows = []
        for element in ELEMENT_KEYS:
            level = profile.get(element, NONE)
            tier = next_tier(level)
            items = self.composer.items(element, tier) if tier else []
            rows.append(Standing(element=element, level=level, tier=tier, items=items, done=done))
        table, book = self.composer.where_we_stand(rows)
        known = bool(profile or done)
        intro = (
            "Where your plan stands on each element, from your profile, and what comes next:"
            if known
            else "Your profile marks nothing as done yet, so every element starts at The "
            "Essentials. Tick what your plan already does in My plan for a closer answer."
        )
        lines = [intro, "", *table, ""]
        focus = recommend(rows)
        tiers = {row.tier for row in rows if row.tier}
        if focus is None or focus.tier is None:
            lines.append("Every element's three tiers are done.")
            return reply_from(book, "\n".join(lines).strip(), kind="next_steps")
        why = self.composer.by_id.get(f"{focus.element}.rationale.1") or self.composer.by_id.get(
            f"{focus.element}.goal"
        )
        left = item_count(focus.remaining)
        lines.append(
            f"**Suggested focus: {self.composer.name(focus.element)} › "
            f"{TIER_NAMES[focus.tier]}**: the lowest tier still open, with {left} left."
        )
        if why is not None:
            lines.append(f"> {excerpt(why.text.replace(chr(10), ' '), question)} {book.cite(why)}")
        lines.append("")
        vector = self.plan_vector(plan, question)
        section = (
            focus.element,
            focus.tier,
            self._fitting_resources(vector, focus.element, focus.tier),
        )
        text, book = self.composer.next_steps(
            [section], reason="\n".join(lines).strip(), book=book, done=done
        )
        return reply_from(
            book,
            text,
            kind="next_steps",
            tier=focus.tier if len(tiers) == 1 else None,
        )

    def _documents(self, question: str, plan: QueryPlan, *, leading: bool = False) -> list[Passage]:
        """A plan's own document passages that rank among the question's best hits (with
        ``leading``, only when a document is the best hit of all and clearly nearer the question
        than anything in the toolkit)."""
        if not self.retriever.has_documents:
            return []
        hits = self._search(question, plan, k=4)
        if leading and not self._document_leads(self.plan_vector(plan, question), hits):
            return []
        return [h.passage for h in hits if h.passage.kind == "document"][:2]

    def _document_leads(self, vector: np.ndarray, hits: list[Hit]) -> bool:
        """Whether a plan's document is the best of ``hits`` (searched with ``vector``) and its
        passage is at least ``DOCUMENT_LEAD`` nearer ``vector`` (cosine) than the toolkit's
        nearest passage."""
        if not hits or hits[0].passage.kind != "document":
            return False
        cosines = [
            1.0 - h.distance
            for h in hits
            if h.passage.kind == "document" and h.distance is not None
        ]
        toolkit = float(self.query.featurizer.similarities(vector[None, :]).max())
        return bool(cosines) and max(cosines) - toolkit >= DOCUMENT_LEAD

    def _fitting_resources(
        self, vector: np.ndarray, element: str, tier: str, limit: int = 3
    ) -> list[Passage]:
        """The element's resources closest to the question and to the tier's items together."""
        resources = [
            p for p in self.composer.by_id.values() if p.kind == "resource" and p.element == element
        ]
        items = self.composer.items(element, tier)
        target = vector + self.retriever.mean_vector([p.id for p in items])
        scores = self.retriever.similarities(target, [p.id for p in resources])
        ranked = sorted(zip(scores, range(len(resources)), strict=True), reverse=True)
        return [resources[i] for _, i in ranked[:limit]]

    def _resources(self, question: str, plan: QueryPlan) -> Reply:
        hits = self._search(question, plan, k=8, kinds=("resource",))
        if hits and hits[0].passage.id.startswith("appendix.") and not plan.element:
            passages = [
                p for p in self.composer.by_id.values() if p.id.startswith("appendix.resource.")
            ]
            heading = "For plans without a palliative care program, Appendix Two lists:"
        elif plan.element:
            # Every resource of the element, best match first; a row of another element that
            # fits the question better than all of them leads the list.
            query = plan.question or question
            own = self.retriever.search(
                query,
                k=6,
                filters=Filters(element=plan.element, kinds=("resource",)),
                vector=self.plan_vector(plan, question).tolist(),
                answered=plan.answered,
            )
            passages = [h.passage for h in own]
            if hits and hits[0].passage.element != plan.element:
                passages = [hits[0].passage, *passages[:5]]
            heading = f"Resources from the toolkit for {self.composer.name(plan.element)}, best match first:"
        else:
            best = hits[0].score if hits else 0.0
            passages = [h.passage for h in hits if h.score >= 0.6 * best][:4]
            heading = "Resources from the toolkit, best match first:"
        if not passages:
            return self._refuse(refusal_plan("not_covered"))
        text, book = self.composer.listing(heading, passages)
        return reply_from(book, text, kind="resources", element=plan.element, tier=plan.tier)

    def _overview(self, question: str, plan: QueryPlan) -> Reply:
        text = question.lower()
        intro = self.composer.by_id.get("intro.develop-a-plan.1")
        craft = self.composer.by_id.get("intro.craft-the-strategy.1")
        # "tier" and "element" are the toolkit's own closed vocabulary for its structure, when
        # a question names one and not the other; otherwise the labelled questions nearest to
        # it say what it asks ("what are the pillars?" was answered by the elements' own
        # summaries, "what are the levels?" by the tiers, and "the seven elements, as top-level
        # epics" names the elements).
        tiers = bool(re.search(r"\btiers?\b|cumulative", text))
        elements = bool(re.search(r"\belements?\b", text))
        if tiers == elements:
            # Several elements' summaries among the nearest answers outweigh the tiers'.
            elements = _asks_for_elements(plan.answered)
            tiers = not elements and _asks_for_tiers(plan.answered)
        if tiers:
            body, book = self.composer.tiers_overview(craft)
        elif elements:
            body, book = self.composer.elements_overview(intro)
        else:
            chosen = [p for p in self.composer.by_id.values() if p.kind == "intro"]
            extra = self.retriever.search(
                question,
                k=2,
                filters=Filters(kinds=("contact", "appendix")),
                vector=self.vector(question).tolist(),
                answered=plan.answered,
            )
            chosen += [
                h.passage
                for h in extra
                if (h.distance or 1.0) < 0.6 or h.passage.id in plan.answered[:ANSWERED_TOP]
            ]
            body, book = self.composer.quotes("From the toolkit:", chosen, question)
        return reply_from(book, body, kind="overview")

    def _explain(self, question: str, plan: QueryPlan) -> Reply:
        hits = self._search(question, plan, k=self.retriever.depth)
        chosen = [h for h in hits if h.passage.kind != "document"][:3]
        # A plan's own passages that rank among the best three follow the toolkit's, under
        # their own label: they add to the toolkit's answer, never replace it.
        documents = [h.passage for h in hits[:3] if h.passage.kind == "document"][:2]
        if not chosen:
            return self._refuse(refusal_plan("not_covered"))
        if re.match(r"\s*why\b", question.lower()):
            # "Why" is answered by the element's reasoning before its action items.
            reasons = self._search(question, plan, k=2, kinds=("rationale", "goal"))
            seen = {r.passage.id for r in reasons}
            chosen = reasons + [h for h in chosen if h.passage.id not in seen][:1]
        text, book = self.composer.quotes(
            "From the toolkit:",
            [h.passage for h in chosen[:3]] + documents,
            question,
            highlight=lambda item: self.query.progress.best_line(item.id, self.vector(question)),
        )
        top = chosen[0].passage
        # The tier of an explanation is the tier of the action item it quotes first, if any.
        item = next((h.passage for h in chosen[:3] if h.passage.kind == "action_item"), None)
        return reply_from(
            book,
            text,
            kind="explain",
            element=plan.element or top.element,
            tier=item.tier if item else top.tier,
        )

    def _suggestions(
        self, plan: QueryPlan, profile: Mapping[str, str], done: set[str]
    ) -> list[str]:
        """Follow-ups that fit the turn and the profile (the caller drops any already asked)."""
        element = plan.element
        name = self.composer.name(element) if element else None
        out: list[str] = []
        # The element the profile says is least far along, other than this turn's.
        behind = sorted(
            (e for e in ELEMENT_KEYS if e != element),
            key=lambda e: (TIER_KEYS.index(profile[e]) + 1) if e in profile else 0,
        )
        if plan.kind == "next_steps" and element:
            out.append("What resources go with this?")
            if plan.tier and plan.tier != "setting-the-standard":
                out.append(f"What comes after {TIER_NAMES[plan.tier]}?")
            out.append(f"What about {self.composer.name(behind[0]).lower()}?")
        elif plan.kind == "next_steps":
            out.append("What resources go with this?")
            out.append(f"What should we do next on {self.composer.name(behind[0]).lower()}?")
        elif plan.kind in ("explain", "resources") and name:
            level = profile.get(element or "")
            if level:
                out.append(f"What should we do next on {name.lower()}?")
            else:
                out.append(f"What should we do first on {name.lower()}?")
                out.append(f"We've done the essentials on {name.lower()}. What's next?")
            out.append("What should we work on next?")
        elif plan.kind == "overview":
            out += ["What are the three tiers?", "What are the seven elements?", SUGGESTED_START[0]]
        else:
            out += list(SUGGESTED_START)
        out += [q for q in SUGGESTED_START if q not in out]
        return out


def _asks_for_tiers(answered: Sequence[str]) -> bool:
    """Whether the labelled questions nearest to an overview question were answered by the
    tiers' own descriptions: it asks what the tiers are."""
    return sum(pid.startswith("tier.") for pid in answered[:ANSWERED_TOP]) >= TIERS_ASKED


def _asks_for_elements(answered: Sequence[str]) -> bool:
    """Whether the labelled questions nearest to an overview question were answered by the
    summaries or goals of several elements: it asks what the elements are."""
    elements = {
        pid.split(".", 1)[0]
        for pid in answered[:ANSWERED_TOP]
        if pid.endswith((".summary", ".goal"))
    }
    return len(elements) >= ELEMENTS_ASKED


def _said(text: str) -> str:
    """A question folded for comparison: case, spacing and punctuation do not count."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


# Earlier name of the plan, kept for callers that import it.
Route = QueryPlan
