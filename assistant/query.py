"""The query stage: a question, the conversation's last plan and the profile → a ``QueryPlan``.

Kind, element, tier direction and refusal reason come from fitted heads on the question's one
embedding (``assistant/classifier.py``); tier names, negation, the profile and the safety
guards are closed rules (``assistant/guards.py``); described progress is matched to the action
items (``assistant/progress.py``).

    stage = QueryStage(heads=heads, featurizer=featurizer, rules=Rules.load(), embed=embed)
    plan = stage.plan("We pay a bundled rate already. What now?", vector, previous=None, profile={})
    plan.kind, plan.element, plan.tier, plan.tier_reason   # 'next_steps', 'payment', ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, get_args

import numpy as np
from pydantic import BaseModel, Field

from assistant.answer import element_name
from assistant.classifier import (
    FOLLOW_UP_REFUSAL,
    NONE,
    Featurizer,
    Heads,
    is_short,
    tier_features,
)
from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.guards import Rules
from assistant.progress import Progress, ProgressReader, account_clauses
from assistant.schema import Alternative, Kind, Reply
from assistant.toolkit import TIER_NAMES

# An element the heads give less than this is not kept among the plan's elements.
ELEMENT_FLOOR = 0.12
# Below this for the best element, the question names none ("what should we work on next?").
ELEMENT_NONE = 0.25
# A next-steps question with a weaker best element than this, and a profile, gets every element.
SURE_ELEMENT = 0.7
# ... and one whose every word is used of every element alike, with or without a profile.
GENERIC_SURE = 0.9
# The tier head's vote against the direction head's (writer-held-out next-steps tier accuracy:
# 0.70 tier head alone, 0.82 direction alone, 0.84 equal votes, 0.87 at twice the weight, and
# within half a point of that from 1.5 to 4 times).
TIER_HEAD_WEIGHT = 2.0
# Far from every passage and unsure of its element, a question this much in words the toolkit
# never uses ("our kitchen remodel") is about something else.
UNKNOWN_WORDS = 0.5
# A reading whose score is at least this share of the best one is offered as an alternative.
CLOSE_SHARE = 0.6
# A short follow-up keeps its own element only when the heads give it at least this.
FOLLOW_UP_OWN_ELEMENT = 0.8
# Action items this close to the question (cosine), and near the best one, are its focus.
FOCUS_SIMILARITY = 0.45
FOCUS_MARGIN = 0.06
_WORDS = re.compile(r"[A-Za-z0-9']+")


class ElementScore(BaseModel):
    element: str
    score: float


class QueryPlan(BaseModel):
    """What a question asks for, and why; the only input of retrieval and composition."""

    question: str = Field(
        default="", description="what to search for: a follow-up keeps the earlier turn's words"
    )
    kind: Kind
    kind_scores: dict[str, float] = Field(default_factory=dict)
    elements: list[ElementScore] = Field(default_factory=list)
    tier: str | None = None
    tier_reason: str = ""
    known_tier: bool = True
    direction: str | None = None
    focus: list[str] = Field(default_factory=list, description="action item ids asked about")
    progress: Progress | None = None
    refusal: str | None = None
    language: str | None = None
    confidence: float = 1.0
    alternatives: list[Alternative] = Field(default_factory=list)

    # The question's vector (a follow-up's: joint with the earlier turn); kept out of JSON.
    search_vector: Any = Field(default=None, exclude=True, repr=False)
    answered: list[str] = Field(
        default_factory=list,
        exclude=True,
        repr=False,
        description="passages that answer the labelled questions nearest to this one",
    )

    @property
    def element(self) -> str | None:
        return self.elements[0].element if self.elements else None

    @property
    def element_keys(self) -> list[str]:
        return [e.element for e in self.elements]

    @property
    def reason(self) -> str:
        return self.tier_reason


def next_tier(tier: str) -> str:
    index = TIER_KEYS.index(tier)
    return TIER_KEYS[min(index + 1, len(TIER_KEYS) - 1)]


def refusal_plan(reason: str, *, language: str | None = None) -> QueryPlan:
    return QueryPlan(kind="out_of_scope", refusal=reason, language=language)


class QueryStage:
    """Turns one question into a ``QueryPlan``; holds the fitted heads and the closed rules."""

    def __init__(
        self,
        *,
        heads: Heads,
        featurizer: Featurizer,
        rules: Rules,
        embed: Callable[[list[str]], np.ndarray],
    ) -> None:
        from threadpoolctl import threadpool_limits

        # One question's arithmetic is a few small products: numpy's BLAS threads would only
        # spin beside the embedding model's threads on the machine's few cores (measured:
        # the bare embedding at p50 went from 7.0 to 14.8 ms once the heads' products grew).
        threadpool_limits(limits=1, user_api="blas")
        self.heads = heads
        self.featurizer = featurizer
        self.rules = rules
        self.embed = embed
        self.progress = ProgressReader(passages=featurizer.passages, rules=rules, embed=embed)
        self._items = self.progress.rows
        # The alternatives this stage offers ("Did you mean: resources for Payment?") are read
        # as what they offer when sent back, whatever the heads make of their words.
        self._offered = {
            alt.question.lower(): alt
            for kind in get_args(Kind)
            if kind != "out_of_scope"
            for element in (*ELEMENT_KEYS, None)
            for tier in ((None, *TIER_KEYS) if kind == "next_steps" and element else (None,))
            for alt in [_alternative(kind, element, tier)]
        }

    # -- the stage ----------------------------------------------------------------------------
    def plan(
        self,
        text: str,
        vector: np.ndarray,
        *,
        previous: QueryPlan | None = None,
        profile: Mapping[str, str] | None = None,
        progress_known: bool = False,
        not_started: Collection[str] = (),
    ) -> QueryPlan:
        """Read ``text`` (already cleaned) whose embedding is ``vector``; ``progress_known``:
        the caller knows which items are done (an unsure next-steps question then gets every
        element's standing, as with a profile of several elements); ``not_started``: elements
        the profile marks as having nothing complete."""
        profile = profile or {}
        if not text:
            return refusal_plan("empty")
        language = self._foreign_language(text)
        if language:
            return refusal_plan("other_language", language=language)
        guard = self.rules.guard(text)
        if guard:
            return refusal_plan(guard)

        carried = previous if previous is not None and previous.kind != "out_of_scope" else None
        sims = self.featurizer.similarities(vector[None, :])[0]
        features = self.featurizer.features(
            vector[None, :],
            sims[None, :],
            texts=[text],
            rules=self.rules,
            follow_ups=[carried is not None],
        )
        words = self.heads.word_row(text)
        near = self.heads.near(vector[None, :])
        near_kind = self.heads.near_projected(vector[None, :])
        kind_scores = self.heads.kind.probabilities(features, words, near=near_kind)[0]
        short = is_short(text)
        # A short follow-up ("Fine. Next tier?") reads as nothing on its own: refuse it only
        # when it is clearly out of scope even so.
        threshold = self.heads.refuse_threshold
        if carried is not None and short:
            threshold = max(threshold, FOLLOW_UP_REFUSAL)
        p_out = kind_scores.get("out_of_scope", 0.0)
        element_scores = self.heads.element.probabilities(features, words, near=near)[0]
        elements = self._elements(element_scores)
        # Nearer no passage than fair questions ever are.
        far = float(sims.max()) < self.heads.topic_floor
        # Far, and leaning out of scope, or about no element, or asking in words the toolkit
        # never uses (mostly, when unsure of an element; all of them, however sure - the
        # heads read "what should we do first about our kitchen remodel?" by its form):
        # not the toolkit's subject.
        leaning = max(kind_scores, key=kind_scores.__getitem__)
        unknown = self.featurizer.unknown_share(text) if far else 0.0
        # A question of stop words only ("What should we do next?") names no topic to be off.
        off_topic = (
            carried is None
            and far
            and bool(self.featurizer.content_words(text))
            and (
                p_out >= 0.3
                or leaning != "overview"
                and (
                    not elements
                    or unknown == 1.0
                    or not _sure(elements)
                    and unknown >= UNKNOWN_WORDS
                )
            )
        )
        offered = self._offered.get(text.lower())
        if offered is None and (off_topic or p_out >= threshold):
            reasons = self.heads.refusal.probabilities(features, words)[0]
            plan = refusal_plan(max(reasons, key=reasons.__getitem__))
            plan.kind_scores = kind_scores
            return plan

        in_scope = {k: v for k, v in kind_scores.items() if k != "out_of_scope"}
        if offered is not None:
            in_scope = {k: float(k == offered.kind) for k in in_scope}
            elements = [ElementScore(element=offered.element, score=1.0)] if offered.element else []
            carried = None
        total = sum(in_scope.values()) or 1.0
        in_scope = {k: v / total for k, v in in_scope.items()}
        ranked_kinds = sorted(in_scope, key=in_scope.__getitem__, reverse=True)
        kind: Kind = ranked_kinds[0]  # type: ignore[assignment]

        # A far question ("say we get all of that done - then what?") has no element reading
        # of its own worth keeping, so after an earlier turn it continues that turn.
        follows = carried is not None and (short or not elements or far)
        joint_text, joint_vector = text, vector
        if carried is not None and follows:
            # A follow-up is read and searched together with the earlier turn.
            joint_text = f"{carried.question} {text}"
            joint_vector = _joint(self._vector_of(carried), vector)
            if far:
                elements = list(carried.elements)
            elif (
                not elements
                or _weak(element_scores)
                or self.rules.refers_back(text)
                or self.rules.asks_after(text)
            ):
                # The element of both turns together ("...for equity? What comes after that?"):
                # also when the follow-up points back at the earlier answer ("those") or asks
                # for the tier after it, whatever its own words suggest on their own.
                elements = self._joint_elements(joint_text, joint_vector) or list(carried.elements)
            if short and carried.kind in ranked_kinds[:2] and in_scope[kind] < 0.6:
                kind = carried.kind
        elif carried is not None and self.rules.refers_back(text) and _weak(element_scores):
            # A longer turn that points back at the earlier answer ("we've done all four of
            # those; the cardiologists still don't refer") and does not clearly name another
            # element (as a short follow-up must) takes the element of both turns together; the
            # rest is read from its own words.
            both = _joint(self._vector_of(carried), vector)
            elements = self._joint_elements(f"{carried.question} {text}", both) or elements

        unsure = None
        if (
            kind == "next_steps"
            and carried is None
            and offered is None
            and elements
            and self.heads.names_no_element(text)
            and (elements[0].score < GENERIC_SURE or not self.featurizer.content_words(text))
        ):
            # Every word of it is one that questions use about every element alike ("where do
            # we start?", "what should we work on next?"): it names no element. The heads'
            # best guess is offered as an alternative. Such words can still name one together
            # ("every vendor we contract staffs differently" is quality): a reading the heads
            # are near certain of stands, unless the question has no word but stop words
            # ("where do we go from here?").
            unsure, elements = elements[0].element, []

        marked = {*profile, *not_started}
        if carried is None and len(marked) == 1 and kind != "overview" and not _sure(elements):
            # A profile that marks one element (done to some tier, or not started) says which
            # element the user is working on: a question unsure of its own element ("what
            # does the next tier list?") is read as about it.
            (only,) = marked
            unsure = None
            own = ElementScore(element=only, score=round(element_scores.get(only, 0.0), 4))
            elements = [own, *(e for e in elements if e.element != only)][:3]

        if (
            kind == "next_steps"
            and (len(profile) > 1 or progress_known)
            and elements
            and elements[0].score < SURE_ELEMENT
        ):
            # Unsure which element, with a profile to go by: where the plan stands on each,
            # with the best guess offered as an alternative.
            unsure, elements = elements[0].element, []

        plan = QueryPlan(
            search_vector=joint_vector,
            question=joint_text,
            kind=kind,
            kind_scores={k: round(v, 4) for k, v in kind_scores.items()},
            elements=elements,
        )
        if kind == "next_steps":
            self._tier(
                plan, text, features, words, profile, carried if follows else None, not_started
            )
        plan.focus = self._focus(sims, plan.element_keys)
        if not follows:
            plan.answered = self.heads.answered(near[0])
        plan.confidence = round(in_scope[kind] * (elements[0].score if elements else 1.0), 4)
        plan.alternatives = [
            self._with_tier(alt, text, features, words, profile, not_started)
            if plan.kind != "next_steps" and not follows
            else alt
            for alt in self._alternatives(plan, in_scope, ranked_kinds)
        ]
        if unsure:
            plan.alternatives = [_alternative("next_steps", unsure), *plan.alternatives][:2]
        return plan

    # -- parts --------------------------------------------------------------------------------
    def _joint_elements(self, joint_text: str, joint_vector: np.ndarray) -> list[ElementScore]:
        """The element reading of a follow-up and its earlier turn read together."""
        joint = self.featurizer.features(
            joint_vector[None, :], texts=[joint_text], rules=self.rules
        )
        words = self.heads.word_row(joint_text)
        near = self.heads.near(joint_vector[None, :])
        return self._elements(self.heads.element.probabilities(joint, words, near=near)[0])

    def _foreign_language(self, text: str) -> str | None:
        if self.rules.non_latin_share(text) > 0.5:
            return self.rules.language(text)[0]
        if len(_WORDS.findall(text)) < 3:
            return None
        language, confidence = self.rules.language(text)
        if language != "ENGLISH" and confidence >= self.heads.language_threshold:
            return language
        return None

    def _elements(self, scores: dict[str, float]) -> list[ElementScore]:
        ranked = sorted(
            (ElementScore(element=k, score=round(v, 4)) for k, v in scores.items() if k != NONE),
            key=lambda e: -e.score,
        )
        best = ranked[0].score if ranked else 0.0
        if scores.get(NONE, 0.0) > best or best < ELEMENT_NONE:
            return []
        return [e for e in ranked[:3] if e.score >= ELEMENT_FLOOR]

    def _tier(
        self,
        plan: QueryPlan,
        text: str,
        features: np.ndarray,
        words: Any,
        profile: Mapping[str, str],
        carried: QueryPlan | None,
        not_started: Collection[str] = (),
    ) -> None:
        """Set the plan's tier and the reason for it.

        The profile decides when it covers the element and the question names no tier; a
        follow-up moves from the earlier turn's tier; otherwise the tier head decides, from the
        question, the tier it names and the progress it describes.
        """
        named = self.rules.tier_named(text)
        element = plan.element
        progress = self.progress.read(text, element)
        plan.progress = progress if progress.matches else None
        if progress.done_items and element is None:
            element = progress.done_items[0].split(".", 1)[0]
            plan.elements = [ElementScore(element=element, score=1.0)]
        directions = self.heads.direction.probabilities(features, words)[0]
        bare_after = named is None and self.rules.asks_after(text) and not account_clauses(text)
        if named is None and self.rules.asks_after(text):
            # Asking what comes after ("what's next on equity?") is not asking how to lead
            # (55 of the 56 such labelled questions).
            directions["lead"] = 0.0
        plan.direction = max(directions, key=directions.__getitem__)
        # A question asking what comes after, with no account of past work and no tier named
        # ("What's next on payment?"), is read by what it asks for alone: the tier head had
        # learned "what's next" from accounts of advanced work, and read the bare question as
        # Setting the Standard. Any other question ("how do we become a leader?") it reads.
        tiers: dict[str, float] = {}
        if not bare_after:
            tier_row = tier_features(features, named, progress.evidence())
            tiers = self.heads.tier.probabilities(tier_row, words)[0]
        # The two heads vote: the tier head directly, the direction head through what each
        # direction means for this question.
        done_before = named or progress.done_tier
        meaning = {
            "start": "essentials",
            "lead": "setting-the-standard",
            "next": next_tier(done_before) if done_before else "progressing-further",
            "named": named or "essentials",
        }
        votes = {tier: TIER_HEAD_WEIGHT * tiers.get(tier, 0.0) for tier in TIER_KEYS}
        for direction, p in directions.items():
            votes[meaning[direction]] += p
        learned = max(votes, key=votes.__getitem__)
        done = profile.get(element) if element else None

        def take(tier: str, reason: str, known: bool = True) -> None:
            plan.tier, plan.tier_reason, plan.known_tier = tier, reason, known

        same_element = carried is not None and element in carried.element_keys
        # A follow-up on another element with its own account or profile is read on its own.
        own_reading = not same_element and bool(
            progress.matches or (element and (element in profile or element in not_started))
        )
        carried_tier = (
            (carried.tier or self.rules.tier_named(carried.question)) if carried else None
        )
        if carried is not None and carried_tier and named is None and not own_reading:
            shown_done = any(
                self.rules.refers_back(m.clause) and not m.negated for m in progress.matches
            )
            if plan.direction == "lead" and not progress.done:
                take("setting-the-standard", _LEAD)
            elif same_element and (progress.done or shown_done):
                # "We've done those (and X too)": the tier shown is complete, and so is
                # whatever the described items cover.
                done_tier = max(
                    filter(None, (carried_tier, progress.done_tier)), key=TIER_KEYS.index
                )
                take(next_tier(done_tier), _after(done_tier))
            elif same_element and (self.rules.asks_after(text) or plan.direction == "next"):
                take(next_tier(carried_tier), _after(carried_tier))
            else:
                take(carried_tier, f"The same tier as before, {TIER_NAMES[carried_tier]}.")
            if done and plan.tier and TIER_KEYS.index(plan.tier) < TIER_KEYS.index(next_tier(done)):
                # The profile says where the plan stands now: a follow-up never goes below the
                # tier after what it marks complete.
                take(*_after_profile(done))
        elif element is None:
            plan.tier = None  # each element takes its own next tier from the profile
        elif (
            element in not_started
            and named is None
            and not progress.done
            and plan.direction != "lead"
        ):
            take(
                "essentials",
                f"Your profile marks nothing on {element_name(element)} as complete: these are "
                "the actions to do first.",
            )
        elif done and named in (None, done):
            if plan.direction == "lead":
                take("setting-the-standard", _LEAD)
            else:
                take(*_after_profile(done))
        elif (
            named
            and named != "setting-the-standard"
            and (completed := self._completed(text, named, progress))
        ):
            # "We're past the basics (and pay on outcomes too)": the tier after the highest one
            # said or described as done; "...how do we lead?" still asks for the highest.
            # A clause that names the tier ("we've got the basics covered") says only that.
            described = [m.tier for m in progress.done if not self.rules.tier_named(m.clause)]
            done_tier = max([completed, *described], key=TIER_KEYS.index)
            if plan.direction == "lead":
                take("setting-the-standard", _LEAD)
            elif done_tier != completed:
                take(next_tier(done_tier), _progress_reason(progress, next_tier(done_tier)))
            else:
                take(
                    next_tier(completed),
                    f"You said {TIER_NAMES[completed]} is done, so this is the next tier.",
                )
        elif named:
            take(named, f"You asked about {TIER_NAMES[named]}.")
        elif progress.done and learned != "essentials":
            take(learned, _progress_reason(progress, learned))
        elif learned == "setting-the-standard":
            take(learned, _LEAD)
        elif learned == "progressing-further" and progress.matches:
            take(learned, "You have the basics covered: this is the toolkit's next tier.")
        elif progress.matches:
            # Said in the question's own account ("we're new to this", "nothing is set up").
            take("essentials", "You are starting out: these are the actions to do first.")
        else:
            take(
                "essentials",
                "Showing The Essentials, where every plan starts. To get the next tier, set your "
                'plan profile or say what is done (for example: "we\'ve done the essentials").',
                known=False,
            )

    def _vector_of(self, plan: QueryPlan) -> np.ndarray:
        if plan.search_vector is not None:
            return np.asarray(plan.search_vector, dtype=np.float32)
        return np.asarray(self.embed([plan.question]), dtype=np.float32)[0]

    def _completed(self, text: str, named: str, progress: Progress) -> str | None:
        """The tier the question says is complete, in so many words or in an account."""
        return self.rules.tier_completed(text) or (named if self._named_done(progress) else None)

    def _named_done(self, progress: Progress) -> bool:
        """A tier named in an account of past work ("we've got the basics covered"), not negated."""
        return any(
            len(m.clause.split()) >= 3 and self.rules.tier_named(m.clause) and not m.negated
            for m in progress.matches
        )

    def _focus(self, sims: np.ndarray, elements: list[str]) -> list[str]:
        passages = self.featurizer.passages
        rows = [i for i in self._items if not elements or passages[i].element in elements[:1]]
        if not rows:
            return []
        best = max(float(sims[i]) for i in rows)
        chosen = sorted(
            (i for i in rows if sims[i] >= max(FOCUS_SIMILARITY, best - FOCUS_MARGIN)),
            key=lambda i: -float(sims[i]),
        )
        return [passages[i].id for i in chosen[:3]]

    def _with_tier(
        self,
        alt: Alternative,
        text: str,
        features: np.ndarray,
        words: Any,
        profile: Mapping[str, str],
        not_started: Collection[str],
    ) -> Alternative:
        """A next-steps reading offered beside another kind, with the tier the question asks
        for when read as next steps ("which plans are out in front on equity, and what do they
        do?" offers Setting the Standard on equity, not the tier a bare "what's next" gets)."""
        if alt.kind != "next_steps" or alt.element is None:
            return alt
        reading = QueryPlan(
            kind="next_steps", elements=[ElementScore(element=alt.element, score=1.0)]
        )
        self._tier(reading, text, features, words, profile, None, not_started)
        return _alternative("next_steps", alt.element, reading.tier) if reading.tier else alt

    def _alternatives(
        self, plan: QueryPlan, kinds: dict[str, float], ranked: list[str]
    ) -> list[Alternative]:
        out: list[Alternative] = []
        element = plan.element
        second = ranked[1] if len(ranked) > 1 else None
        if second and second != plan.kind and kinds[second] >= CLOSE_SHARE * kinds[plan.kind]:
            out.append(_alternative(second, element))  # type: ignore[arg-type]
        if (
            len(plan.elements) > 1
            and plan.elements[1].score >= CLOSE_SHARE * plan.elements[0].score
        ):
            out.append(_alternative(plan.kind, plan.elements[1].element))
        return out[:2]


_LEAD = "You asked how to lead the field: this is the toolkit's highest tier."


NO_TIER_AFTER = "Setting the Standard is the toolkit's highest tier; there is no tier after it."


def _after_profile(done: str) -> tuple[str, str]:
    """The tier after the one the profile marks complete, and the reason for it."""
    tier = next_tier(done)
    if tier == done:
        return tier, (
            f"Your profile marks {TIER_NAMES[done]} as complete: it is the toolkit's highest "
            "tier, shown again."
        )
    return (
        tier,
        f"Your profile marks {TIER_NAMES[done]} as complete, so these are the next actions.",
    )


def _after(tier: str) -> str:
    if tier == "setting-the-standard":
        return NO_TIER_AFTER
    return f"The tier after {TIER_NAMES[tier]}, as you asked."


def _joint(earlier: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Two turns read together: the normalised sum of their vectors (no second model call)."""
    both = np.asarray(earlier, dtype=np.float32) + np.asarray(current, dtype=np.float32)
    return both / (np.linalg.norm(both) or 1.0)


def _sure(elements: list[ElementScore]) -> bool:
    """An element reading strong enough to stand without nearby passages."""
    return bool(elements) and elements[0].score >= SURE_ELEMENT


def _weak(scores: dict[str, float]) -> bool:
    """No element stands out: a short follow-up keeps the earlier turn's element."""
    best = max((v for k, v in scores.items() if k != NONE), default=0.0)
    return best < FOLLOW_UP_OWN_ELEMENT


def _progress_reason(progress: Progress, tier: str) -> str:
    said = "; ".join(f"“{m.clause}” ({m.item})" for m in progress.done)
    if tier == "setting-the-standard" and progress.done_tier == tier:
        head = "What you describe is already at Setting the Standard, the toolkit's highest tier, shown again."
    else:
        before = TIER_KEYS[max(TIER_KEYS.index(tier) - 1, 0)]
        head = f"What you describe covers {TIER_NAMES[before]}, so these are the next actions."
    return f"{head} Read as done: {said}."


# A next-steps reading offered with its tier names the tier, so the offered question reads the same.
_TIER_QUESTIONS = {
    "essentials": "What are The Essentials for {element}?",
    "progressing-further": "What does Progressing Further on {element} involve?",
    "setting-the-standard": "What does Setting the Standard on {element} involve?",
}


def _alternative(kind: Kind, element: str | None, tier: str | None = None) -> Alternative:
    name = element_name(element) if element else ""
    low = name.lower()
    if kind == "next_steps" and element and tier:
        return Alternative(
            kind=kind,
            element=element,
            tier=tier,
            label=f"{TIER_NAMES[tier]} on {name}",
            question=_TIER_QUESTIONS[tier].format(element=low),
        )
    match kind:
        case "resources":
            label = f"resources for {name}" if name else "resources"
            question = (
                f"What resources does the toolkit list for {low}?"
                if name
                else "What resources does the toolkit list?"
            )
        case "next_steps":
            label = f"next steps on {name}" if name else "next steps"
            question = (
                f"What should our plan do next on {low}?"
                if name
                else "What should our plan do next?"
            )
        case "overview":
            label, question = (
                "an overview of the toolkit",
                "What are the seven elements of the toolkit?",
            )
        case _:
            label = f"what the toolkit says about {name}" if name else "what the toolkit says"
            question = (
                f"Why does the toolkit recommend work on {low}?"
                if name
                else "What is the Develop a Plan toolkit?"
            )
    return Alternative(kind=kind, element=element, label=label, question=question)


Reply.model_rebuild(_types_namespace={"QueryPlan": QueryPlan})
