"""Learned heads of the query stage: kind, element, tier direction and refusal reason.

Each head is a scikit-learn logistic regression on one feature vector per question: the
question's MiniLM embedding (the same vector retrieval uses) followed by what the toolkit's
passages say about it (the best cosine per element and per passage kind). The heads are fitted
from labelled example questions kept as data (``evals/writers/*.yaml``); the refusal threshold
and the language threshold are fitted on writer-grouped cross-validation, never set by hand.

    heads = fit_heads(examples, vectors, featurizer)      # python -m evals fit
    heads.save(Path(".data/query-model.joblib"))
    Heads.load(path).kind(features)                      # {'next_steps': 0.91, ...}
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.errors import IndexUnusable
from assistant.guards import Rules
from assistant.schema import KINDS, Passage

NONE = "none"
OUT_OF_SCOPE = "out_of_scope"
PASSAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "action": ("action_item", "subgoal"),
    "resource": ("resource",),
    "reason": ("rationale", "footnote", "goal", "summary"),
    "overview": ("intro", "tier", "appendix", "contact"),
}
SEED = 20261124
# Changes whenever the feature layout changes: a model fitted on another layout is refitted.
FEATURE_VERSION = "23"
# Word n-grams count this much beside the standardised dense features.
LEXICAL_WEIGHT = 1.0
# Regularisation of every head (writer-held-out accuracy is flat from 0.1 to 2; lower C gives
# softer probabilities, which the refusal threshold and the alternatives rely on).
C = 0.1
# False refusals the fitted refusal threshold may cost, as a share of in-scope questions.
MAX_FALSE_REFUSALS = 0.01
# How close a word must be to one of the toolkit's to be read as its misspelling (difflib's
# ratio: "upteak" and "uptake" 0.83, "kitchen" and any toolkit word below 0.8).
TYPO_RATIO = 0.8
# A word names no element when at least this many labelled questions of an element use it and
# no element has this share of them ("start", "steps", "next"; not "caregiver", "refer").
GENERIC_SUPPORT = 20
GENERIC_SHARE = 0.4
# Evidence is on a cosine scale, the vector on a unit-norm one: widen the evidence.
EVIDENCE_SCALE = 4.0
# Unknown words (ones the toolkit never uses) are counted up to this many in a feature row.
UNKNOWN_COUNT_CAP = 4
# A question this short, after an earlier turn, continues that turn ...
SHORT_WORDS = 8
# ... and is refused only at this P(out of scope) or above.
FOLLOW_UP_REFUSAL = 0.98
_WORDS = re.compile(r"[A-Za-z0-9']+")
# The kind and element heads also read a vote of the labelled questions nearest to the
# question (cosine of the same MiniLM vector): the nearest NEIGHBOURS, each weighted by
# exp(NEIGHBOUR_TEMPERATURE * cosine), as extra inputs beside the vector (stacked: while
# fitting, a question's vote comes from other writers' questions only, so the regression
# learns how far to trust it). Writer-held-out, head alone (3,374 questions, 26 writers):
# kind 92.4% → 94.6%, out of scope caught at 1% false refusals 82.6% → 89.9%; element
# 94.9% → 96.7%. The tier head gains on that measure too (87.0% → 89.8%) but reads "what do
# we do first on X?" as the highest tier, after its neighbours ("how do we lead on X?"): the
# vector says what a question is about more than where it stands. The direction head does
# not gain.
NEIGHBOURS = 10
NEIGHBOUR_TEMPERATURE = 20.0
# The kind head also reads how near the question is to the labelled questions out of scope and to
# the ones in scope: the best cosine of each, the mean of the CLOSE_K best of each, and the best
# ones' difference. The vote says which kind the nearest questions are, not how near they are.
# Writer-grouped 10 folds, kind head alone (6,074 questions, 56 writers): out of scope caught at
# 1% false refusals 96.5% → 97.2% (57 → 45 missed), fair-kind accuracy 97.75% both. Per kind
# instead of out/in scope: 97.1%, kind accuracy 97.68%.
CLOSE_K = 5
# The kind head reads its vote and closeness in a space fitted on the labelled questions: their
# vectors centred, projected on their PROJECTION_DIMS principal directions and normalised. What
# all questions share (most of a MiniLM vector) no longer counts, so "near" means near in what
# tells questions apart. Writer-grouped 10 folds, kind head alone (6,074 questions, 56 writers):
# out of scope caught at 1% false refusals 97.2% → 97.7% (45 → 38 missed), 128 dimensions 97.4%;
# fair-kind accuracy 97.75% both. The element head keeps the vectors as embedded: read in this
# space too, element fell 96.4% → 96.2% (writer-grouped 10 folds, 58 writers, whole assistant).
PROJECTION_DIMS = 192
# Retrieval reads one more ranked list: the passages that answer the labelled questions nearest
# to the question (each weighted as in the heads' vote), among those at least this close. A
# question asked before in other words ("do we pay for the assessment if the member says no?")
# finds the passage that answered it, though their words differ.
ANSWERED_NEAR = 0.6


class Example(BaseModel):
    """One labelled question; ``group`` is its writer (the unit of leave-one-writer-out)."""

    model_config = ConfigDict(frozen=True)

    id: str
    group: str
    question: str
    history: list[str] = Field(default_factory=list)
    profile: dict[str, str] = Field(default_factory=dict)
    kind: str | None = None
    element: str | None = None
    tier: str | None = None
    refusal: str | None = None
    cites: list[str] = Field(
        default_factory=list, description="the toolkit passages a correct answer quotes"
    )


class Featurizer:
    """Question vector → features: the vector, then its best cosine per element and passage kind.

    Holds only the toolkit's passages (a few hundred vectors), so the features do not move when
    a plan adds documents of its own.
    """

    def __init__(self, passages: Sequence[Passage], vectors: np.ndarray) -> None:
        self.passages = list(passages)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.masks: list[np.ndarray] = [
            np.array([p.element == key for p in self.passages]) for key in ELEMENT_KEYS
        ] + [
            np.array([p.kind in kinds for p in self.passages]) for kinds in PASSAGE_GROUPS.values()
        ]
        words = {t.lower() for p in self.passages for t in _TOKEN.findall(f"{p.title} {p.text}")}
        # The toolkit's own words, by their first letters ("oncologists" meets "oncology").
        self.stems = {_stem(t) for t in words}
        # ... and whole, by their first letter, for reading a misspelt word ("upteak").
        self.by_initial: dict[str, list[str]] = {}
        for word in sorted(words):
            self.by_initial.setdefault(word[0], []).append(word)
        self._known_words: dict[str, bool] = {}

    def _known(self, token: str) -> bool:
        """Whether the toolkit uses ``token``, or a word it is a misspelling of (same first
        letter, difflib's ratio at least ``TYPO_RATIO``)."""
        if _stem(token) in self.stems:
            return True
        word = token.lower()
        known = self._known_words.get(word)
        if known is None:
            near = self.by_initial.get(word[0], [])
            known = bool(difflib.get_close_matches(word, near, n=1, cutoff=TYPO_RATIO))
            if len(self._known_words) < 100_000:
                self._known_words[word] = known
        return known

    @staticmethod
    def content_words(text: str) -> list[str]:
        """A question's words other than stop words ("what should we do next?" has none)."""
        return [t for t in _TOKEN.findall(text) if len(t) >= 3 and t.lower() not in _STOP]

    def unknown_words(self, text: str) -> tuple[float, int]:
        """The share and the number of a question's content words that the toolkit never uses,
        even misspelt (0 when it has none: "what should we do next?")."""
        content = self.content_words(text)
        unknown = sum(not self._known(t) for t in content)
        return (unknown / len(content) if content else 0.0), unknown

    def unknown_share(self, text: str) -> float:
        return self.unknown_words(text)[0]

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine of each question (rows) with each toolkit passage (columns)."""
        return np.asarray(vectors, dtype=np.float32) @ self.vectors.T

    def features(
        self,
        vectors: np.ndarray,
        sims: np.ndarray | None = None,
        *,
        texts: Sequence[str],
        rules: Rules,
        follow_ups: Sequence[bool] | None = None,
    ) -> np.ndarray:
        """One row per question: its vector, the closed-rule cues of its text (``cues``), how
        much of it is in words the toolkit never uses, whether it follows an earlier turn
        (``follow_ups``, none by default), and the passage evidence."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        sims = self.similarities(vectors) if sims is None else np.atleast_2d(sims)
        best = [np.where(mask, sims, -1.0).max(axis=1) for mask in self.masks if mask.any()]
        top = sims.max(axis=1)
        evidence = np.stack([*best, top], axis=1)
        follow_ups = follow_ups if follow_ups is not None else [False] * len(texts)
        cue_rows = np.asarray(
            [
                [*cues(text, rules), *self._wording(text), float(follows)]
                for text, follows in zip(texts, follow_ups, strict=True)
            ],
            dtype=np.float32,
        )
        # Evidence is on a cosine scale, the vector on a unit-norm one: widen the evidence (and
        # the cues) so that one regularisation strength suits all. The nearest passage's cosine
        # stays the last column (``_topic_floor`` reads it).
        return np.hstack([vectors, EVIDENCE_SCALE * cue_rows, EVIDENCE_SCALE * evidence])

    def _wording(self, text: str) -> tuple[float, float]:
        """How far a question's words are from the toolkit's: the share of its content words
        the toolkit never uses, and how many (capped): "IBNR reserves", "the NHS", "our badge
        reader" speak of what the toolkit does not."""
        share, count = self.unknown_words(text)
        return share, min(count, UNKNOWN_COUNT_CAP) / UNKNOWN_COUNT_CAP


# What follows the question's vector in a feature row: the cues, the wording and follow-up
# flags, then the evidence (the best cosine per element and per passage group, the nearest
# passage's).
_AFTER_VECTOR = (len(TIER_KEYS) + 2) + 3 + (len(ELEMENT_KEYS) + len(PASSAGE_GROUPS) + 1)


def vector_width(features: np.ndarray) -> int:
    """How many leading columns of a feature row are the question's own vector."""
    return int(np.atleast_2d(features).shape[1]) - _AFTER_VECTOR


_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = ENGLISH_STOP_WORDS


def is_short(text: str) -> bool:
    """Whether a question is short enough to continue an earlier turn on its own."""
    return len(_WORDS.findall(text)) <= SHORT_WORDS


def _stem(token: str) -> str:
    return token.lower().removesuffix("'s")[:5]


def cues(text: str, rules: Rules) -> list[float]:
    """What the closed vocabularies read in a question, as inputs the heads weigh themselves:
    the tier it names, whether it asks for the tier after one, whether it tells of past work."""
    from assistant.progress import account_clauses

    named = rules.tier_named(text)
    return [
        *(1.0 if named == tier else 0.0 for tier in TIER_KEYS),
        1.0 if rules.asks_after(text) else 0.0,
        1.0 if account_clauses(text) else 0.0,
    ]


def tier_features(features: np.ndarray, named: str | None, evidence: Sequence[float]) -> np.ndarray:
    """The tier head's input: the question's features, the tier it names, its described progress."""
    named_row = [1.0 if named == tier else 0.0 for tier in TIER_KEYS]
    extra = np.asarray([*named_row, *evidence], dtype=np.float32) * EVIDENCE_SCALE
    return np.hstack([np.atleast_2d(features), extra[None, :]])


class Head(BaseModel):
    """One fitted classifier: a scaler for the dense features, then a logistic regression on
    them and (for most heads) on the question's word n-grams."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    scaler: Any
    model: Any
    lexical: bool = True
    neighbours: Neighbours | None = Field(
        default=None, description="the labelled questions this head also takes a vote of"
    )

    def with_votes(self, dense: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
        """``dense`` with the neighbours' vote appended (unchanged for a head without one);
        ``near``: the rows' cosines to every labelled question (``Heads.near``)."""
        dense = np.atleast_2d(dense)
        if self.neighbours is None:
            return dense
        if near is None:
            raise ValueError(f"head {self.name!r} reads a vote: pass near=Heads.near(rows)")
        return np.hstack([dense, self.neighbours.inputs(near)])

    def probabilities(
        self, dense: np.ndarray, words: Any = None, *, near: np.ndarray | None = None
    ) -> list[dict[str, float]]:
        """Class probabilities per row: the fitted model's own softmax, computed directly
        (sklearn's input checks cost more than the arithmetic for one question); ``near`` is
        needed by a head that reads a vote (``Heads.near``)."""
        scaler, model = self.scaler, self.model
        dense = self.with_votes(dense, near)
        scaled = (dense - scaler.mean_) / scaler.scale_
        coef = model.coef_
        width = scaled.shape[1]
        logits = scaled @ coef[:, :width].T + model.intercept_
        if self.lexical and isinstance(words, WordRow):
            logits = logits + coef[:, width + words.cols] @ words.values
        elif self.lexical and words is not None:
            logits = logits + np.asarray(words @ coef[:, width:].T)
        if logits.shape[1] == 1:  # two classes: one logit, for the second
            second = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            probs = np.stack([1.0 - second, second], axis=1)
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
        return [
            {str(c): float(p) for c, p in zip(model.classes_, row, strict=True)} for row in probs
        ]


# The similarity given to a labelled question of the row's own writer while fitting: lower than
# any cosine, so it is never among the nearest unless too few others exist, and then weighs 0.
_OWN_WRITER = -9.0


def _leave_out_own(sims: np.ndarray, groups: Any, own_groups: Any) -> np.ndarray:
    """``sims`` (rows: questions of writers ``groups``; columns: labelled questions of writers
    ``own_groups``) with each row's own writer's columns set to ``_OWN_WRITER``."""
    same = np.asarray(groups)[:, None] == np.asarray(own_groups)[None, :]
    return np.where(same, _OWN_WRITER, sims)


class Neighbours(BaseModel):
    """A head's labelled questions: their rows among every labelled question's vector
    (``Heads.labelled``) and their classes (indices into the head's classes)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rows: Any
    classes: Any
    n_classes: int
    apart: int | None = Field(
        default=None,
        description="a class (index) whose nearness is read apart from the others' (CLOSE_K)",
    )

    def inputs(self, near: np.ndarray, groups: Any = None, own_groups: Any = None) -> np.ndarray:
        """What a head reads of its labelled questions, per row of ``near``: the vote, then (with
        ``apart``) the closeness; ``groups``/``own_groups`` as for ``vote``."""
        parts = [self.vote(near, groups, own_groups)]
        if self.apart is not None:
            parts.append(self.closeness(near, groups, own_groups))
        return EVIDENCE_SCALE * np.hstack(parts)

    def closeness(self, near: np.ndarray, groups: Any = None, own_groups: Any = None) -> np.ndarray:
        """Per row of ``near``: the best cosine to this head's labelled questions of class
        ``apart`` and to the rest, the mean of the CLOSE_K best of each, and the best ones'
        difference (a row's own writer left out, as in ``vote``)."""
        near = np.asarray(near)
        columns: list[np.ndarray] = []
        for columns_of, mask in self._blocks:
            part = near[:, columns_of]  # read straight from ``near``: one copy per block
            if groups is not None:
                part = _leave_out_own(part, groups, np.asarray(own_groups)[mask])
            k = min(CLOSE_K, part.shape[1])
            best_k = np.partition(part, part.shape[1] - k, axis=1)[:, -k:]
            columns += [best_k.max(axis=1), best_k.mean(axis=1)]
        apart_best, _, rest_best, _ = columns
        return np.stack([*columns, apart_best - rest_best], axis=1)

    @cached_property
    def _blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block (class ``apart``, the rest): its columns of ``near`` and its mask over
        this head's labelled questions."""
        apart = np.asarray(self.classes) == self.apart
        return [(np.asarray(self.rows)[m], m) for m in (apart, ~apart)]

    def _sims(self, near: np.ndarray, groups: Any, own_groups: Any) -> np.ndarray:
        sims = np.asarray(near)[:, self.rows]
        return sims if groups is None else _leave_out_own(sims, groups, own_groups)

    def vote(self, near: np.ndarray, groups: Any = None, own_groups: Any = None) -> np.ndarray:
        """Per row of ``near`` (a question's cosines to every labelled question, see ``nearness``),
        the class shares of this head's nearest labelled questions, weighted by closeness.
        ``groups`` (the writers of ``near``'s rows) and ``own_groups`` (of this head's labelled
        questions) leave out a row's own writer, as while fitting."""
        sims = self._sims(near, groups, own_groups)
        n = sims.shape[0]
        nearest, near_k, weights = nearest_weighted(sims)
        weights = np.where(near_k > _OWN_WRITER, weights, 0.0)
        cells = (np.arange(n)[:, None] * self.n_classes + self.classes[nearest]).ravel()
        out = np.bincount(cells, weights.ravel(), minlength=n * self.n_classes)
        out = out.reshape(n, self.n_classes)
        return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def nearest_weighted(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``sims`` (cosines to labelled questions): the NEIGHBOURS nearest columns,
    their cosines, and their weights exp(NEIGHBOUR_TEMPERATURE * cosine), relative to the best."""
    k = min(NEIGHBOURS, sims.shape[1])
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    near_k = np.take_along_axis(sims, nearest, axis=1)
    weights = np.exp(NEIGHBOUR_TEMPERATURE * (near_k - near_k.max(axis=1, keepdims=True)))
    return nearest, near_k, weights


def nearness(labelled: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """Cosines of each row of ``dense`` (its leading columns are the question's vector, in the
    space of ``labelled``) to every labelled question's vector: computed once per question."""
    return np.asarray(dense, dtype=np.float32)[:, : labelled.shape[1]] @ labelled.T


class Projection(BaseModel):
    """The space the kind head's vote reads cosines in (PROJECTION_DIMS): question vectors
    centred on the labelled questions' mean, projected on their principal directions,
    normalised."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    mean: Any
    components: Any = Field(description="(dimensions, vector width), float32")

    @classmethod
    def fit(cls, vectors: np.ndarray, dims: int = PROJECTION_DIMS) -> Projection:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(dims, *vectors.shape), svd_solver="full").fit(vectors)
        return cls(
            mean=pca.mean_.astype(np.float32),
            components=np.ascontiguousarray(pca.components_, dtype=np.float32),
        )

    def __call__(self, dense: np.ndarray) -> np.ndarray:
        """The rows of ``dense`` (their leading columns are the question's vector), projected."""
        width = self.components.shape[1]
        rows = np.asarray(dense, dtype=np.float32)[:, :width] - self.mean
        out = rows @ self.components.T
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class Heads(BaseModel):
    """Every fitted head, the fitted thresholds, and what they were fitted on."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    lexical: Any = Field(description="the word n-gram vectorizer shared by the heads")
    kind: Head
    element: Head
    tier: Head
    direction: Head
    refusal: Head
    refuse_threshold: float
    language_threshold: float
    topic_floor: float = Field(
        default=0.0,
        description="a question with no earlier turn, no nearer the toolkit, is off topic",
    )
    examples_sha256: str
    n_examples: int
    groups: dict[str, int]
    labelled: Any = Field(
        default=None, description="every labelled question's vector, for the element head's vote"
    )
    projection: Projection = Field(description="the space of the kind head's vote")
    cited: list[list[str]] = Field(
        default_factory=list, description="per labelled question, the passages that answer it"
    )
    generic_words: set[str] = Field(
        default_factory=set,
        description="stems that labelled questions use about every element alike (generic_words)",
    )
    feature_version: str = FEATURE_VERSION
    _half: Any = PrivateAttr(default=None)
    _half_projected: Any = PrivateAttr(default=None)

    def names_no_element(self, text: str) -> bool:
        """Whether every content word of ``text`` is one that fair questions use about every
        element alike ("where do we start?", "what should we do next?")."""
        return all(_stem(t) in self.generic_words for t in Featurizer.content_words(text))

    def answered(self, near: np.ndarray) -> list[str]:
        """The passages that answer the labelled questions nearest to one question (``near``:
        its cosines to every labelled question), most votes first."""
        near = np.asarray(near, dtype=np.float32).reshape(1, -1)
        if not self.cited or near.size == 0:
            return []
        # The same nearest questions and weights as the heads' vote (the best of them is close
        # enough whenever any is, so the weights are relative to the same best).
        nearest, near_k, weights = (a[0] for a in nearest_weighted(near))
        votes: dict[str, float] = {}
        for row, cosine, weight in zip(nearest, near_k, weights, strict=True):
            if cosine >= ANSWERED_NEAR:
                for pid in self.cited[row]:
                    votes[pid] = votes.get(pid, 0.0) + float(weight)
        return sorted(votes, key=lambda pid: -votes[pid])

    def near(self, dense: np.ndarray) -> np.ndarray:
        """The rows' cosines to every labelled question: what the element head's vote and
        ``answered`` read. In half precision: within 3e-4 of float32 on the labelled questions,
        and 0.22 ms instead of 0.71 ms a question once the embedding model's pass has pushed the
        matrix out of the CPU cache (the fit keeps float32, where the product is over thousands
        of rows)."""
        if self._half is None:
            self._half = _half(self.labelled)
        return _half_product(np.asarray(dense, dtype=np.float32), self._half)

    def near_projected(self, dense: np.ndarray) -> np.ndarray:
        """The rows' cosines to every labelled question in ``projection``'s space: what the kind
        head's vote and closeness read (half precision, as ``near``)."""
        if self._half_projected is None:
            self._half_projected = _half(self.projection(self.labelled))
        return _half_product(self.projection(dense), self._half_projected)

    def words(self, texts: Sequence[str]) -> Any:
        return self.lexical.transform(list(texts)) * LEXICAL_WEIGHT

    def word_row(self, text: str) -> WordRow:
        """``words([text])`` as one question's columns and values (no matrix to build)."""
        return self.lexical.entries(text).scaled(LEXICAL_WEIGHT)

    def save(self, path: Path) -> None:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        joblib.dump(self, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Heads:
        import joblib

        if not path.is_file():
            raise IndexUnusable(
                f"No fitted query model at {path}. Run `python -m evals fit` (or `make index`)."
            )
        try:
            heads = joblib.load(path)
        except Exception as exc:  # a truncated or foreign file: joblib raises many kinds
            raise IndexUnusable(
                f"The query model at {path} cannot be read ({type(exc).__name__}). "
                "Refit it with `python -m evals fit`."
            ) from exc
        if not isinstance(heads, Heads) or heads.feature_version != FEATURE_VERSION:
            raise IndexUnusable(
                f"The query model at {path} was fitted by another version. "
                "Refit it with `python -m evals fit` (or `make index`)."
            )
        return heads


def examples_digest(files: Sequence[Path]) -> str:
    """sha256 over the example files' names and bytes, and the closed-vocabulary rules that read
    them (tier names, negation, shorthand): what a fitted model was fitted on."""
    from assistant.guards import RULES_FILE

    digest = hashlib.sha256(FEATURE_VERSION.encode())
    digest.update(RULES_FILE.read_bytes())
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


_AFTER = dict(zip(TIER_KEYS, TIER_KEYS[1:], strict=False))


def _own_profile(example: Example) -> str:
    return example.profile.get(example.element or "", "none")


def tier_label(example: Example, *, follow_ups: bool = False) -> str | None:
    """The tier a labelled next-steps question asks for when the question alone decides it.

    Follow-ups (the earlier turn decides; kept with ``follow_ups``) and questions whose profile
    covers the element (the profile decides) are left out.
    """
    if example.kind != "next_steps" or example.tier is None or example.history and not follow_ups:
        return None
    return example.tier if _own_profile(example) == "none" else None


def direction_label(example: Example, named: str | None, account: bool = False) -> str | None:
    """The tier direction a labelled next-steps question implies, or None when unclear.

    ``named`` is the tier the question names outright; ``account`` says whether it describes
    work already done. "named": it asks for that tier; "next": the tier after what is done
    (named or described); "start" and "lead": the first and the highest tier without anything
    done being said. A follow-up's tier is read against the tier shown before it.
    """
    tier = tier_label(example, follow_ups=True)
    if tier is None:
        return None
    if named is None and example.history:
        # Where the tier alone says it: the middle tier is the one after the tier shown ("and
        # if we're already doing that?"), the first a start; the highest could be the next or
        # a leader's, and is left out.
        return {"essentials": "start", "progressing-further": "next"}.get(tier)
    if named is not None:
        if named == tier:
            return "named"
        return "next" if _AFTER.get(named) == tier else None
    if tier == "essentials":
        return "start"
    return "lead" if tier == "setting-the-standard" and not account else "next"


def _logistic(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced", random_state=SEED)


def _vectorizer(texts: Sequence[str]) -> Any:
    """Word 1-2-grams, and character 3-5-grams inside words (so "leader" shares with "lead",
    and "upteak" with "uptake")."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"
    )
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True, strip_accents="unicode"
    )
    return Lexical(parts=[words.fit(list(texts)), chars.fit(list(texts))])


# Each fitted vectorizer's analyzer, built once (kept out of the pickled model: a closure).
_ANALYZERS: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def _analyzer(vectorizer: Any) -> Any:
    analyze = _ANALYZERS.get(vectorizer)
    if analyze is None:
        analyze = _ANALYZERS[vectorizer] = vectorizer.build_analyzer()
    return analyze


class Lexical(BaseModel):
    """Fitted n-gram vectorizers side by side (FeatureUnion's job, without its per-call
    scheduling cost)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    parts: list[Any]

    def transform(self, texts: list[str]) -> Any:
        """The vectorizers' own tf-idf (sublinear tf, idf, l2 per part) as a sparse matrix."""
        from scipy import sparse

        rows, cols, values = [], [], []
        for row, text in enumerate(texts):
            found = self.entries(text)
            rows += [row] * len(found.cols)
            cols += list(found.cols)
            values += list(found.values)
        width = sum(len(part.vocabulary_) for part in self.parts)
        return sparse.csr_matrix((values, (rows, cols)), shape=(len(texts), width))

    def entries(self, text: str) -> WordRow:
        """One text's non-zero tf-idf columns and values, computed directly: for one question
        sklearn's input checks, and scipy's matrix building, cost more than the counting."""
        from collections import Counter

        cols: list[np.ndarray] = []
        values: list[np.ndarray] = []
        offset = 0
        for part in self.parts:
            analyze = _analyzer(part)
            vocabulary = part.vocabulary_
            counts = Counter(vocabulary[t] for t in analyze(text) if t in vocabulary)
            found = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            weights = (1.0 + np.log(tf)) * part.idf_[found]
            cols.append(offset + found)
            values.append(weights / (float(np.sqrt(weights @ weights)) or 1.0))
            offset += len(vocabulary)
        return WordRow(cols=np.concatenate(cols), values=np.concatenate(values))


class WordRow(BaseModel):
    """One question's word n-gram features: its non-zero columns and their values."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    cols: Any
    values: Any

    def scaled(self, factor: float) -> WordRow:
        return WordRow(cols=self.cols, values=self.values * factor)


def _half(matrix: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(matrix)).half()


def _half_product(rows: np.ndarray, half: Any) -> np.ndarray:
    import torch

    rows = np.ascontiguousarray(rows[:, : half.shape[1]])
    return (torch.from_numpy(rows).half() @ half.T).float().numpy()


def _fit_head(
    name: str,
    dense: np.ndarray,
    words: Any,
    labels: Sequence[str | None],
    c: float,
    *,
    lexical: bool = True,
    labelled: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
    apart: str | None = None,
) -> Head:
    """Fit one head on the rows with a label. ``labelled``: every row's question vector (in the
    space the head's vote reads), when the head also reads a vote of its labelled questions;
    ``groups``: each row's writer (a row's vote while fitting leaves its own writer out);
    ``apart``: a class whose nearness the head reads apart from the others'
    (``Neighbours.closeness``)."""
    from scipy import sparse
    from sklearn.preprocessing import StandardScaler

    rows = [i for i, label in enumerate(labels) if label is not None]
    y = [str(labels[i]) for i in rows]
    if len(set(y)) < 2:
        raise ValueError(f"head {name!r} needs examples of at least two classes, got {set(y)}")
    inputs = dense[rows]
    head = Head(name=name, scaler=None, model=None, lexical=lexical)
    if labelled is not None:
        classes = sorted(set(y))
        index = {label: n for n, label in enumerate(classes)}
        head.neighbours = Neighbours(
            rows=np.asarray(rows, dtype=np.intp),
            classes=np.asarray([index[label] for label in y], dtype=np.intp),
            n_classes=len(classes),
            apart=index.get(apart) if apart is not None else None,
        )
        own = np.asarray([groups[i] for i in rows]) if groups is not None else np.arange(len(rows))
        near = nearness(labelled, labelled[rows])
        inputs = np.hstack([inputs, head.neighbours.inputs(near, own, own)])
    head.scaler = StandardScaler().fit(inputs)
    scaled = head.scaler.transform(inputs)
    x = sparse.hstack([sparse.csr_matrix(scaled), words[rows]]).tocsr() if lexical else scaled
    head.model = _logistic(c).fit(x, y)
    return head


def _fit_kind_head(
    dense: np.ndarray,
    words: Any,
    labels: Sequence[str | None],
    c: float,
    labelled: np.ndarray,
    groups: Sequence[str],
) -> Head:
    """The kind head: a vote of its labelled questions, and their closeness out of scope apart,
    read in the projected space (``labelled``: every row's vector projected, ``Projection``).
    The refusal threshold's folds fit this same head."""
    return _fit_head(
        "kind", dense, words, labels, c, labelled=labelled, groups=groups, apart=OUT_OF_SCOPE
    )


class Labels(BaseModel):
    """The per-head training labels of a list of examples (None = not used by that head)."""

    kind: list[str | None]
    element: list[str | None]
    tier: list[str | None]
    direction: list[str | None]
    refusal: list[str | None]


def labels_for(
    examples: Sequence[Example],
    named: Sequence[str | None],
    accounts: Sequence[bool] | None = None,
) -> Labels:
    element: list[str | None] = []
    for ex in examples:
        if ex.kind in (None, OUT_OF_SCOPE) or ex.history:
            element.append(None)  # a follow-up's element comes from the earlier turn
        else:
            element.append(ex.element or NONE)
    return Labels(
        kind=[ex.kind for ex in examples],
        element=element,
        tier=[tier_label(ex) for ex in examples],
        direction=[
            direction_label(ex, n, a)
            for ex, n, a in zip(examples, named, accounts or [False] * len(examples), strict=True)
        ],
        refusal=[ex.refusal if ex.kind == OUT_OF_SCOPE else None for ex in examples],
    )


def _refuse_threshold(
    dense: np.ndarray,
    words: Any,
    kinds: Sequence[str | None],
    groups: Sequence[str],
    c: float,
    labelled: np.ndarray,
    short_follow_ups: Sequence[bool],
) -> float:
    """The lowest P(out of scope) threshold whose writer-held-out false refusals stay in budget.
    A short follow-up is refused only at ``FOLLOW_UP_REFUSAL``, so below it it costs nothing."""
    from sklearn.model_selection import GroupKFold

    rows = np.array([i for i, k in enumerate(kinds) if k is not None])
    g = np.array([groups[i] for i in rows])
    is_out = np.array([kinds[i] == OUT_OF_SCOPE for i in rows])
    if len(set(g)) < 3 or is_out.all() or not is_out.any():
        return 0.5
    scores = np.zeros(len(rows))
    for train, test in GroupKFold(n_splits=min(5, len(set(g)))).split(rows, is_out, g):
        labels: list[str | None] = [None] * len(kinds)
        for i in rows[train]:
            labels[i] = kinds[i]
        head = _fit_kind_head(dense, words, labels, c, labelled, groups)
        near = nearness(labelled, labelled[rows[test]])
        probs = head.probabilities(dense[rows[test]], words[rows[test]], near=near)
        scores[test] = [p.get(OUT_OF_SCOPE, 0.0) for p in probs]
    lenient = np.array([short_follow_ups[i] for i in rows])
    scores = np.where(lenient & (scores < FOLLOW_UP_REFUSAL), 0.0, scores)
    in_scope = np.sort(scores[~is_out])
    allowed = int(np.floor(MAX_FALSE_REFUSALS * len(in_scope)))
    # Refuse at or above the score just over the (allowed+1)-th most out-of-scope-looking
    # in-scope question: at most ``allowed`` held-out in-scope questions would be refused.
    threshold = float(in_scope[len(in_scope) - allowed - 1]) + 1e-6
    return min(max(threshold, 0.2), 0.97)


def _topic_floor(examples: Sequence[Example], features: np.ndarray) -> float:
    """The nearest-passage cosine below which 0.5% of fair, self-contained questions fall."""
    top = features[:, -1] / EVIDENCE_SCALE
    fair = [
        float(top[i])
        for i, ex in enumerate(examples)
        if ex.kind not in (None, OUT_OF_SCOPE) and not ex.history
    ]
    return float(np.percentile(fair, 50 * MAX_FALSE_REFUSALS)) if fair else 0.0


def _language_threshold(
    examples: Sequence[Example], languages: Sequence[tuple[str, float]]
) -> float:
    """The confidence above which a non-English reading refuses, fitted on the labelled set."""
    foreign = [
        conf if lang != "ENGLISH" else 0.0
        for ex, (lang, conf) in zip(examples, languages, strict=True)
        if ex.refusal == "other_language"
    ]
    english = [
        conf if lang != "ENGLISH" else 0.0
        for ex, (lang, conf) in zip(examples, languages, strict=True)
        if ex.refusal != "other_language" and ex.kind is not None
    ]
    if not foreign or not english:
        return 0.5
    best, best_errors = 0.5, len(foreign) + len(english)
    for threshold in np.arange(0.30, 0.96, 0.01):
        errors = sum(f < threshold for f in foreign) + 10 * sum(e >= threshold for e in english)
        if errors < best_errors:
            best, best_errors = float(threshold), errors
    return round(best, 2)


def fit_heads(
    examples: Sequence[Example],
    features: np.ndarray,
    *,
    tier_rows: np.ndarray,
    named: Sequence[str | None],
    languages: Sequence[tuple[str, float]],
    digest: str,
    c: float = C,
    thresholds: bool = True,
) -> Heads:
    """Fit every head on ``features`` (one row per example, same order)."""
    from assistant.progress import account_clauses

    labels = labels_for(examples, named, [bool(account_clauses(ex.question)) for ex in examples])
    groups = [ex.group for ex in examples]
    counts: dict[str, int] = {}
    for group in groups:
        counts[group] = counts.get(group, 0) + 1
    lexical = _vectorizer([ex.question for ex in examples])
    words = lexical.transform([ex.question for ex in examples]) * LEXICAL_WEIGHT
    labelled = np.ascontiguousarray(features[:, : vector_width(features)], dtype=np.float32)
    projection = Projection.fit(labelled)
    projected = projection(labelled)
    return Heads(
        lexical=lexical,
        kind=_fit_kind_head(features, words, labels.kind, c, projected, groups),
        element=_fit_head(
            "element", features, words, labels.element, c, labelled=labelled, groups=groups
        ),
        tier=_fit_head("tier", tier_rows, words, labels.tier, c),
        direction=_fit_head("direction", features, words, labels.direction, c),
        refusal=_fit_head("refusal", features, words, labels.refusal, c),
        refuse_threshold=(
            _refuse_threshold(
                features,
                words,
                labels.kind,
                groups,
                c,
                projected,
                [bool(ex.history) and is_short(ex.question) for ex in examples],
            )
            if thresholds
            else 0.5
        ),
        language_threshold=_language_threshold(examples, languages) if thresholds else 0.5,
        topic_floor=_topic_floor(examples, features),
        examples_sha256=digest,
        n_examples=len(examples),
        groups=counts,
        labelled=labelled,
        projection=projection,
        cited=[list(ex.cites) for ex in examples],
        generic_words=generic_words(examples, labels.element),
    )


def generic_words(examples: Sequence[Example], elements: Sequence[str | None]) -> set[str]:
    """The stems of content words that the questions labelled with an element use about every
    element alike: at least ``GENERIC_SUPPORT`` of them, none of the elements with
    ``GENERIC_SHARE`` of them."""
    by_stem: dict[str, Counter[str]] = {}
    for ex, element in zip(examples, elements, strict=True):
        if element is None or element == NONE:
            continue
        for stem in {_stem(t) for t in Featurizer.content_words(ex.question)}:
            by_stem.setdefault(stem, Counter())[element] += 1
    return {
        stem
        for stem, counts in by_stem.items()
        if (n := counts.total()) >= GENERIC_SUPPORT and max(counts.values()) < GENERIC_SHARE * n
    }


def describe(heads: Heads) -> str:
    """One line on what a fitted model is: for logs and the fit command."""
    return json.dumps(
        {
            "examples": heads.n_examples,
            "writers": len(heads.groups),
            "refuse_threshold": round(heads.refuse_threshold, 3),
            "language_threshold": heads.language_threshold,
            "sha256": heads.examples_sha256[:12],
        }
    )


__all__ = [
    "KINDS",
    "Example",
    "Featurizer",
    "Head",
    "Heads",
    "describe",
    "direction_label",
    "tier_features",
    "tier_label",
    "examples_digest",
    "fit_heads",
]
