"""Answers a champion can act on: item-level progress, where the plan stands, the specific
item first, what the toolkit does not define, and suggestions that fit the turn."""

from __future__ import annotations

import re

import pytest

from assistant import InvalidInput
from assistant.query import NO_TIER_AFTER

EQUITY_1 = "equity.essentials.1"


def cited(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.id for c in reply.citations]


def line_of(reply, item_id: str) -> str:  # type: ignore[no-untyped-def]
    """The answer's line that cites ``item_id`` first."""
    marker = next(c.marker for c in reply.citations if c.id == item_id)
    return next(line for line in reply.text.splitlines() if f"[{marker}]" in line)


def test_an_item_done_is_shown_as_done_never_as_a_to_do(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("What's next on equity?", done_items=[EQUITY_1])
    assert (reply.element, reply.tier) == ("equity", "essentials")
    assert "1 of 3 The Essentials items done" in reply.text
    done_part = reply.text.split("**Already done**", 1)
    assert len(done_part) == 2
    assert "✓" in line_of(reply, EQUITY_1) and "(done)" in line_of(reply, EQUITY_1)
    # the open items come before the done one
    for item in ("equity.essentials.2", "equity.essentials.3"):
        assert f"[{next(c.marker for c in reply.citations if c.id == item)}]" in done_part[0]
    # without done items the same question lists all three as to-dos
    plain = bot.ask("What's next on equity?", profile={"equity": "none"})
    assert "**Already done**" not in plain.text


def test_done_items_complete_a_tier_and_the_profile_still_wins(bot) -> None:  # type: ignore[no-untyped-def]
    essentials = [f"equity.essentials.{n}" for n in (1, 2, 3)]
    reply = bot.ask("What should we do next on equity?", done_items=essentials)
    assert reply.tier == "progressing-further"
    hand_set = bot.ask(
        "What should we do next on equity?",
        done_items=essentials,
        profile={"equity": "progressing-further"},
    )
    assert hand_set.tier == "setting-the-standard"


@pytest.mark.parametrize("bad", ["equity.essentials.1", [1, 2], {"equity.essentials.1": True}, 7])
def test_done_items_must_be_a_list_of_ids(bot, bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="done_items"):
        bot.ask("What's next on equity?", done_items=bad)


def test_unknown_ids_are_ignored(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("What's next on equity?", done_items=["nothing.like.this"])
    assert "**Already done**" not in reply.text


def test_an_open_what_next_shows_where_we_stand_then_one_focus(bot) -> None:  # type: ignore[no-untyped-def]
    done = ["payment.essentials.1", "payment.essentials.2"]
    done += [f"quality.essentials.{n}" for n in (1, 2, 3)]
    reply = bot.ask("What should we work on next?", done_items=done)
    assert reply.kind == "next_steps" and reply.element is None
    table = [line for line in reply.text.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 7
    assert table[0].startswith("| Payment | The Essentials | Progressing Further")
    assert "0 of 2" in table[0] and "| Not started | The Essentials" in table[2]
    # every table row cites its next open item, whose own words it shows
    by_marker = {c.marker: c for c in reply.citations}
    for row in table[2:]:
        last_cell = row.strip(" |").split(" | ")[-1]
        shown, marker = re.match(r"([^\[]+?) \[(\d+)\]", last_cell).group(1, 2)  # type: ignore[union-attr]
        assert shown.rstrip(" …") in by_marker[int(marker)].text, row
    # one focus: the lowest tier still open, the fewest items left (Workforce Capacity: 1)
    assert "**Suggested focus: Workforce Capacity › The Essentials**" in reply.text
    assert "workforce-capacity.essentials.1" in cited(reply)
    assert "workforce-capacity.rationale.1" in cited(reply)  # the toolkit's reason, quoted


def test_the_item_asked_about_comes_first_and_the_rest_is_folded(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("How should we pay for initial assessments?")
    assert (reply.element, reply.tier) == ("payment", "essentials")
    head, rest = reply.text.split("<details>", 1)
    assert "**Most relevant to your question**" in head
    assert "initial assessments" in head and "bundled payment model" not in head
    assert "bundled payment model" in rest.split("</details>", 1)[0]


def test_the_sub_step_that_answers_is_highlighted(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("Our oncologists never refer anyone")
    first_item = next(c.id for c in reply.citations if c.kind == "action_item")
    assert first_item == "uptake.essentials.3"  # the item that answers comes first
    assert re.search(r"\*\*Promote referrals[^*]*oncologists[^*]*\*\*", reply.text), reply.text


def test_a_definition_the_toolkit_gives_is_quoted(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("What is the quintuple aim?")
    assert cited(reply) == ["quality.essentials.1"]
    assert "patient experience, patient outcomes, reducing costs" in reply.text


def test_a_term_the_toolkit_only_uses_is_said_to_be_undefined(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("What is palliative care, is it the same as hospice?")
    assert "The toolkit does not define “palliative care”" in reply.text
    assert "The toolkit does not define “hospice”" in reply.text
    hospice = reply.text.split("“hospice”", 1)[1]
    assert "hospice" in hospice.lower().split("[", 1)[0] + hospice.lower()
    assert not any(c.kind == "resource" and "payment" in c.id for c in reply.citations[:1])


def test_after_the_highest_tier_says_so(bot) -> None:  # type: ignore[no-untyped-def]
    first = bot.ask("How do we set the standard on equity?")
    assert first.tier == "setting-the-standard"
    after = bot.ask("What comes after that?", previous=first.plan)
    assert after.text.startswith(NO_TIER_AFTER)
    assert "<details>" in after.text  # the tier is not repeated in full, only folded


def test_suggestions_never_repeat_the_question_just_answered(bot) -> None:  # type: ignore[no-untyped-def]
    for question in ("What are the three tiers?", "What should we work on next?"):
        reply = bot.ask(question)
        folded = {re.sub(r"\W+", " ", s.lower()).strip() for s in reply.suggestions}
        assert re.sub(r"\W+", " ", question.lower()).strip() not in folded
        assert 2 <= len(reply.suggestions) <= 3


def test_a_refusal_offers_clickable_suggestions_not_a_plain_list(bot) -> None:  # type: ignore[no-untyped-def]
    reply = bot.ask("What's the capital of France?")
    assert reply.kind == "out_of_scope"
    assert len(reply.suggestions) == 3
    assert not any(s in reply.text for s in reply.suggestions)
