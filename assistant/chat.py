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
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assistant.answer import Composer, reply_from
from assistant.config import ELEMENT_KEYS, OVERVIEW_FILE, TIER_KEYS, TOOLKIT_FILE, Settings
from assistant.errors import InvalidInput
from assistant.progress import account_clauses
from assistant.query import QueryPlan, QueryStage, next_tier, refusal_plan
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
    """Normalised profile; ``InvalidInput`` names the bad key or value and the valid ones."""
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
        if value != "none":
            out[key] = value
    return out


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
    ) -> QueryPlan:
        """The ``QueryPlan`` of ``question``, after the earlier turns (or ``previous``)."""
        clean_profile = check_profile(profile)
        text, _ = clean_question(question, self.settings.max_question_chars)
        turns = [] if previous is not None else self._recent(history)
        # The question, its accounts of past work and any earlier turn not seen before go
        # through the model together, in one call.
        self.retriever.store.embed_many([*turns, *([text, *account_clauses(text)] if text else [])])
        if previous is None:
            previous = self._replay(turns, clean_profile)
        if not text:
            return refusal_plan("empty")
        return self.query.plan(text, self.vector(text), previous=previous, profile=clean_profile)

    def _recent(self, history: Sequence[str]) -> list[str]:
        """The most recent earlier turns that are read (bounded work), cleaned, empty ones out."""
        recent = [t for t in history if isinstance(t, str)][-self.settings.max_history_turns :]
        cleaned = (clean_question(turn, self.settings.max_question_chars)[0] for turn in recent)
        return [text for text in cleaned if text]

    def _replay(self, turns: Sequence[str], profile: Mapping[str, str]) -> QueryPlan | None:
        """The last plan of the conversation, from its recent turns (``_recent``)."""
        previous: QueryPlan | None = None
        key: tuple[Any, ...] = (tuple(sorted(profile.items())),)
        for text in turns:
            key = (*key, text)
            cached = self._plans.get(key)
            if cached is None:
                cached = self.query.plan(
                    text, self.vector(text), previous=previous, profile=profile
                )
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
        text, _ = clean_question(question, self.settings.max_question_chars)
        return [hit.passage for hit in self._search(text, plan, k=k)]

    # -- the one public question ------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] | None = None,
        profile: Mapping[str, str] | None = None,
        previous: QueryPlan | None = None,
    ) -> Reply:
        """Answer ``question``; earlier user turns (oldest first) and the profile set context.

        Args:
            question: the user's words.
            history: earlier user turns, oldest first; only the last few are read.
            profile: element -> highest tier completed ("none" allowed).
            previous: the last turn's ``reply.plan``, instead of replaying ``history``.

        Raises ``InvalidInput`` for a question that is not text or an unknown profile value.
        """
        if not isinstance(question, str):
            raise InvalidInput(
                f"The question must be text, got {type(question).__name__}. Type a question."
            )
        if history is not None and (isinstance(history, str) or not isinstance(history, Sequence)):
            raise InvalidInput("history must be a list of earlier questions (text), oldest first.")
        text, notes = clean_question(question, self.settings.max_question_chars)
        clean_profile = check_profile(profile)
        self.retriever.take_problem()  # a problem of an earlier turn is not this one's
        plan = self.plan(
            text, history=list(history or []), profile=clean_profile, previous=previous
        )
        reply = self._compose(text, plan, clean_profile)
        problem = self.retriever.take_problem()
        reply.notes = notes + reply.notes + ([problem] if problem else [])
        if self.llm is not None and reply.kind != "out_of_scope":
            from assistant.llm import synthesize

            reply = synthesize(
                self.llm, text, reply, timeout=self.settings.llm_timeout, rules=self.query.rules
            )
        reply.plan = plan
        reply.alternatives = list(plan.alternatives) if reply.kind != "out_of_scope" else []
        reply.suggestions = self._suggestions(plan)
        return reply

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
        )

    def plan_vector(self, plan: QueryPlan, question: str) -> np.ndarray:
        """The vector a plan searches with: the question's own, or a follow-up's joint one."""
        return plan.search_vector if plan.search_vector is not None else self.vector(question)

    def _compose(self, question: str, plan: QueryPlan, profile: Mapping[str, str]) -> Reply:
        match plan.kind:
            case "out_of_scope":
                return self._refuse(plan)
            case "next_steps":
                return self._next_steps(question, plan, profile)
            case "resources":
                return self._resources(question, plan)
            case "overview":
                return self._overview(question)
            case _:
                return self._explain(question, plan)

    def _refuse(self, plan: QueryPlan) -> Reply:
        reason = plan.refusal or "not_covered"
        first = _REFUSALS.get(reason, _REFUSALS["not_covered"])
        if reason == "other_language":
            translated = self.query.rules.language_replies.get(plan.language or "")
            first = f"{translated}\n\n{first}" if translated else first
            return Reply(kind="out_of_scope", text=first)
        lines = [first, "", "Questions I can answer from the toolkit:"]
        lines += [f"- {q}" for q in SUGGESTED_START]
        return Reply(kind="out_of_scope", text="\n".join(lines))

    def _next_steps(self, question: str, plan: QueryPlan, profile: Mapping[str, str]) -> Reply:
        tier = plan.tier or "essentials"
        elements = plan.element_keys[:1] or list(ELEMENT_KEYS)
        sections = []
        vector = self.plan_vector(plan, question)
        for element in elements:
            element_tier = tier
            if plan.tier is None:
                element_tier = next_tier(profile[element]) if element in profile else "essentials"
            sections.append(
                (
                    element,
                    element_tier,
                    self._fitting_resources(vector, element, element_tier),
                )
            )
        reason = plan.tier_reason
        if plan.tier is None:
            reason = (
                "No element named, so here is each element's next tier: the one after what your "
                "profile marks complete, or The Essentials where it marks nothing."
            )
        tiers = {section[1] for section in sections}
        text, book = self.composer.next_steps(sections, reason=reason)
        documents = self._documents(question, plan)
        if documents:
            text = self.composer.documents(text, documents, question, book)
        return reply_from(
            book,
            text,
            kind="next_steps",
            element=plan.element,
            tier=tier if len(tiers) == 1 else None,
        )

    def _documents(self, question: str, plan: QueryPlan) -> list[Passage]:
        """A plan's own document passages that rank among the question's best hits."""
        if not self.retriever.has_documents:
            return []
        hits = self._search(question, plan, k=4)
        return [h.passage for h in hits if h.passage.kind == "document"][:2]

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

    def _overview(self, question: str) -> Reply:
        text = question.lower()
        intro = self.composer.by_id.get("intro.develop-a-plan.1")
        craft = self.composer.by_id.get("intro.craft-the-strategy.1")
        # "tier" and "element" are the toolkit's own closed vocabulary for its structure.
        if re.search(r"\btiers?\b|\blevels?\b|cumulative", text):
            body, book = self.composer.tiers_overview(craft)
        elif re.search(r"\belements?\b", text):
            body, book = self.composer.elements_overview(intro)
        else:
            chosen = [p for p in self.composer.by_id.values() if p.kind == "intro"]
            extra = self.retriever.search(
                question,
                k=2,
                filters=Filters(kinds=("contact", "appendix")),
                vector=self.vector(question).tolist(),
            )
            chosen += [h.passage for h in extra if (h.distance or 1.0) < 0.6]
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
            "From the toolkit:", [h.passage for h in chosen[:3]] + documents, question
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

    def _suggestions(self, plan: QueryPlan) -> list[str]:
        element = plan.element
        name = self.composer.name(element) if element else None
        out: list[str] = []
        if plan.kind == "next_steps" and element:
            out.append("What resources go with this?")
            if plan.tier and plan.tier != "setting-the-standard":
                out.append(f"What comes after {TIER_NAMES[plan.tier]}?")
            other = ELEMENT_KEYS[(ELEMENT_KEYS.index(element) + 1) % len(ELEMENT_KEYS)]
            out.append(f"What about {self.composer.name(other).lower()}?")
        elif plan.kind in ("explain", "resources") and name:
            out.append(f"What should we do first on {name.lower()}?")
            out.append(f"We've done the essentials on {name.lower()}. What's next?")
        elif plan.kind == "overview":
            out += ["What are the three tiers?", SUGGESTED_START[0]]
        else:
            out += list(SUGGESTED_START[:2])
        return out[:3]


# Earlier name of the plan, kept for callers that import it.
Route = QueryPlan
