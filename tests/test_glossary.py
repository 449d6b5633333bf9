"""The glossary against the real toolkit: what it defines, quoted and cited; what it only uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import CorpusError
from assistant.glossary import Glossary, GlossaryEntry, phrase_pattern
from assistant.passages import toolkit_passages
from assistant.schema import Passage

# Every definition the toolkit gives, found by reading it: term -> (passage id, form).
EXPECTED = {
    "The Essentials": ("tier.essentials", "tier"),
    "Progressing Further": ("tier.progressing-further", "tier"),
    "Setting the Standard": ("tier.setting-the-standard", "tier"),
    "bundled payment model": ("payment.rationale.1", "in_a"),
    "Consensus Standards for Community-Based Palliative Care in California": (
        "payment.rationale.2",
        "listed",
    ),
    "tiers of service": ("payment.progressing-further.1", "that_is"),
    "MCPs": ("payment.resource.3", "acronym"),
    "quintuple aim": ("quality.essentials.1", "enumeration"),
    "PCQC": ("quality.progressing-further.1", "acronym"),
    "intensified attention": ("integration.progressing-further.3", "that_is"),
    "DEI": ("equity.essentials.2", "acronym"),
    "generalist palliative care": ("workforce-capacity.rationale.1", "also_known_as"),
    "VA": ("family-caregiver-support.resource.5", "acronym"),
    "GUIDE": ("family-caregiver-support.resource.6", "acronym"),
    "CAPC": ("appendix.intro.2", "acronym"),
    "C-TAC": ("appendix.intro.2", "acronym"),
    "CHCF": ("appendix.intro.2", "acronym"),
    "community-based palliative care": ("appendix.resource.3", "listed"),
}

# Terms the toolkit uses without defining them.
UNDEFINED = [
    "palliative care",
    "hospice",
    "specialty palliative care",
    "health equity",
    "family caregiver",
    "caregiver support",
    "serious illness",
    "fee-for-service",
    "respite",
]


@pytest.fixture(scope="module")
def passages(toolkit) -> list[Passage]:  # type: ignore[no-untyped-def]
    return toolkit_passages(toolkit)


@pytest.fixture(scope="module")
def glossary(toolkit, passages: list[Passage]) -> Glossary:  # type: ignore[no-untyped-def]
    return Glossary.from_toolkit(toolkit, passages)


def by_id(passages: list[Passage]) -> dict[str, Passage]:
    return {p.id: p for p in passages}


def entry(glossary: Glossary, term: str) -> GlossaryEntry:
    return next(e for e in glossary.entries if e.term == term)


# -- what the toolkit defines -------------------------------------------------------------------------
def test_every_definition_is_quoted_from_the_passage_it_cites(
    glossary: Glossary, passages: list[Passage]
) -> None:
    texts = by_id(passages)
    assert glossary.entries
    for item in glossary.entries:
        assert item.passage_id in texts, item
        assert item.definition and item.definition in texts[item.passage_id].text, item
        if item.form != "tier":  # a tier's name is the heading above its description
            assert any(
                phrase_pattern(f, loose=True).search(item.definition) for f in item.surface_forms
            )


def test_the_definitions_found_are_the_ones_the_toolkit_gives(glossary: Glossary) -> None:
    found = {e.term: (e.passage_id, e.form) for e in glossary.entries}
    assert found == EXPECTED


def test_definitions_are_the_toolkits_words(glossary: Glossary) -> None:
    assert entry(glossary, "bundled payment model").definition == (
        "In a bundled payment model, a single payment covers the delivery of a specified set of "
        "services, by a multidisciplinary team, over a defined period of time."
    )
    assert entry(glossary, "quintuple aim").definition == (
        "quintuple aim (patient experience, patient outcomes, reducing costs, care team "
        "well-being, health equity)"
    )
    assert entry(glossary, "tiers of service").definition.endswith(
        "(i.e., higher payment for more complex cases)"
    )
    generalist = entry(glossary, "generalist palliative care")
    assert "primary palliative care" in generalist.aliases
    # The next sentence goes on about the same term, so it is part of the quote.
    assert generalist.definition.endswith("basic palliative care comfortably and competently.")
    assert entry(glossary, "DEI").definition == "diversity, equity, and inclusion (DEI)"
    assert entry(glossary, "PCQC").definition.endswith(
        "which collects data on quality and provides feedback to help providers improve performance."
    )
    assert entry(glossary, "The Essentials").definition == "For those starting out."
    assert entry(glossary, "community-based palliative care").definition == (
        "community-based palliative care (home and clinic/outpatient)"
    )


def test_entries_are_in_toolkit_order(glossary: Glossary, passages: list[Passage]) -> None:
    order = {p.id: n for n, p in enumerate(passages)}
    positions = [order[e.passage_id] for e in glossary.entries]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("asked", "term"),
    [
        ("bundled payment model", "bundled payment model"),
        ("Bundled Payments", "bundled payment model"),
        ("bundled rate", "bundled payment model"),
        ("bundle", "bundled payment model"),
        ("primary palliative care", "generalist palliative care"),
        ("Quintuple Aims", "quintuple aim"),
        ("tier of service", "tiers of service"),
        ("dei", "DEI"),
        ("Diversity, equity and inclusion", "DEI"),
        ("the Palliative Care Quality Collaborative", "PCQC"),
        ("MCP", "MCPs"),
        ("managed care plans", "MCPs"),
        ("essentials", "The Essentials"),
        ("setting the standard", "Setting the Standard"),
        ("community based palliative care", "community-based palliative care"),
        (
            "the consensus standards",
            "Consensus Standards for Community-Based Palliative Care in California",
        ),
        ("Center to Advance Palliative Care", "CAPC"),
    ],
)
def test_lookup_by_term_or_alias(glossary: Glossary, asked: str, term: str) -> None:
    found = glossary.lookup(asked)
    assert found is not None and found.term == term


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("What does bundled payment mean?", "bundled payment model"),
        ("what's the quintuple aim?", "quintuple aim"),
        ("What is the quintuple aim in the Quality element?", "quintuple aim"),
        ("What does PCQC stand for?", "PCQC"),
        ("What is the GUIDE model?", "GUIDE"),
        (
            "What's the difference between generalist and specialty palliative care?",
            "generalist palliative care",
        ),
    ],
)
def test_lookup_in_questions(glossary: Glossary, question: str, term: str) -> None:
    found = glossary.lookup(question)
    assert found is not None and found.term == term


def test_an_acronym_inside_a_question_must_be_in_capitals(glossary: Glossary) -> None:
    assert glossary.lookup("Is there a guide for payers?") is None
    assert glossary.lookup("What is the GUIDE model?") is not None
    word = [Passage(id="x", kind="rationale", text="A guide for payers.", title="t", source="s")]
    assert glossary.mentions("GUIDE", word) == []
    assert glossary.mentions("guide", word) == ["x"]


# -- what the toolkit only uses -----------------------------------------------------------------------
@pytest.mark.parametrize("term", UNDEFINED)
def test_terms_the_toolkit_uses_but_does_not_define(
    glossary: Glossary, passages: list[Passage], term: str
) -> None:
    assert glossary.lookup(term) is None
    assert glossary.lookup(f"What is {term}?") is None
    ids = glossary.mentions(term, passages)
    assert ids, term
    texts = by_id(passages)
    assert all(term.split("-")[0].lower() in texts[pid].text.lower() for pid in ids)


def test_palliative_care_is_described_but_never_defined(
    glossary: Glossary, passages: list[Passage]
) -> None:
    # The one "Palliative care is ..." sentence says how new the field is, not what it is.
    rationale = by_id(passages)["quality.rationale.1"].text
    assert "Palliative care is still a relatively new field" in rationale
    assert glossary.lookup("palliative care") is None
    assert glossary.lookup("What is palliative care, is it the same as hospice?") is None


def test_hospice_comes_up_only_in_passing(glossary: Glossary, passages: list[Passage]) -> None:
    assert glossary.mentions("hospice", passages) == [
        "payment.resource.2",
        "quality.resource.2",
        "quality.resource.4",
        "workforce-capacity.footnote.8",
        "workforce-capacity.resource.4",
    ]


def test_mentions_are_whole_phrases_in_toolkit_order(
    glossary: Glossary, passages: list[Passage]
) -> None:
    every = glossary.mentions("palliative care", passages, limit=1000)
    assert len(every) > 50
    assert glossary.mentions("palliative care", passages) == every[:5]
    assert glossary.mentions("palliative care", passages, limit=2) == every[:2]
    order = {p.id: n for n, p in enumerate(passages)}
    assert [order[i] for i in every] == sorted(order[i] for i in every)
    assert glossary.mentions("pice", passages) == []  # inside "hospice": not a word
    assert glossary.mentions("fee for service", passages) == ["payment.rationale.1"]
    assert glossary.mentions("VA", passages) == ["family-caregiver-support.resource.5"]


# -- reading the question -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("What is palliative care, is it the same as hospice?", "palliative care"),
        ("what does bundled payment mean?", "bundled payment"),
        ("what's the quintuple aim?", "quintuple aim"),
        ("whats the quintuple aim", "quintuple aim"),
        ("What are tiers of service?", "tiers of service"),
        ("What is meant by intensified attention?", "intensified attention"),
        ("What do they mean by intensified attention in the toolkit?", "intensified attention"),
        ("Define bundled payment.", "bundled payment"),
        ("Definition of generalist palliative care", "generalist palliative care"),
        ("quintuple aim meaning?", "quintuple aim"),
        ("What does DEI stand for?", "DEI"),
        ("Who is CAPC?", "CAPC"),
        ("Can you explain what the quintuple aim is?", "quintuple aim"),
        ("I don't know what a bundled rate is", "bundled rate"),
        ("So what is hospice?", "hospice"),
        ("What is the term 'tiers of service'?", "tiers of service"),
        ("what is diversity, equity, and inclusion?", "diversity, equity, and inclusion"),
        ("What is the quintuple aim and how do we measure it?", "quintuple aim"),
        ("hospice vs palliative care", "hospice"),
        ("What's the difference between hospice and palliative care?", "hospice"),
    ],
)
def test_term_in(glossary: Glossary, question: str, term: str) -> None:
    assert glossary.term_in(question) == term


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("What is palliative care, is it the same as hospice?", ["palliative care", "hospice"]),
        ("Is hospice the same as palliative care?", ["hospice", "palliative care"]),
        ("Is hospice care the same thing as palliative care?", ["hospice care", "palliative care"]),
        ("hospice vs palliative care", ["hospice", "palliative care"]),
        ("What is hospice versus palliative care?", ["hospice", "palliative care"]),
        (
            "What's the difference between hospice and palliative care?",
            ["hospice", "palliative care"],
        ),
        ("How is hospice different from palliative care?", ["hospice", "palliative care"]),
        ("Compare bundled payment with capitation", ["bundled payment", "capitation"]),
        # A one-word side borrows the other's noun when the toolkit uses the result.
        (
            "Compare bundled payment and fee-for-service",
            ["bundled payment", "fee-for-service payment"],
        ),
        (
            "What's the difference between generalist and specialty palliative care?",
            ["generalist palliative care", "specialty palliative care"],
        ),
        (
            "specialty vs generalist palliative care",
            ["specialty palliative care", "generalist palliative care"],
        ),
        ("Is it the same as hospice?", ["hospice"]),
        ("what does bundled payment mean?", ["bundled payment"]),
    ],
)
def test_terms_in(glossary: Glossary, question: str, terms: list[str]) -> None:
    assert glossary.terms_in(question) == terms


@pytest.mark.parametrize(
    "question",
    [
        "What should we do next on equity?",
        "How do we start with payment?",
        "Which resources help with uptake?",
        "What are the essentials for payment?",
        "What is our next step for workforce capacity?",
        "What is the first step?",
        "What's next after the essentials?",
        "We have done the essentials for equity, what next?",
        "Is there a resource on caregiver assessment?",
        "Are we ready for setting the standard?",
        "What is it?",
        "Show me the action items for quality",
    ],
)
def test_ordinary_questions_name_no_term(glossary: Glossary, question: str) -> None:
    assert glossary.terms_in(question) == []
    assert glossary.term_in(question) is None


# -- the glossary page --------------------------------------------------------------------------------
def test_markdown_lists_every_entry_with_its_citation(glossary: Glossary) -> None:
    page = glossary.markdown()
    lines = [line for line in page.splitlines() if line.startswith("- **")]
    assert len(lines) == len(glossary.entries)
    for item in glossary.entries:
        line = next(x for x in lines if x.lower().startswith(f"- **{item.term.lower()}**"))
        assert f"“{item.definition}”" in line
        assert line.endswith(f"`{item.passage_id}`")
    terms = [line[4 : line.index("**", 4)] for line in lines]
    keys = [t.casefold().removeprefix("the ") for t in terms]
    assert keys == sorted(keys)
    assert "- **Bundled payment model**: “In a bundled payment model," in page


# -- the term list and a changed toolkit --------------------------------------------------------------
def test_a_listed_term_the_toolkit_does_not_define_is_an_error(
    toolkit, passages: list[Passage], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    terms = tmp_path / "glossary.yaml"
    terms.write_text("listed:\n  - term: respite benefit\n", "utf-8")
    with pytest.raises(CorpusError, match="'respite benefit'"):
        Glossary.from_toolkit(toolkit, passages, terms_file=terms)
    terms.write_text("aliases:\n  hospice: [end-of-life care]\n", "utf-8")
    with pytest.raises(CorpusError, match="'hospice'"):
        Glossary.from_toolkit(toolkit, passages, terms_file=terms)


def test_a_changed_toolkit_is_noticed(toolkit, passages: list[Passage]) -> None:  # type: ignore[no-untyped-def]
    changed = [
        p.model_copy(update={"text": p.text.replace(" (home and clinic/outpatient)", "")})
        for p in passages
    ]
    with pytest.raises(CorpusError, match="'community-based palliative care'"):
        Glossary.from_toolkit(toolkit, changed)


def test_the_general_patterns(toolkit) -> None:  # type: ignore[no-untyped-def]
    texts = {
        "a": "Respite care is a short break for family caregivers. Respite care can last days.",
        "b": "Palliative care is still a relatively new field. This approach is a good start.",
        "c": "A single rate per member, known as a case rate, pays for the whole team.",
        "d": "Advance care planning, also known as ACP talks, helps members say what matters.",
        "e": "In a capitation model, a fixed amount per member covers all care. In a 2023 survey, the plans agreed.",
        "f": "Goals-of-care conversation refers to a talk about what matters most.",
        "g": "Members with serious illness (e.g., cancer, heart failure, renal failure) need more.",
        "h": "Track the domains of inequities (pain management, communication, etc.).",
        "i": "Members say the Care Team Model (CTM) helps.",
    }
    passages = [
        Passage(id=k, kind="rationale", text=v, title="t", source="s") for k, v in texts.items()
    ]
    glossary = Glossary.from_toolkit(toolkit, passages, terms_file=None)
    found = {e.term: (e.passage_id, e.form) for e in glossary.entries}
    assert found == {
        "Respite care": ("a", "copula"),
        "case rate": ("c", "known_as"),
        "Advance care planning": ("d", "also_known_as"),
        "capitation model": ("e", "in_a"),
        "Goals-of-care conversation": ("f", "copula"),
        "CTM": ("i", "acronym"),
    }
    # The sentence after a definition is part of it when it goes on about the same term.
    assert glossary.entries[0].definition == texts["a"]
    assert entry(glossary, "capitation model").definition.endswith("covers all care.")
