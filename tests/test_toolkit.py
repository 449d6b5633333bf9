"""The parser against the real toolkit text: counts, awkward items, cleaning, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import ELEMENT_KEYS, TIER_KEYS
from assistant.errors import CorpusError
from assistant.toolkit import load_toolkit, parse_toolkit

from .conftest import CORPUS, REPO

EXPECTED_ITEMS = {
    "payment": (2, 2, 1),
    "quality": (3, 3, 2),
    "integration": (5, 3, 2),
    "uptake": (4, 3, 1),
    "equity": (3, 3, 2),
    "workforce-capacity": (1, 1, 1),
    "family-caregiver-support": (3, 4, 2),
}
EXPECTED_RESOURCES = {
    "payment": 3,
    "quality": 4,
    "integration": 4,
    "uptake": 5,
    "equity": 5,
    "workforce-capacity": 6,
    "family-caregiver-support": 6,
}


def test_corpus_is_a_byte_copy_of_the_shared_toolkit() -> None:
    shared = REPO.parent / "shared" / "toolkit"
    if not shared.is_dir():
        pytest.skip("shared/toolkit is not beside this checkout")
    for name in ("develop-a-plan.md", "develop-a-plan-overview-page.txt"):
        assert (CORPUS / name).read_bytes() == (shared / name).read_bytes()


def test_action_item_counts_per_element_and_tier(toolkit) -> None:  # type: ignore[no-untyped-def]
    assert len(toolkit.items) == 51
    for key, counts in EXPECTED_ITEMS.items():
        element = toolkit.element(key)
        assert tuple(len(element.tier_items(t)) for t in TIER_KEYS) == counts, key


def test_resource_counts(toolkit) -> None:  # type: ignore[no-untyped-def]
    assert len(toolkit.resources) == 37
    for key, count in EXPECTED_RESOURCES.items():
        assert len(toolkit.element(key).resources) == count, key
    assert len(toolkit.appendix_resources) == 4
    assert [r.id for r in toolkit.appendix_resources][0] == "appendix.resource.1"


def test_ids_are_stable_and_ordered(toolkit) -> None:  # type: ignore[no-untyped-def]
    ids = [item.id for item in toolkit.items]
    assert len(set(ids)) == 51
    assert ids[:3] == [
        "payment.essentials.1",
        "payment.essentials.2",
        "payment.progressing-further.1",
    ]
    assert [e.key for e in toolkit.elements] == list(ELEMENT_KEYS)


def test_mid_sentence_bold_leads(toolkit) -> None:  # type: ignore[no-untyped-def]
    mentor = toolkit.item("integration.essentials.4")
    assert mentor.lead == "mentor and support"
    assert mentor.text.startswith("When necessary, mentor and support organizations")
    reassess = toolkit.item("quality.setting-the-standard.1")
    assert reassess.lead == "re-assess monitoring activities"
    assert reassess.text.startswith("At regular intervals, re-assess")


def test_heading_items_keep_their_continuation(toolkit) -> None:  # type: ignore[no-untyped-def]
    eligibility = toolkit.item("uptake.essentials.1")
    assert eligibility.lead == "Use inclusive eligibility criteria"
    assert "beyond the minimums specified in Medi-Cal policy guidance" in eligibility.text
    training = toolkit.item("uptake.essentials.2")
    assert training.text.endswith("how to effectively communicate its value.")


def test_four_part_approach_has_four_substeps(toolkit) -> None:  # type: ignore[no-untyped-def]
    approach = toolkit.item("uptake.essentials.3")
    assert approach.lead == "Implement a four-part approach"
    assert len(approach.substeps) == 4
    assert approach.substeps[0].startswith("Utilize claims and administrative data")
    assert approach.substeps[3].startswith("Promote referrals from healthcare providers")
    assert toolkit.item("uptake.essentials.4").lead.startswith("Offer resources that describe")


def test_two_bold_runs_make_one_lead(toolkit) -> None:  # type: ignore[no-untyped-def]
    item = toolkit.item("family-caregiver-support.essentials.3")
    assert item.lead == "Ensure that family caregiver support resources are cataloged"


def test_sub_goals_from_headings_and_malformed_list_lines(toolkit) -> None:  # type: ignore[no-untyped-def]
    integration = toolkit.element("integration")
    assert [s.letter for s in integration.subgoals] == ["A", "B"]
    assert integration.subgoals[0].heading.startswith("Within the plan: Offer palliative care")
    pf = integration.tier_items("progressing-further")
    assert [i.subgoal.letter if i.subgoal else None for i in pf] == ["A", "B", "B"]
    sts = toolkit.element("quality").tier_items("setting-the-standard")
    assert [i.subgoal.letter if i.subgoal else None for i in sts] == ["A", "B"]
    assert toolkit.element("payment").subgoals == []


def test_text_is_clean_and_footnotes_are_structure(toolkit) -> None:  # type: ignore[no-untyped-def]
    texts = [i.full_text for i in toolkit.items] + [r.text for r in toolkit.resources]
    for element in toolkit.elements:
        texts += [element.goal, *element.rationale]
    for text in texts:
        for residue in ("<sup>", "<a ", "</a>", "](#)", "**", "<u>", "→"):
            assert residue not in text, (residue, text[:80])
    payment = toolkit.element("payment")
    assert [f.number for f in payment.footnotes] == [5, 6]
    assert payment.footnotes[0].text.startswith("State of Medi-Cal Palliative Care")
    assert "67% of the 14 responding plans" in payment.rationale[1]
    assert toolkit.element("equity").footnotes[0].text.startswith("Help Wanted")


def test_resource_rows(toolkit) -> None:  # type: ignore[no-untyped-def]
    zarit = toolkit.element("family-caregiver-support").resources[1]
    assert (zarit.title, zarit.type, zarit.publisher) == (
        "Zarit Burden Interview",
        "Assessment Tools",
        None,
    )
    measures = toolkit.element("quality").resources[3]
    assert measures.note == "PDF"
    assert measures.publisher == "National Coalition for Hospice and Palliative Care"
    blog = toolkit.element("equity").resources[0]
    assert blog.title.startswith("How Medicare Advantage Could Address Pain Inequities")


def test_tiers_intro_appendix_contact(toolkit) -> None:  # type: ignore[no-untyped-def]
    assert [t.description for t in toolkit.tiers][:2] == [
        "For those starting out.",
        "For those that have the basics covered.",
    ]
    assert [s.title for s in toolkit.intro] == ["Develop a Plan", "Craft the Strategy"]
    assert toolkit.element("workforce-capacity").summary.startswith(
        "Increase the number of clinicians"
    )
    assert any("early stages of building" in p for p in toolkit.appendix.paragraphs)
    assert any("transformingcarepartners.com" in p for p in toolkit.contact.paragraphs)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="Toolkit file not found"):
        load_toolkit(tmp_path)


def test_text_without_element_pages_is_rejected() -> None:
    overview = (CORPUS / "develop-a-plan-overview-page.txt").read_text("utf-8")
    with pytest.raises(CorpusError, match="expected the seven element pages"):
        parse_toolkit("# DEVELOP A PLAN\n\nSome text.\n", overview)


def test_broken_resource_row_names_the_line() -> None:
    text = (CORPUS / "develop-a-plan.md").read_text("utf-8")
    overview = (CORPUS / "develop-a-plan-overview-page.txt").read_text("utf-8")
    broken = text.replace("\tGuidance on how to price a bundled payment.", "", 1)
    with pytest.raises(CorpusError, match="Resource table row .* expected 3"):
        parse_toolkit(broken, overview)


def test_cli_prints_tree_and_json() -> None:
    run = [sys.executable, "-m", "assistant", "toolkit"]
    tree = subprocess.run(run, cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "[integration.essentials.4] mentor and support" in tree
    assert "Total: 51 action items, 37 resources, 7 elements" in tree
    dumped = subprocess.run([*run, "--json"], cwd=REPO, capture_output=True, text=True, check=True)
    data = json.loads(dumped.stdout)
    assert sum(len(e["items"]) for e in data["elements"]) == 51


def test_encoded_markup_is_removed_not_decoded_into_markup() -> None:
    from assistant.toolkit import clean

    text = clean(
        "Respite &lt;img src=x onerror=alert(1)&gt;policy "
        "&#33;&#91;logo&#93;(http://example.invalid/x.png) and ![chart](https://example.invalid/c.png)"
        " <b>bold</b> &amp; more"
    )
    assert text == "Respite policy logo and chart bold & more"
