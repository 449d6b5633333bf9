"""Say what the toolkit does not say: the terms it defines, quoted and cited, and the rest.

Definitions are found in the passages' own text by a few general forms: an acronym spelled out
(``diversity, equity, and inclusion (DEI)``, found as Schwartz & Hearst do), ``X (also known as
"Y")``, ``X (i.e., ...)``, ``X (a, b, c)`` listing what X is, ``In a X, ...``, and ``X is a ...``,
``X refers to ...``, ``known as X``. The overview page defines the three tiers. A few terms the
toolkit defines in looser forms, and the other words people use for terms, are listed by name in
``assistant/data/glossary.yaml``; their definitions are found and quoted here, never stored.

    glossary = Glossary.from_toolkit(toolkit, toolkit_passages(toolkit))
    glossary.lookup("What does bundled payment mean?").passage_id   # 'payment.rationale.1'
    glossary.lookup("What is palliative care?")                     # None: used, not defined
    glossary.mentions("palliative care", passages)                  # ['tier.setting-the-standard', ...]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from assistant.errors import CorpusError
from assistant.schema import Passage
from assistant.toolkit import TIER_NAMES, Toolkit

GLOSSARY_FILE = Path(__file__).parent / "data" / "glossary.yaml"

Form = Literal[
    "tier",
    "acronym",
    "also_known_as",
    "that_is",
    "enumeration",
    "in_a",
    "copula",
    "known_as",
    "listed",
]

_MAX_TERM_WORDS = 6


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ARTICLES = frozenset({"a", "an", "the"})
# Function words: a term never starts or ends with one ("of" may join two of its words).
_STOP = _words(
    "a an the this that these those such as with for to in on at by from into across of and or "
    "but all any each some its their our your his her is are was were be been has have had which "
    "who whose where when than like including about over under between among per via not no other "
    "more most very also"
)
_PRONOUNS = _words(
    "i we our ours us me my you your they them their it its he she there here this that these "
    "those anything something everything"
)
# Words that make a "what is ..." question about something other than a term's meaning.
_NOT_A_TERM = _PRONOUNS | _words(
    "should could would can will shall must might may do does did next first last best most main "
    "top step steps"
)
_PREPOSITIONS = _words(
    "for on in to about with at after before from by into under over within across"
)
_KINDS_THAT_INSTRUCT = frozenset({"action_item", "subgoal", "goal", "summary"})

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9’'/\-]*")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[“\"(]?[A-Z0-9])")
_PAREN = re.compile(r"\(([^()]*)\)")
_ALSO_KNOWN = re.compile(
    r"(?:also\s+)?(?:known\s+as|called|referred\s+to\s+as)\s+[“\"']?(?P<alias>[^”\"'()]+?)[”\"']?",
    re.I,
)
_THAT_IS = re.compile(r"i\.e\.,?\s*(?P<body>.+)", re.I)
_SHORT_FORM = re.compile(r"[A-Za-z][A-Za-z0-9\-&]{1,9}")
# Parentheticals that give examples or pointers, not what the term is.
_EXAMPLES = re.compile(r"^(?:e\.g\.|eg\b|for example|for instance|see\b)", re.I)
_NOT_A_LIST = re.compile(
    r"^(?:e\.g\.|eg\b|for example|for instance|such as|including|see\b|beyond\b|also\b)", re.I
)
_ETC = re.compile(r"\betc\b", re.I)
_INLINE_AKA = re.compile(r",\s+also\s+known\s+as\s+[“\"']?(?P<alias>[^”\"',.;()]+)[”\"']?", re.I)
_KNOWN_AS = re.compile(
    r"(?<![(\w])(?<!also )(?:known|referred\s+to)\s+as\s+(?:an?\s+|the\s+)?[“\"']?"
    r"(?P<term>[A-Za-z][\w\- ]*?)[”\"']?(?=[,.;)]|$)",
    re.I,
)
_IN_A = re.compile(
    r"^In\s+(?:a|an)\s+(?P<term>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*){0,5}),\s+(?:a|an|the|each|every|all)\s"
)
_COPULA = re.compile(
    r"^(?P<term>[A-Za-z][\w’'\-]*(?:\s+[\w’'\-]+){0,5}?)\s+"
    r"(?:(?:is|are)\s+(?:(?:defined|known)\s+as\s+)?(?:a|an|the)|refers?\s+to|means|(?:is|are)\s+defined\s+as)\s"
)


class GlossaryEntry(BaseModel):
    """A term the toolkit defines, with its words quoted from the passage that defines it.

    entry = glossary.lookup("bundled rate")
    entry.passage_id, entry.definition  # ('payment.rationale.1', 'In a bundled payment model, ...')
    """

    term: str
    definition: str = Field(
        description="the toolkit's own words: a verbatim substring of the passage"
    )
    passage_id: str = Field(description="the passage that holds the definition, for citing")
    aliases: list[str] = Field(default_factory=list, description="other surface forms")
    form: Form = Field(description="how the toolkit gives it, e.g. 'acronym', 'that_is' (i.e.)")

    @property
    def surface_forms(self) -> list[str]:
        return [self.term, *self.aliases]


@dataclass
class _Found:
    """A definition found in one passage: the term and the span of its words."""

    term: str
    passage_id: str
    start: int
    end: int
    form: Form
    aliases: list[str] = field(default_factory=list)
    definition: str = ""


@dataclass
class _Surface:
    """One surface form of an entry, compiled for matching inside text and as a whole."""

    entry: GlossaryEntry
    inside: re.Pattern[str]
    whole: re.Pattern[str]


class Glossary:
    """The toolkit's own definitions, and where it only uses a term.

    glossary = Glossary.from_toolkit(toolkit, passages)
    glossary.terms_in("Is hospice the same as palliative care?")  # ['hospice', 'palliative care']
    """

    def __init__(self, *, entries: Sequence[GlossaryEntry], corpus_text: str = "") -> None:
        self.entries = list(entries)
        self._corpus = corpus_text
        self._surfaces = [
            _Surface(
                entry=entry, inside=phrase_pattern(form), whole=phrase_pattern(form, loose=True)
            )
            for entry in self.entries
            for form in entry.surface_forms
        ]

    @classmethod
    def from_toolkit(
        cls,
        toolkit: Toolkit,
        passages: Sequence[Passage],
        *,
        terms_file: Path | None = GLOSSARY_FILE,
    ) -> Glossary:
        """Find the toolkit's definitions in its passages.

        Args:
            toolkit: the parsed toolkit (its resource rows tell a publisher's name from the text).
            passages: the toolkit's passages, as indexed; extra documents are ignored.
            terms_file: the YAML list of term names and aliases; ``None`` for the patterns alone.

        Returns:
            The glossary. Raises ``CorpusError`` naming a listed term the toolkit no longer defines.
        """
        own = [p for p in passages if p.kind != "document"]
        texts = _masked_texts(toolkit, own)
        found: list[_Found] = []
        for passage in own:
            for hit in _discover(passage, texts[passage.id]):
                hit.definition = passage.text[hit.start : hit.end].strip()
                found.append(hit)
        entries = _merge(found)
        listed, extra_aliases = _read_terms(terms_file)
        order = {p.id: n for n, p in enumerate(own)}
        by_id = {p.id: p for p in own}
        for term, aliases in listed.items():
            entry = _find_entry(entries, term)
            if entry is None:
                entry = _merge([_located(term, own, texts, terms_file)])[0]
                entries.append(entry)
            _add_aliases(entry, aliases)
        for term, aliases in extra_aliases.items():
            entry = _find_entry(entries, term)
            if entry is None:
                raise CorpusError(
                    f"Glossary aliases for {term!r} (in {terms_file}) name a term the toolkit does "
                    "not define. Fix the name in the list, or take it out."
                )
            _add_aliases(entry, aliases)
        entries.sort(
            key=lambda e: (order[e.passage_id], by_id[e.passage_id].text.find(e.definition))
        )
        return cls(entries=entries, corpus_text="\n".join(p.text for p in own))

    # -- questions ---------------------------------------------------------------------------------
    def lookup(self, question_or_term: str) -> GlossaryEntry | None:
        """The entry a question or term names: its term or an alias as a whole phrase.

        Case and plural do not matter; an acronym inside a longer question must be in capitals
        ("GUIDE", not "guide"). With several matches the longest wins.
        """
        term = self.term_in(question_or_term)
        for text in (term, _strip_question(question_or_term)):
            if text:
                exact = self._exact(text)
                if exact is not None:
                    return exact
        scope = term or question_or_term
        best: tuple[int, int, GlossaryEntry] | None = None
        for surface in self._surfaces:
            for match in surface.inside.finditer(scope):
                score = (len(match.group()), -match.start(), surface.entry)
                if best is None or score[:2] > best[:2]:
                    best = score
        return best[2] if best else None

    def term_in(self, question: str) -> str | None:
        """The term a definition question asks about: "what is X", "define X", "X vs Y" (X)."""
        terms = self.terms_in(question)
        return terms[0] if terms else None

    def terms_in(self, question: str) -> list[str]:
        """The terms a definition question asks about, in order: both for "X vs Y",
        "is X the same as Y", "the difference between X and Y"; one for "what does X mean"."""
        text = _strip_question(question)
        for pattern in _PAIRS:
            match = pattern.match(text)
            if match:
                first = self._clean(self._single(match["a"]) or match["a"])
                second = self._clean(match["b"])
                first, second = self._fill_ellipsis(first, second)
                return [t for t in (first, second) if t]
        term = self._single(text)
        return [term] if term else []

    def mentions(self, term: str, passages: Iterable[Passage], limit: int = 5) -> list[str]:
        """Ids of passages whose text uses ``term`` as a whole phrase, in the passages' order.

        For "the toolkit does not define X; it comes up in ...": pass the toolkit's passages.
        """
        pattern = phrase_pattern(term)
        out = [p.id for p in passages if pattern.search(p.text)]
        return out[:limit]

    def markdown(self) -> str:
        """The glossary page: one line per term, its definition quoted and cited, A to Z."""
        lines = [
            "# Glossary",
            "",
            "Terms the toolkit itself defines, in its own words. Other terms it uses are not defined in it.",
            "",
        ]
        for entry in sorted(self.entries, key=lambda e: _sort_key(e.term)):
            term = entry.term[:1].upper() + entry.term[1:]
            lines.append(f"- **{term}**: “{entry.definition}” `{entry.passage_id}`")
        return "\n".join(lines) + "\n"

    # -- helpers -----------------------------------------------------------------------------------
    def _exact(self, text: str) -> GlossaryEntry | None:
        wanted = _drop_article(text.strip(" \t“”\"'‘’?.!,:;"))
        for surface in self._surfaces:
            if surface.whole.fullmatch(wanted):
                return surface.entry
        return None

    def _single(self, text: str) -> str | None:
        for pattern in _SINGLES:
            match = pattern.match(text)
            if match:
                return self._clean(match["a"])
        return None

    def _clean(self, raw: str | None) -> str | None:
        """The term as the question wrote it, or None when it is not a term (a pronoun, a step)."""
        if not raw:
            return None
        term = _CLAUSE_BREAK.split(raw, maxsplit=1)[0]
        term = _TRAILING_NOISE.sub("", term.strip(" \t“”\"'‘’?.!,:;"))
        term = re.sub(r"^(?:the\s+)?(?:term|word|phrase|so-called)\s+", "", term, flags=re.I)
        term = _drop_article(term.strip(" \t“”\"'‘’?.!,:;"))
        # Whole words: "fee-for-service" is one word, not a phrase with "for" in it.
        words = [w.strip(",;:").lower() for w in term.split()]
        if not words or len(words) > _MAX_TERM_WORDS or any(w in _NOT_A_TERM for w in words):
            return None
        if any(w in _PREPOSITIONS for w in words) and self._exact(term) is None:
            return None  # "the essentials for payment" asks about steps, not a term
        return term

    def _fill_ellipsis(
        self, first: str | None, second: str | None
    ) -> tuple[str | None, str | None]:
        """ "generalist and specialty palliative care": a one-word term borrows the other's tail
        when the toolkit or the glossary uses the result ("generalist palliative care")."""
        if not first or not second:
            return first, second
        a, b = first.split(), second.split()
        if len(a) == 1 and len(b) > 1:
            return self._borrow(first, b), second
        if len(b) == 1 and len(a) > 1:
            return first, self._borrow(second, a)
        return first, second

    def _borrow(self, short: str, other: list[str]) -> str:
        for cut in range(1, len(other)):
            candidate = f"{short} {' '.join(other[cut:])}"
            if self._exact(candidate) or phrase_pattern(candidate, loose=True).search(self._corpus):
                return candidate
        return short


# -- question forms ---------------------------------------------------------------------------------
_THE = r"(?:(?:the|a|an)\s+)?"
_SAME = (
    r"(?:the\s+same(?:\s+thing)?\s+as|different\s+(?:from|than|to)|similar\s+to|equivalent\s+to|"
    r"another\s+(?:word|name|term)\s+for|like)"
)
_PAIRS = [
    re.compile(p, re.I)
    for p in (
        rf"^(?:what(?:'s|’s|s|\s+is|\s+are)\s+)?(?:the\s+)?differences?\s+between\s+{_THE}(?P<a>.+?)\s+and\s+{_THE}(?P<b>.+)$",
        rf"^(?P<a>.+?)\s*(?:,|;|\band\b|\bbut\b)\s*(?:is|are)\s+(?:it|they|that|this|those)\s+{_SAME}\s+{_THE}(?P<b>.+)$",
        rf"^(?:is|are)\s+{_THE}(?P<a>.+?)\s+{_SAME}\s+{_THE}(?P<b>.+)$",
        rf"^how\s+(?:is|are|does|do)\s+{_THE}(?P<a>.+?)\s+(?:differ|different|compare)\s+(?:from|to|with|than)\s+{_THE}(?P<b>.+)$",
        rf"^compare\s+{_THE}(?P<a>.+?)\s+(?:and|with|to)\s+{_THE}(?P<b>.+)$",
        r"^(?P<a>.+?)\s+(?:vs\.?|versus)\s+(?P<b>.+)$",
    )
]
_SINGLES = [
    re.compile(p, re.I)
    for p in (
        r"^what\s+(?:does|do)\s+(?:the\s+toolkit|it|they|you)\s+mean\s+by\s+(?P<a>.+)$",
        r"^what\s+(?:does|do)\s+(?P<a>.+?)\s+(?:mean|stand\s+for|refer\s+to)$",
        r"^(?:what|who)(?:\s+is|\s+are|'s|’s|s)\s+(?:meant\s+by\s+|the\s+(?:meaning|definition)\s+of\s+)?(?P<a>.+)$",
        r"^(?:please\s+)?(?:define|definition\s+of|meaning\s+of|explain\s+the\s+(?:term|phrase|word))\s+(?P<a>.+)$",
        r"^(?:(?:can|could)\s+you\s+|please\s+)?(?:tell\s+me|explain)\s+what\s+(?P<a>.+?)\s+(?:is|are|means?|stands\s+for)$",
        r"^(?:i\s+(?:don'?t|do\s+not)\s+(?:know|understand)|not\s+sure)\s+what\s+(?P<a>.+?)\s+(?:is|are|means?)$",
        r"^(?P<a>.+?)\s+(?:meaning|definition|defined|stands\s+for)$",
    )
]
_LEAD_NOISE = re.compile(r"^(?:(?:so|ok|okay|and|hi|hey|quick\s+question)\b[\s,:]*)+", re.I)
_TRAILING_NOISE = re.compile(
    r"(?:\s+(?:exactly|again|please|here|actually|anyway)|"
    r"\s+(?:in|within|according\s+to)\s+(?:the|this)\s+(?:toolkit|plan|document|guide|context))+$",
    re.I,
)
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;]|\band\b|\bbut\b|\bor\b)\s*(?=(?:is|are|does|do|how|what|why|when|who|which|"
    r"can|should|could|would|where|i|we)\b)",
    re.I,
)


def _strip_question(question: str) -> str:
    text = re.sub(r"\s+", " ", question).strip().rstrip("?!. ")
    text = _LEAD_NOISE.sub("", text)
    return _TRAILING_NOISE.sub("", text).strip()


def _drop_article(text: str) -> str:
    words = text.split(maxsplit=1)
    if len(words) == 2 and words[0].lower() in _ARTICLES:
        return words[1]
    return text


# -- phrases ----------------------------------------------------------------------------------------
def phrase_pattern(phrase: str, *, loose: bool = False) -> re.Pattern[str]:
    """A whole-phrase, plural-tolerant pattern; case-insensitive except an acronym, unless loose."""
    words = _TOKEN.findall(phrase)
    if len(words) > 1 and words[0].lower() in _ARTICLES:
        words = words[1:]
    body = r"[\s,/\-–]+".join(_plural_tolerant(w) for w in words)
    flags = 0 if _is_acronym(phrase) and not loose else re.IGNORECASE
    return re.compile(rf"(?<!\w){body}(?!\w)", flags)


def _plural_tolerant(word: str) -> str:
    lower = word.lower()
    if not word.isalpha() or len(word) < 3:
        return re.escape(word)
    if lower.endswith("ies"):
        return re.escape(word[:-3]) + "(?:y|ies)"
    if lower.endswith("y") and lower[-2] not in "aeiou":
        return re.escape(word[:-1]) + "(?:y|ies)"
    if lower.endswith(("ss", "us", "is")):
        return re.escape(word) + "(?:es)?"
    if lower.endswith("s"):
        return re.escape(word[:-1]) + "(?:s|es)?"
    return re.escape(word) + "(?:s|es)?"


def _is_acronym(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    return " " not in text.strip() and upper >= 2 and upper >= len(letters) - 1


def _sort_key(term: str) -> str:
    return _drop_article(term).casefold()


# -- finding definitions ----------------------------------------------------------------------------
def _masked_texts(toolkit: Toolkit, passages: Sequence[Passage]) -> dict[str, str]:
    """Each passage's text with a resource's "(Publisher)" blanked, offsets unchanged: a
    publisher after a title is not a definition of the title."""
    resources = {res.id: res for res in toolkit.resources}
    out: dict[str, str] = {}
    for passage in passages:
        text = passage.text
        res = resources.get(passage.id)
        if passage.kind == "resource" and res is not None and res.publisher:
            needle = f"{res.title} ({res.publisher})"
            at = text.find(needle)
            if at >= 0:
                start = at + len(res.title)
                text = (
                    text[:start]
                    + " " * (len(needle) - len(res.title))
                    + text[start + len(needle) - len(res.title) :]
                )
        out[passage.id] = text
    return out


def _sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _noun_phrase(text: str, end: int, floor: int, instructs: bool) -> int | None:
    """Start of the noun phrase that ends at ``end``: words back to a function word or to
    punctuation. In an instruction the sentence's first word is its verb, never the term's."""
    words = list(_WORD.finditer(text, floor, end))
    start: int | None = None
    edge = end
    count = 0
    for i in range(len(words) - 1, -1, -1):
        word = words[i]
        if text[word.end() : edge].strip() or (instructs and i == 0) or count >= _MAX_TERM_WORDS:
            break
        lower = word.group().lower()
        if lower in _STOP and lower != "of":
            break
        if lower == "of" and start is None:
            break
        start, edge = word.start(), word.start()
        count += lower != "of"
    if start is not None and text[start:].lower().startswith("of "):
        start = text.index(" ", start) + 1
    return start


def _plausible(term: str) -> bool:
    words = [w.lower() for w in _TOKEN.findall(term)]
    if not words or len(words) > _MAX_TERM_WORDS or not any(c.isalpha() for c in term):
        return False
    if words[0] in _STOP or words[-1] in _STOP or words[0] in _PRONOUNS:
        return False
    return all(w not in _STOP or w in ("of", "and") for w in words)


def _long_form(short: str, before: str) -> int | None:
    """Where ``short``'s spelled-out form starts at the end of ``before`` (Schwartz & Hearst 2003):
    its letters in order, right to left, the first at the start of a word."""
    letters = [c.lower() for c in short if c.isalnum()]
    if short.endswith("s") and _is_acronym(short[:-1]):  # "MCPs": a plural acronym
        letters = letters[:-1]
    si, li = len(letters) - 1, len(before) - 1
    while si >= 0:
        while li >= 0 and (
            before[li].lower() != letters[si] or (si == 0 and li > 0 and before[li - 1].isalnum())
        ):
            li -= 1
        if li < 0:
            return None
        si, li = si - 1, li - 1
    return li + 1


def _which_end(text: str, end: int, sentence_end: int) -> int:
    """A ", which ..." clause right after a definition belongs to it, to the end of the sentence."""
    return sentence_end if re.match(r",\s+which\b", text[end:sentence_end]) else end


def _is_list(body: str) -> bool:
    if _NOT_A_LIST.match(body) or _ETC.search(body):
        return False
    items = [x for x in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+", body) if x.strip()]
    return len(items) >= 3 and all(len(x.split()) <= 5 for x in items)


def _discover(passage: Passage, text: str) -> Iterator[_Found]:
    instructs = passage.kind in _KINDS_THAT_INSTRUCT
    pid = passage.id
    if passage.kind == "tier" and passage.tier in TIER_NAMES:
        # The overview page says what each tier is for, under its name.
        yield _Found(TIER_NAMES[passage.tier], pid, 0, len(passage.text), "tier")
        return
    sentences = _sentences(text)
    for n, (s_start, s_end) in enumerate(sentences):
        sentence = text[s_start:s_end]

        def whole(term: str, aliases: list[str] | None = None, n: int = n) -> tuple[int, int]:
            """The sentence, and the next one too when it goes on about the same term."""
            end = sentences[n][1]
            if n + 1 < len(sentences):
                nxt = text[sentences[n + 1][0] : sentences[n + 1][1]]
                if any(phrase_pattern(f, loose=True).match(nxt) for f in [term, *(aliases or [])]):
                    end = sentences[n + 1][1]
            return sentences[n][0], end

        for match in _PAREN.finditer(text, s_start, s_end):
            open_, close = match.start(), match.end()
            body = match.group(1).strip()
            np_start = _noun_phrase(text, open_, s_start, instructs)
            term = text[np_start:open_].strip() if np_start is not None else ""
            aka = _ALSO_KNOWN.fullmatch(body)
            that_is = _THAT_IS.fullmatch(body)
            if aka and _plausible(term):
                start, end = whole(term, [aka["alias"]])
                yield _Found(term, pid, start, end, "also_known_as", [aka["alias"].strip()])
            elif that_is and _plausible(term):
                yield _Found(term, pid, np_start or 0, close, "that_is")
            elif _SHORT_FORM.fullmatch(body) and _is_acronym(body):
                found = _acronym(pid, text, body, s_start, open_, close, s_end)
                if found:
                    yield found
            elif _is_list(body) and _plausible(term):
                yield _Found(term, pid, np_start or 0, close, "enumeration")
        for match in _INLINE_AKA.finditer(text, s_start, s_end):
            np_start = _noun_phrase(text, match.start(), s_start, instructs)
            term = text[np_start : match.start()].strip() if np_start is not None else ""
            if _plausible(term):
                start, end = whole(term, [match["alias"]])
                yield _Found(term, pid, start, end, "also_known_as", [match["alias"].strip()])
        for match in _KNOWN_AS.finditer(sentence):
            if _plausible(match["term"]):
                start, end = whole(match["term"])
                yield _Found(match["term"].strip(), pid, start, end, "known_as")
        in_a = _IN_A.match(sentence)
        if in_a and _plausible(in_a["term"]):
            yield _Found(in_a["term"], pid, *whole(in_a["term"]), "in_a")
        copula = None if instructs else _COPULA.match(sentence)
        if copula and _plausible(copula["term"]):
            yield _Found(copula["term"], pid, *whole(copula["term"]), "copula")


def _acronym(
    pid: str, text: str, short: str, floor: int, open_: int, close: int, s_end: int
) -> _Found | None:
    size = len([c for c in short if c.isalnum()])
    words = list(_WORD.finditer(text, floor, open_))
    window = min(size + 5, size * 2)
    begin = words[-window].start() if len(words) >= window else floor
    before = text[begin:open_].rstrip()
    at = _long_form(short, before)
    if at is None:
        return None
    long = before[at:]
    if "(" in long or ")" in long or len(long) <= len(short) or long.lower() == short.lower():
        return None
    return _Found(short, pid, begin + at, _which_end(text, close, s_end), "acronym", [long])


def _located(
    term: str, passages: Sequence[Passage], texts: dict[str, str], terms_file: Path | None
) -> _Found:
    """A listed term's definition, or ``CorpusError`` naming the term."""
    hit = _locate(term, passages, texts)
    if hit is None:
        raise CorpusError(
            f"Glossary term {term!r} (listed in {terms_file}) is no longer defined in the toolkit "
            "text: no passage gives it followed by what it is. Restore the toolkit file from the "
            "original, or take the term out of the list."
        )
    text = next(p.text for p in passages if p.id == hit.passage_id)
    hit.definition = text[hit.start : hit.end].strip()
    return hit


def _locate(term: str, passages: Sequence[Passage], texts: dict[str, str]) -> _Found | None:
    """A listed term's definition: the term followed by what it is in a parenthesis or in a
    ", which ..." clause, first in toolkit order."""
    pattern = phrase_pattern(term, loose=True)
    for passage in passages:
        text = texts[passage.id]
        for s_start, s_end in _sentences(text):
            for match in pattern.finditer(text, s_start, s_end):
                after = text[match.end() : s_end]
                paren = re.match(r"\s*\(([^()]*)\)", after)
                if (
                    paren
                    and not _EXAMPLES.match(paren.group(1).strip())
                    and not _ETC.search(paren.group(1))
                ):
                    end = _which_end(text, match.end() + paren.end(), s_end)
                    return _Found(term, passage.id, match.start(), end, "listed")
                if re.match(r",\s+which\b", after):
                    return _Found(term, passage.id, match.start(), s_end, "listed")
    return None


def _merge(found: Iterable[_Found]) -> list[GlossaryEntry]:
    """One entry per term, from its first definition; later ones only add aliases."""
    entries: list[GlossaryEntry] = []
    by_key: dict[str, GlossaryEntry] = {}
    for hit in found:
        keys = [_key(f) for f in [hit.term, *hit.aliases]]
        entry = next((by_key[k] for k in keys if k in by_key), None)
        if entry is None:
            entry = GlossaryEntry(
                term=hit.term,
                definition=hit.definition,
                passage_id=hit.passage_id,
                form=hit.form,
            )
            entries.append(entry)
        _add_aliases(entry, [hit.term, *hit.aliases])
        for k in keys:
            by_key.setdefault(k, entry)
    return entries


def _key(text: str) -> str:
    return " ".join(_TOKEN.findall(_drop_article(text).lower())).removesuffix("s")


def _find_entry(entries: Sequence[GlossaryEntry], term: str) -> GlossaryEntry | None:
    pattern = phrase_pattern(term, loose=True)
    for entry in entries:
        if any(pattern.fullmatch(_drop_article(f)) for f in entry.surface_forms):
            return entry
    return None


def _add_aliases(entry: GlossaryEntry, aliases: Iterable[str]) -> None:
    seen = {_key(f) for f in entry.surface_forms}
    for alias in aliases:
        alias = alias.strip()
        if alias and _key(alias) not in seen:
            entry.aliases.append(alias)
            seen.add(_key(alias))


def _read_terms(path: Path | None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(listed terms, aliases for found terms) from the YAML list; both keyed by term name."""
    if path is None:
        return {}, {}
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"Cannot read the glossary term list {path}: {exc}") from exc
    listed = {
        str(t["term"]): [str(a) for a in t.get("aliases") or []] for t in data.get("listed") or []
    }
    aliases = {str(k): [str(a) for a in v or []] for k, v in (data.get("aliases") or {}).items()}
    return listed, aliases
