"""The ``Assistant``: turns, follow-ups and the plan profile around retrieval and composition.

bot = Assistant.from_settings()
reply = bot.ask("What should we do next on equity?",
                history=["What are the first steps on equity?"],
                profile={"equity": "essentials"})
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from assistant.answer import Composer, reply_from
from assistant.config import ELEMENT_KEYS, TIER_KEYS, Settings
from assistant.errors import InvalidInput
from assistant.retrieval import Filters, Hit, HybridRetriever
from assistant.routing import (
    PROGRESS,
    Reading,
    Speller,
    normalise,
    on_topic,
    read_question,
    refusal_reason,
)
from assistant.schema import Kind, Passage, Reply
from assistant.toolkit import TIER_NAMES, Toolkit

PROFILE_VALUES = ("none", *TIER_KEYS)
# A dense match farther than this (cosine distance) is no match at all for an off-topic
# question; measured: toolkit questions score 0.35-0.70, unrelated ones 0.78-0.95.
OFF_TOPIC_DISTANCE = 0.74
# A question that names no element takes the element of its nearest passage if this close.
ELEMENT_GUESS_DISTANCE = 0.70
# An account of past work counts as matching an action item if this close.
DESCRIBED_DISTANCE = 0.55
ELEMENT_KINDS = ("action_item", "goal", "summary", "rationale", "resource", "footnote")
SUGGESTED_START = (
    "We're new to this. What are The Essentials for family caregiver support?",
    "We've got the basics covered on equity. What should we do next?",
    "What resources help us price a bundled payment?",
)
_REFUSALS = {
    "empty": "Please type a question about the Develop a Plan toolkit.",
    "clinical": (
        "The Develop a Plan toolkit is about a health plan's palliative care strategy; it does not "
        "give clinical, medication or dosing advice. Please ask a clinician."
    ),
    "instructions": (
        "I answer only from the Develop a Plan toolkit, and I can't change or reveal how I work."
    ),
    "other_program": (
        "The Develop a Plan toolkit draws on California's experience and does not cover other "
        "states' or countries' programs or rules."
    ),
    "uncovered": "The Develop a Plan toolkit does not cover that topic.",
    "off_topic": "The Develop a Plan toolkit does not cover that.",
}


class Route(BaseModel):
    """Where a question leads once history and profile are applied."""

    kind: Kind
    elements: list[str] = []
    tier: str | None = None
    reason: str = ""
    refusal: str | None = None
    known_tier: bool = True

    @property
    def element(self) -> str | None:
        return self.elements[0] if self.elements else None


def next_tier(tier: str) -> str:
    index = TIER_KEYS.index(tier)
    return TIER_KEYS[min(index + 1, len(TIER_KEYS) - 1)]


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


def resolve(
    reading: Reading,
    text: str,
    previous: Route | None,
    profile: Mapping[str, str],
    *,
    described: str | None = None,
) -> Route:
    """Combine one question's reading with the earlier turn and the profile.

    ``described`` is the tier the question's own account of past work points to ("we already
    offer palliative care in every line of business"); the profile outranks it.
    """
    if reading.refusal:
        return Route(kind="out_of_scope", refusal=reading.refusal)
    elements = list(reading.elements)
    carried = previous is not None and previous.kind != "out_of_scope"
    if (
        not elements
        and carried
        and previous
        and previous.elements
        and (
            reading.follow_up
            or reading.kind in (None, "resources", "next_steps")
            and (reading.direction or reading.follow_up or reading.kind == "resources")
        )
    ):
        elements = list(previous.elements)
    kind = reading.kind
    if kind is None and carried and previous and (reading.follow_up or reading.direction):
        kind = previous.kind if previous.kind != "overview" else "explain"
    kind = kind or "explain"
    route = Route(kind=kind, elements=elements[:3])
    if kind != "next_steps":
        route.tier = reading.tier if reading.tier and not reading.tier_done else None
        return route
    element = route.element
    if element is None and reading.tier is None and reading.direction in (None, "next"):
        return route  # each element takes its own next tier from the profile
    done = profile.get(element) if element else None
    done = done or described
    done_reason = _profile_reason if element in profile else _described_reason
    follows = (
        carried
        and previous is not None
        and (reading.follow_up or previous.kind == "next_steps" and previous.element == element)
    )
    before = previous.tier if follows and previous else None  # the earlier turn's tier
    after_before = f"The tier after {TIER_NAMES[before]}, as you asked." if before else ""
    if reading.tier:
        route.tier = next_tier(reading.tier) if reading.tier_done else reading.tier
        route.reason = (
            f"You said {TIER_NAMES[reading.tier]} is done, so this is the next tier."
            if reading.tier_done and reading.tier != route.tier
            else f"You asked about {TIER_NAMES[route.tier]}."
        )
    elif reading.direction == "top":
        route.tier, route.reason = (
            "setting-the-standard",
            "You asked how to lead the field: this is the toolkit's highest tier.",
        )
    elif reading.direction == "next" and reading.follow_up and before:
        route.tier, route.reason = next_tier(before), after_before
    elif reading.direction == "start":
        route.tier, route.reason = (
            "essentials",
            "You are starting out: these are the actions to do first.",
        )
    elif reading.direction == "next" and done:
        route.tier = next_tier(done)
        route.reason = done_reason(done, route.tier)
    elif reading.direction == "next" and before:
        route.tier, route.reason = next_tier(before), after_before
    elif reading.direction == "next" and re.search(
        r"\bbasics?\b|\bessentials?\b|\bfoundation", text
    ):
        route.tier = "progressing-further"
        route.reason = "You said the basics are covered: the toolkit's next tier is for those that have the basics covered."
    elif reading.direction is None and before:
        route.tier = before
        route.reason = f"The same tier as before, {TIER_NAMES[before]}."
    elif reading.direction is None and done:
        route.tier = next_tier(done)
        route.reason = done_reason(done, route.tier)
    else:
        route.tier, route.known_tier = "essentials", False
        route.reason = (
            "Showing The Essentials, where every plan starts. To get the next tier, set your plan "
            'profile or say what is done (for example: "we\'ve done the essentials").'
        )
    return route


def _model_words(settings: Settings) -> set[str]:
    """Whole English words in the embedding model's word-piece vocabulary: never "corrected"."""
    vocab = settings.resolved_model_path / "vocab.txt"
    try:
        return {w for w in vocab.read_text("utf-8").split() if w.isalpha() and len(w) >= 5}
    except OSError:
        return set()


def _described_reason(done: str, tier: str) -> str:
    if done == tier:
        return "What you describe is already at the toolkit's highest tier, shown again."
    return f"What you describe matches {TIER_NAMES[done]}, so these are the next actions."


def _profile_reason(done: str, tier: str) -> str:
    if done == tier:
        return f"Your profile marks {TIER_NAMES[done]} as complete: it is the toolkit's highest tier, shown again."
    return f"Your profile marks {TIER_NAMES[done]} as complete, so these are the next actions."


class Assistant:
    """Answers questions about the toolkit from the index, with citations."""

    def __init__(self, *, settings: Settings, retriever: HybridRetriever, llm: Any = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        passages = retriever.passages
        names = {p.element: p.title for p in passages if p.kind == "summary" and p.element}
        self.composer = Composer(passages=passages, element_names=names)
        self.speller = Speller.from_texts(
            [f"{p.title} {p.text}" for p in passages], known=_model_words(settings)
        )
        self._toolkit: Any = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Open the existing index; ``IndexMissing`` says how to build one if there is none."""
        from assistant.embeddings import make_embeddings
        from assistant.llm import make_chat_model
        from assistant.store import Store, connect

        settings = settings or Settings()
        client = connect(settings, create=False)  # fails fast, before the model loads
        embeddings = make_embeddings(settings)
        store = Store(client=client, settings=settings, embeddings=embeddings)
        retriever = HybridRetriever(store=store, passages=store.passages(), k=settings.k)
        return cls(settings=settings, retriever=retriever, llm=make_chat_model(settings))

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
        return set(self.composer.by_id)

    def passage(self, pid: str) -> Passage:
        return self.composer.get(pid)

    def route(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
    ) -> Route:
        """Replay the earlier turns, then route ``question``."""
        clean_profile = check_profile(profile)
        previous: Route | None = None
        for turn in history:
            text, _ = clean_question(turn, self.settings.max_question_chars)
            if text:
                previous = self._route_turn(text, previous, clean_profile)
        text, _ = clean_question(question, self.settings.max_question_chars)
        return self._route_turn(text, previous, clean_profile)

    def _route_turn(
        self, question: str, previous: Route | None, profile: Mapping[str, str]
    ) -> Route:
        """One turn: read the words, let the index settle what words leave open, resolve."""
        text = self.speller.correct(question)
        reading = read_question(text)
        original = refusal_reason(normalise(question))
        if original and not reading.refusal:
            reading.refusal, reading.kind = original, "out_of_scope"
        inherits = (
            previous is not None
            and bool(previous.elements)
            and (reading.follow_up or reading.direction is not None)
        )
        if (
            not reading.elements
            and not inherits
            and reading.kind in ("next_steps", "resources", None)
        ):
            kinds = ("resource",) if reading.kind == "resources" else ELEMENT_KINDS
            hits = self.retriever.search(text, k=3, filters=Filters(kinds=kinds))
            if (
                hits
                and hits[0].passage.element
                and (hits[0].distance or 1.0) <= ELEMENT_GUESS_DISTANCE
            ):
                reading.elements = [hits[0].passage.element]
        if reading.kind == "resources" and reading.soft_resources:
            top = self.retriever.search(text, k=1)
            if not top or top[0].passage.kind not in (
                "resource",
                "appendix",
            ):  # Appendix Two is a resource list
                reading.kind = "explain"
        described = None
        basics = re.search(r"\b(basics?|essentials?)\b", text)
        if reading.describes_progress and reading.elements and reading.tier is None and not basics:
            described = self._described_tier(text, reading.elements[0])
        return resolve(reading, normalise(text), previous, profile, described=described)

    def _described_tier(self, text: str, element: str) -> str | None:
        """The tier of the action item that the question's account of past work matches.

        When the two best items are nearly tied, the lower tier wins: better to repeat an item
        than to skip one.
        """
        account = " ".join(s for s in re.split(r"(?<=[.!?])\s+", text) if PROGRESS.search(s))
        hits = self.retriever.search(
            account or text, k=2, filters=Filters(element=element, kinds=("action_item",))
        )
        hits = [h for h in hits if h.distance is not None and h.distance <= DESCRIBED_DISTANCE]
        if not hits:
            return None
        close = [h for h in hits if h.score >= 0.9 * hits[0].score]
        return min(
            (h.passage.tier for h in close if h.passage.tier), key=TIER_KEYS.index, default=None
        )

    def retrieve(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        profile: Mapping[str, str] | None = None,
        k: int = 5,
    ) -> list[Passage]:
        """The ranked passages the routed question retrieves (for recall@k)."""
        route = self.route(question, history=history, profile=profile)
        if route.kind == "next_steps" and route.element and route.tier:
            return self.composer.items(route.element, route.tier)[:k]
        return [hit.passage for hit in self._search(question, route, k=k)]

    # -- the one public question ------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] | None = None,
        profile: Mapping[str, str] | None = None,
    ) -> Reply:
        """Answer ``question``; earlier user turns (oldest first) and the profile set context.

        Raises ``InvalidInput`` for an unknown profile element or tier.
        """
        text, notes = clean_question(question, self.settings.max_question_chars)
        history = [h for h in (history or []) if isinstance(h, str)]
        route = (
            self.route(text, history=history, profile=profile)
            if text
            else Route(kind="out_of_scope", refusal="empty")
        )
        reply = self._compose(text, route, check_profile(profile))
        reply.notes = notes + reply.notes
        if self.llm is not None and reply.kind != "out_of_scope":
            from assistant.llm import synthesize

            reply = synthesize(self.llm, text, reply, timeout=self.settings.llm_timeout)
        reply.suggestions = self._suggestions(route)
        return reply

    # -- composing ------------------------------------------------------------------------------------
    def _search(
        self, question: str, route: Route, *, k: int, kinds: tuple[str, ...] | None = None
    ) -> list[Hit]:
        filters = Filters(element=route.element, kinds=kinds)
        hits = self.retriever.search(question, k=k, filters=filters)
        if route.element and len(hits) < 2:
            hits = self.retriever.search(question, k=k, filters=Filters(kinds=kinds))
        return hits

    def _off_topic(self, question: str, route: Route) -> bool:
        """No element, none of the toolkit's words, and no passage near: not the toolkit's subject."""
        if route.elements or route.kind in ("out_of_scope", "overview") or on_topic(question):
            return False
        nearest = self.retriever.store.dense(question, k=1)
        return not nearest or nearest[0][1] > OFF_TOPIC_DISTANCE

    def _compose(self, question: str, route: Route, profile: Mapping[str, str]) -> Reply:
        if self._off_topic(question, route):
            return self._refuse("off_topic")
        match route.kind:
            case "out_of_scope":
                return self._refuse(route.refusal or "off_topic")
            case "next_steps":
                return self._next_steps(question, route, profile)
            case "resources":
                return self._resources(question, route)
            case "overview":
                return self._overview(question, route)
            case _:
                return self._explain(question, route)

    def _refuse(self, reason: str) -> Reply:
        lines = [
            _REFUSALS.get(reason, _REFUSALS["off_topic"]),
            "",
            "Questions I can answer from the toolkit:",
        ]
        lines += [f"- {q}" for q in SUGGESTED_START]
        return Reply(kind="out_of_scope", text="\n".join(lines))

    def _next_steps(self, question: str, route: Route, profile: Mapping[str, str]) -> Reply:
        tier = route.tier or "essentials"
        elements = route.elements or list(ELEMENT_KEYS)
        sections = []
        for element in elements:
            element_tier = tier
            if route.tier is None and element in profile:
                element_tier = next_tier(profile[element])
            sections.append(
                (element, element_tier, self._fitting_resources(question, element, element_tier))
            )
        reason = route.reason
        if route.tier is None:
            reason = (
                "No element named, so here is each element's next tier: the one after what your "
                "profile marks complete, or The Essentials where it marks nothing."
            )
        tiers = {section[1] for section in sections}
        text, book = self.composer.next_steps(sections, reason=reason)
        return reply_from(
            book,
            text,
            kind="next_steps",
            element=route.element,
            tier=tier if len(tiers) == 1 else None,
        )

    def _fitting_resources(
        self, question: str, element: str, tier: str, limit: int = 3
    ) -> list[Passage]:
        """The element's resources closest to the question and the tier's items."""
        leads = " ".join(p.lead or "" for p in self.composer.items(element, tier))
        hits = self.retriever.search(
            f"{question} {leads}", k=limit, filters=Filters(element=element, kinds=("resource",))
        )
        return [hit.passage for hit in hits]

    def _resources(self, question: str, route: Route) -> Reply:
        appendix = bool(
            re.search(
                r"without (a|an existing)|no (existing )?(palliative care )?program|start(ing)? a (new )?(palliative care )?program|new program|from scratch|basics of starting|appendix",
                normalise(question),
            )
        )
        if appendix and not route.elements:
            passages = [
                p for p in self.composer.by_id.values() if p.id.startswith("appendix.resource.")
            ]
            heading = "For plans without a palliative care program, Appendix Two lists:"
        else:
            hits = self._search(question, route, k=6 if route.element else 4, kinds=("resource",))
            if route.element:
                passages = [h.passage for h in hits]
            else:
                best = hits[0].score if hits else 0.0
                passages = [h.passage for h in hits if h.score >= 0.6 * best][:4]
            where = f" for {self.composer.name(route.element)}" if route.element else ""
            heading = f"Resources from the toolkit{where}, best match first:"
        if not passages:
            return self._refuse("off_topic")
        text, book = self.composer.listing(heading, passages)
        return reply_from(book, text, kind="resources", element=route.element, tier=route.tier)

    def _overview(self, question: str, route: Route) -> Reply:
        text = normalise(question)
        intro = self.composer.by_id.get("intro.develop-a-plan.1")
        craft = self.composer.by_id.get("intro.craft-the-strategy.1")
        if re.search(r"\btiers?\b|\blevels?\b|cumulative", text):
            body, book = self.composer.tiers_overview(craft)
        elif re.search(r"\belements?\b", text):
            body, book = self.composer.elements_overview(intro)
        else:
            chosen = [p for p in self.composer.by_id.values() if p.kind == "intro"]
            if re.search(
                r"contact|who (developed|made|wrote|funded|supported)|reach|email|website", text
            ):
                chosen.append(self.composer.get("contact"))
            if re.search(
                r"appendix|without (a|an|any)|no (existing )?(palliative care )?program|don't have (a|any)",
                text,
            ):
                chosen += [p for p in self.composer.by_id.values() if p.kind == "appendix"]
            body, book = self.composer.quotes("From the toolkit:", chosen, question)
        return reply_from(book, body, kind="overview")

    def _explain(self, question: str, route: Route) -> Reply:
        hits = self._search(question, route, k=3)
        if not hits:
            return self._refuse("off_topic")
        chosen = hits
        if re.match(r"\s*why\b", normalise(question)):
            # "Why" is answered by the element's reasoning before its action items.
            reasons = self._search(question, route, k=2, kinds=("rationale", "goal"))
            seen = {r.passage.id for r in reasons}
            chosen = reasons + [h for h in hits if h.passage.id not in seen][:1]
        text, book = self.composer.quotes(
            "From the toolkit:", [h.passage for h in chosen[:3]], question
        )
        top = chosen[0].passage
        return reply_from(
            book,
            text,
            kind="explain",
            element=route.element or top.element,
            tier=route.tier or top.tier,
        )

    def _suggestions(self, route: Route) -> list[str]:
        element = route.element
        name = self.composer.name(element) if element else None
        out: list[str] = []
        if route.kind == "next_steps" and element:
            out.append("What resources go with this?")
            if route.tier and route.tier != "setting-the-standard":
                out.append(f"What comes after {TIER_NAMES[route.tier]}?")
            other = ELEMENT_KEYS[(ELEMENT_KEYS.index(element) + 1) % len(ELEMENT_KEYS)]
            out.append(f"What about {self.composer.name(other).lower()}?")
        elif route.kind in ("explain", "resources") and name:
            out.append(f"What should we do first on {name.lower()}?")
            out.append(f"We've done the essentials on {name.lower()}. What's next?")
        elif route.kind == "overview":
            out += ["What are the three tiers?", SUGGESTED_START[0]]
        else:
            out += list(SUGGESTED_START[:2])
        return out[:3]
