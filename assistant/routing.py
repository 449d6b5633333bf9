"""Read a question: which element, which tier (or tier direction), and what kind of answer.

Pure text rules over spelling-corrected words; no model. ``chat.py`` combines the result
with the history and the profile.

    read_question("We've got the basics covered on equity. What next?")
    # Reading(elements=['equity'], tier=None, direction='next', kind='next_steps', ...)
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel

from assistant.config import TIER_KEYS

Direction = Literal["start", "next", "top"]

# Words that name an element. Stems end with '*'. Order inside a list does not matter.
ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "payment": (
        "payment*",
        "pay",
        "paying",
        "payer*",
        "reimburs*",
        "bundled",
        "bundle*",
        "fee-for-service",
        "compensat*",
        "pricing",
        "price",
        "financ*",
        "funding",
        "rates",
        "money",
    ),
    "quality": (
        "quality",
        "standards",
        "minimum standards",
        "monitor*",
        "performance",
        "pcqc",
        "accreditation",
        "certification",
        "qualifications",
        "benchmark*",
        "quintuple",
    ),
    "integration": (
        "integrat*",
        "lines of business",
        "line of business",
        "nursing home*",
        "assisted living",
        "silo*",
        "complex care",
        "long-term services",
        "ltss",
        "aligned",
        "care continuum",
    ),
    "uptake": (
        "uptake",
        "utiliz*",
        "utilis*",
        "referral*",
        "refer",
        "awareness",
        "eligib*",
        "identify members",
        "identification",
        "identifying",
        "marketing",
        "outreach",
        "demand",
        "enroll more",
        "underused",
        "underutiliz*",
        "referr*",
        "use palliative",
        "using palliative",
        "access palliative",
        "community talks",
        "senior centers",
        "case managers",
        "care managers",
    ),
    "equity": (
        "equity",
        "equitable",
        "inequit*",
        "dei",
        "diversity",
        "diverse",
        "disparit*",
        "marginalized",
        "communities of color",
        "racial",
        "race",
        "black",
        "underserved",
        "under-served",
        "inclusion",
    ),
    "workforce-capacity": (
        "workforce",
        "generalist",
        "primary palliative care",
        "clinician training",
        "train clinicians",
        "training clinicians",
        "train our clinicians",
        "capacity",
        "shortage",
        "nurses",
        "physicians",
        "clinicians",
        "vitaltalk",
        "elnec",
        "staffing",
        "training",
        "train-the-trainer",
        "communication skills",
        "symptom management",
        "educational programs",
        "education",
    ),
    "family-caregiver-support": (
        "caregiver*",
        "care giver*",
        "carer*",
        "caregiving",
        "family",
        "families",
        "respite",
        "zarit",
        "zeit",
        "burden",
        "bereavement",
    ),
}
# "training" alone is weakest: staff training is Uptake, caregiver training is caregiver support.
_WEAK = {
    "training",
    "education",
    "clinicians",
    "capacity",
    "family",
    "families",
    "diverse",
    "pay",
    "refer",
    "performance",
    "standards",
    "price",
    "money",
    "aligned",
    "burden",
}

TIER_WORDS: dict[str, tuple[str, ...]] = {
    "essentials": (
        "the essentials",
        "essentials",
        "essential tier",
        "tier 1",
        "tier one",
        "first tier",
    ),
    "progressing-further": (
        "progressing further",
        "progressing",
        "tier 2",
        "tier two",
        "second tier",
        "middle tier",
    ),
    "setting-the-standard": (
        "setting the standard",
        "set the standard",
        "sets the standard",
        "tier 3",
        "tier three",
        "third tier",
        "top tier",
        "highest tier",
    ),
}
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "top": (
        "leader",
        "leaders",
        "lead the field",
        "leading",
        "to lead",
        "we lead",
        "lead on",
        "lead in",
        "lead the field",
        "lead the way",
        "leading edge",
        "ahead of the curve",
        "cutting-edge",
        "cutting edge",
        "most advanced",
        "excellence",
        "excel",
        "best in class",
        "best-in-class",
        "gold standard",
        "exemplary",
        "the field",
        "state of the art",
        "innovat*",
        "go all the way",
        "the top",
        "national",
        "pioneer*",
        "strive",
    ),
    "next": (
        "next",
        "after that",
        "after this",
        "then what",
        "now what",
        "basics covered",
        "basics are covered",
        "basics done",
        "basics are done",
        "beyond",
        "further",
        "build on",
        "done with",
        "finished",
        "completed",
        "covered",
        "moving on",
        "level up",
        "step up",
        "more advanced",
        "what comes after",
        "what's after",
        "whats after",
        "already have",
        "already did",
        "already done",
        "we've done",
        "we have done",
        "in place",
        "got the basics",
        "have the basics",
        "mastered",
    ),
    "start": (
        "new to",
        "starting out",
        "where do we start",
        "where should we start",
        "begin",
        "beginning",
        "first step",
        "first steps",
        "getting started",
        "get started",
        "from scratch",
        "nothing yet",
        "day one",
        "kick off",
        "groundwork",
        "brand new",
        "just starting",
    ),
    "start_weak": ("start", "starting", "first", "basics", "at the very least", "foundation*"),
}
_DONE_WORDS = (
    "done",
    "completed",
    "complete",
    "finished",
    "covered",
    "after",
    "past",
    "beyond",
    "mastered",
    "through",
    "in place",
    "have the",
    "got the",
    "did the",
    "with the",
)

OVERVIEW_CUES = (
    "seven elements",
    "7 elements",
    "the elements",
    "which elements",
    "what elements",
    "all elements",
    "list the elements",
    "elements are",
    "the tiers",
    "three tiers",
    "3 tiers",
    "what tiers",
    "which tiers",
    "tiers",
    "this toolkit",
    "toolkit about",
    "toolkit for",
    "toolkit written",
    "the toolkit cover",
    "the toolkit organized",
    "overview",
    "how is it organized",
    "how is the toolkit organized",
    "what does it cover",
    "what is this",
    "who is it for",
    "who is this for",
    "summarize",
    "summary of",
    "big picture",
    "develop a plan",
    "craft the strategy",
    "who developed",
    "who made",
    "who wrote",
    "contact",
    "appendix",
    "where do the",
    "come from",
    "cumulative",
)
# Cues that ask for resources only when the best passage is a resource row.
SOFT_RESOURCE_CUES = (
    "anything on",
    "anything about",
    "do you have",
    "is there a",
    "is there anything",
    "are there",
    "where can i",
    "where can we",
    "a toolkit",
    "anything that",
)
# Cues that ask for resources whatever the best passage is.
STRONG_RESOURCE_CUES = (
    "resource*",
    "tool",
    "tools",
    "reading",
    "guide",
    "guides",
    "report*",
    "guidance on",
    "any guidance",
    "checklist*",
    "program example",
    "example program*",
    "course*",
    "webinar*",
    "video*",
    "glossary",
    "database*",
    "link*",
    "material*",
    "reference*",
    "where can i find",
    "something to help",
    "anything to help",
    "anything that helps",
    "recommend a",
    "templates",
    "template",
    "assessment tool*",
    "instrument*",
    "case stud*",
    "examples of",
    "example of",
    "documents",
    "publications",
    "articles",
    "blog",
    "curriculum",
    "point me",
)
RESOURCE_CUES = STRONG_RESOURCE_CUES + SOFT_RESOURCE_CUES
NEXT_CUES = (
    "what should we do",
    "what should i do",
    "what do we do",
    "what can we do",
    "what to do",
    "what should we",
    "what should our",
    "should we be doing",
    "should our plan",
    "be doing",
    "next step",
    "next steps",
    "action item*",
    "actions",
    "steps",
    "tackle",
    "priorit*",
    "what now",
    "now what",
    "where do we",
    "where should we",
    "how do we",
    "how can we",
    "how should we",
    "what's in",
    "whats in",
    "recommendations",
    "plan for",
    "roadmap",
    "what else",
    "move forward",
    "get better",
    "todo",
    "focus on",
    "work on",
    "put in place",
    "do first",
    "begin",
    "get started",
    "level up",
    "become",
    "what does it take",
    "what does that take",
    "what would it take",
    "how do we get there",
)
# A question that opens like this asks for a fact, unless it names a tier or a next step.
QUESTION_OPENERS = re.compile(
    r"^(why|what does|what kind|what type|does|do|did|is|are|can|could|should|would|will|"
    r"how does|how often|how many|how much|how are|how is|who|whom|when|where does|where is|"
    r"tell me|explain|define)\b"
)
EXPLAIN_CUES = (
    "why",
    "what is",
    "what's a",
    "what are",
    "what does",
    "how does",
    "explain",
    "meaning",
    "mean",
    "define",
    "definition",
    "who",
    "how many",
    "how much",
    "percent",
    "%",
    "survey",
    "according",
    "what kind",
    "which survey",
    "when",
    "evidence",
    "say about",
    "tell me about",
)

INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instruction|prompt|rule|guideline|above|previous|system)s?\b"
    r"|\b(system|hidden|initial|original) prompt\b|\bprint (your|the) (prompt|instructions)\b"
    r"|\byou are now\b|\bjailbreak\b|\bdeveloper mode\b|\bDAN\b|\bpretend (you|to be)\b"
    r"|\breveal (your|the)\b|\bact as (an?|my)\b|\brole-?play\b|\bsystem override\b|\bdebug mode\b"
    r"|\bapi keys?\b|\byour (configuration|instructions|rules)\b|\bforget the toolkit\b"
    r"|\bmake up\b|\binvent\b|\bfabricate\b|\bsound impressive\b|\bwithout (the )?citations?\b",
    re.IGNORECASE,
)
CLINICAL = re.compile(
    r"\b(dose|doses|dosing|dosage|mg|milligrams?|mcg|titrat\w*|prescrib\w*|morphine|opioids?|"
    r"fentanyl|oxycodone|hydromorphone|methadone|lorazepam|haloperidol|benzodiazepines?|"
    r"side effects?|overdose|diagnos\w*|prognosis|treat (my|his|her|a) patient|my (mom|mother|dad|father|patient|husband|wife)\b.{0,40}\b(pain|symptom|medication)|"
    r"(treat|manage|relieve|control)\w* (his|her|my|their|the patient's)? ?(pain|nausea|dyspnea|breathlessness|delirium|constipation|symptoms?)|"
    r"what medication|which medication|what drug|which drug|chemo\w*|"
    r"(treat|cure|heal|fix) (my|his|her|their)\b|my (own )?[a-z ]{0,20}(pain|symptoms?|medications?|cancer|illness)\b)\b",
    re.IGNORECASE,
)
OTHER_STATES = (
    "alabama",
    "alaska",
    "arizona",
    "arkansas",
    "colorado",
    "connecticut",
    "delaware",
    "florida",
    "georgia",
    "hawaii",
    "idaho",
    "illinois",
    "indiana",
    "iowa",
    "kansas",
    "kentucky",
    "louisiana",
    "maine",
    "maryland",
    "massachusetts",
    "michigan",
    "minnesota",
    "mississippi",
    "missouri",
    "montana",
    "nebraska",
    "nevada",
    "new hampshire",
    "new jersey",
    "new mexico",
    "new york",
    "north carolina",
    "north dakota",
    "ohio",
    "oklahoma",
    "oregon",
    "pennsylvania",
    "rhode island",
    "south carolina",
    "south dakota",
    "tennessee",
    "texas",
    "utah",
    "vermont",
    "virginia",
    "washington",
    "west virginia",
    "wisconsin",
    "wyoming",
    "canada",
    "uk",
    "nhs",
    "australia",
)
# Topics next to the toolkit's that it does not cover: answering would mean inventing.
UNCOVERED = re.compile(
    r"\b(billing codes?|cpt|icd-?1?0?|hcpcs|modifier|claims? submission|hipaa|stark law|"
    r"star ratings?|hedis|medical loss ratio|prior authorization|hospice eligibility|"
    r"hospice benefit rules?|six-month prognosis|6-month prognosis|salary|salaries|stock price|"
    r"lawsuit|malpractice|per diem|legally|legal requirements?|liability|election statement|"
    r"deny (a |the )?claims?|appeal (a |the )?denial|hospice (payment )?rates?)\b",
    re.IGNORECASE,
)
# Words that show a question is about the toolkit's subject at all.
DOMAIN = re.compile(
    r"\b(palliative|serious(ly)? ill\w*|health plans?|plans?|members?|providers?|care|toolkit|"
    r"medi-?cal|medicaid|medicare|mcps?|hospice|end-of-life|end of life|tiers?|essentials|"
    r"elements?|champions?|programs?|strateg\w+|network|contract\w*|incentive\w*|staff|benefits?)\b",
    re.IGNORECASE,
)

Kind = Literal["next_steps", "explain", "resources", "overview", "out_of_scope"]
PROGRESS = re.compile(
    r"\b(already|we've (got|done|set up|built|started)|we have (done|set up|built|got)|we do|"
    r"we're doing|in place|we now|we currently|we offer|we pay|we use|we send|we train|we require|"
    r"we run|we contract|we've been)\b"
)
NEGATED = re.compile(
    r"\b(nothing|haven't|have not|not yet|don't have|do not have|no formal|never)\b"
)


class Reading(BaseModel):
    """What one question says on its own, before history and profile are applied."""

    elements: list[str]
    tier: str | None = None
    tier_done: bool = False
    direction: Direction | None = None
    kind: Kind | None = None
    refusal: str | None = None
    follow_up: bool = False
    soft_resources: bool = False
    describes_progress: bool = False


def normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    return re.sub(r"\s+", " ", text).strip()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9%]+(?:[-'][a-z0-9]+)*", text)


def _has(text: str, words: list[str], cue: str) -> bool:
    """Phrase or stem (``word*``) match on word boundaries."""
    if cue.endswith("*"):
        stem = cue[:-1]
        return any(w.startswith(stem) for w in words) if " " not in stem else stem in text
    if " " in cue or "-" in cue or "'" in cue or not cue.isalnum():
        return re.search(rf"(?<![a-z0-9]){re.escape(cue)}(?![a-z0-9])", text) is not None
    return cue in words


class Speller:
    """Corrects words the toolkit and the cue lists do not know: 'equty' → 'equity'.

    Only words of five letters or more are touched, and only towards a close known word, so
    real words are left alone.
    """

    def __init__(self, vocabulary: set[str], *, known: set[str] | None = None) -> None:
        self.vocabulary = {w for w in vocabulary if len(w) >= 3}
        self.known = known or set()
        self._long = sorted(w for w in self.vocabulary if len(w) >= 4)
        self._cache: dict[str, str] = {}

    @classmethod
    def from_texts(cls, texts: list[str], *, known: set[str] | None = None) -> Speller:
        vocabulary: set[str] = set()
        for text in texts:
            vocabulary.update(_words(normalise(text)))
        for cues in (
            *ELEMENT_WORDS.values(),
            *TIER_WORDS.values(),
            *DIRECTION_WORDS.values(),
            OVERVIEW_CUES,
            RESOURCE_CUES,
            NEXT_CUES,
            EXPLAIN_CUES,
        ):
            for cue in cues:
                vocabulary.update(_words(cue.rstrip("*")))
        return cls(vocabulary, known=known)

    def word(self, word: str) -> str:
        if len(word) < 5 or not word.isalpha() or word in self.vocabulary or word in self.known:
            return word
        if any(
            word.endswith(end) and word[: -len(end)] in self.vocabulary
            for end in ("s", "es", "ed", "ing", "d")
        ):
            return word
        if word not in self._cache:
            close = difflib.get_close_matches(word, self._long, n=1, cutoff=0.8)
            self._cache[word] = close[0] if close else word
        return self._cache[word]

    def correct(self, text: str) -> str:
        return re.sub(r"[a-z]+(?:'[a-z]+)*", lambda m: self.word(m.group(0)), normalise(text))


def any_cue(text: str, cues: tuple[str, ...]) -> bool:
    words = _words(text)
    return any(_has(text, words, cue) for cue in cues)


def find_elements(text: str) -> list[str]:
    """Element keys named in ``text``, strongest first; weak words count only alone."""
    words = _words(text)
    strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    last: dict[str, int] = {}
    for key, cues in ELEMENT_WORDS.items():
        for cue in cues:
            if _has(text, words, cue):
                bucket = weak if cue.rstrip("*") in _WEAK else strong
                bucket[key] = bucket.get(key, 0) + 1
                last[key] = max(last.get(key, -1), text.rfind(cue.rstrip("*").split(" ")[0]))
    # More cues first; on a tie, the element named last (the question usually comes last).
    for bucket in (strong, weak):
        if bucket:
            return sorted(bucket, key=lambda k: (-bucket[k], -last[k]))
    return []


def find_tier(text: str) -> tuple[str | None, bool]:
    """An explicitly named tier, and whether the text says it is done ("after the essentials")."""
    for key in reversed(
        TIER_KEYS
    ):  # the longer names first: "setting the standard" before "standard"
        for cue in TIER_WORDS[key]:
            match = re.search(rf"(?<![a-z0-9]){re.escape(cue)}(?![a-z0-9])", text)
            if match:
                start = match.start() if match else 0
                before = text[max(0, start - 30) : start]
                after = text[match.end() : match.end() + 25] if match else ""
                done = any(w in before for w in _DONE_WORDS) or bool(
                    re.match(
                        r"\s*(tier\s*)?(items\s*)?(is|are)?\s*(done|covered|completed|finished|in place|nailed)",
                        after,
                    )
                )
                if "what comes after" in before or "what's after" in before:
                    done = True
                return key, done
    return None, False


def find_direction(text: str) -> Direction | None:
    """Which way the question points; strong "start" phrases outrank "next" words."""
    for group in ("top", "start", "next", "start_weak"):
        if any_cue(text, DIRECTION_WORDS[group]):
            return "start" if group == "start_weak" else group  # type: ignore[return-value]
    return None


def refusal_reason(text: str) -> str | None:
    """Why a question is out of scope, or None."""
    if INJECTION.search(text):
        return "instructions"
    if CLINICAL.search(text):
        return "clinical"
    if any(re.search(rf"\b{re.escape(state)}\b", text) for state in OTHER_STATES):
        return "other_program"
    if UNCOVERED.search(text):
        return "uncovered"
    return None


def read_question(question: str) -> Reading:
    """Everything the words of one question say, without context.

    The kind of answer is read from the question sentences ("...?") when there are any, so that
    an account of past work ("we catalog resources. What next?") does not set it.
    """
    text = normalise(question)
    asked = [part for part in re.split(r"(?<=[.!?])\s+", text) if part.endswith("?")]
    ask = " ".join(asked) if asked else text
    if len(_words(ask)) < 4:  # "ideas?", "thoughts?": the rest of the text says what is asked
        ask = text
    elements = find_elements(text)
    tier, tier_done = find_tier(text)
    direction = find_direction(text)
    refusal = refusal_reason(text)
    follow_up = bool(
        re.match(
            r"^(and|what about|how about|also|ok|okay|then|so|and for|same for|what else)\b", text
        )
        or any_cue(text, ("that", "this", "those", "these", "it", "there"))
        and len(_words(text)) <= 9
    )
    kind: Kind | None = None
    asks_fact = bool(QUESTION_OPENERS.match(ask))
    if refusal:
        kind = "out_of_scope"
    elif any_cue(ask, RESOURCE_CUES) and not re.search(
        r"\b(what|which) (is|are) (the )?(tiers?|elements?)\b", text
    ):
        kind = "resources"
    elif not elements and any_cue(ask, OVERVIEW_CUES):
        kind = "overview"
    elif tier and not tier_done or any_cue(ask, NEXT_CUES) or direction and not asks_fact:
        kind = "next_steps"
    elif any_cue(ask, EXPLAIN_CUES) or asks_fact:
        kind = "explain"
    soft = kind == "resources" and not any_cue(ask, STRONG_RESOURCE_CUES)
    if soft and not any(
        re.search(rf"(^|[.?!;:,-] *){re.escape(c)}\b", text) for c in SOFT_RESOURCE_CUES
    ):
        kind = "next_steps" if direction or any_cue(ask, NEXT_CUES) else "explain"
        soft = False
    progress = bool(PROGRESS.search(text)) and not NEGATED.search(text)
    return Reading(
        elements=elements,
        tier=tier,
        tier_done=tier_done,
        direction=direction,
        kind=kind,
        refusal=refusal,
        follow_up=follow_up,
        soft_resources=soft,
        describes_progress=progress,
    )


@lru_cache(maxsize=1)
def _cue_words() -> frozenset[str]:
    words: set[str] = set()
    for cues in (*DIRECTION_WORDS.values(), NEXT_CUES, EXPLAIN_CUES, OVERVIEW_CUES):
        for cue in cues:
            words.update(_words(cue.rstrip("*")))
    return frozenset(words)


def on_topic(question: str) -> bool:
    """True when the question uses the toolkit's vocabulary, or only question words.

    "What should we do next?" has no subject of its own, so it is about the toolkit; "what should
    we do about our kitchen?" is not.
    """
    from assistant.retrieval import tokens

    text = normalise(question)
    if DOMAIN.search(text) or find_elements(text) or find_tier(text)[0]:
        return True
    return not set(tokens(text)) - _cue_words()
