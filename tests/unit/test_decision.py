"""The decision protocol: JSON and plain-text answers from the model."""

from __future__ import annotations

import json

import pytest

from mailhook.agent.decision import Action, parse_answer


@pytest.mark.parametrize("text", ["NO_ACTION", "  DISCARD\n", "no_action"])
def test_plain_no_action_words(text: str) -> None:
    assert parse_answer(text).action is Action.NO_ACTION


def test_no_action_word_inside_text_is_a_reply() -> None:
    decision = parse_answer("We can't DISCARD your order, it shipped.")
    assert decision.action is Action.REPLY and "shipped" in decision.reply_text


def test_json_reply_escalate_no_action() -> None:
    reply = parse_answer(json.dumps({"action": "reply", "reply": "Hi!", "reason": "faq"}))
    assert (reply.action, reply.reply_text, reply.reason) == (Action.REPLY, "Hi!", "faq")
    esc = parse_answer(json.dumps({"action": "escalate", "trigger": "refund", "reply": "draft"}))
    assert (esc.action, esc.trigger, esc.reply_text) == (Action.ESCALATE, "refund", "draft")
    assert parse_answer('{"action": "no_action"}').action is Action.NO_ACTION
    fenced = parse_answer('```json\n{"action": "reply", "reply": "ok"}\n```')
    assert (fenced.action, fenced.reply_text) == (Action.REPLY, "ok")


@pytest.mark.parametrize(
    "text",
    ['{"action": "reply", "reply": ""}', '{"action": "send_money"}', "", '{"action": 1}', "[1, 2]"],
)
def test_unusable_answers_go_to_the_owner(text: str) -> None:
    decision = parse_answer(text)
    assert decision.action in (Action.ESCALATE, Action.REPLY)
    if decision.action is Action.REPLY:
        assert decision.reply_text == text.strip()
    else:
        assert decision.reason


def test_json_reply_with_no_action_text() -> None:
    assert parse_answer('{"action": "reply", "reply": "NO_ACTION"}').action is Action.NO_ACTION
