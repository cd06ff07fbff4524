"""Childcare questions through chat, end to end: the knowledge-base action
answers from vetted entries with their source; red flags get urgent advice."""
from __future__ import annotations

import uuid

from e2e_http import post


def _say(stack, sender, message):
    status, replies = post(stack.rest, {"sender": sender, "message": message})
    assert status == 200, replies
    return "\n".join(r.get("text", "") for r in replies)


def test_question_is_answered_with_its_source(rasa_stack):
    text = _say(rasa_stack, f"test-{uuid.uuid4().hex[:10]}", "宝宝几个月可以加辅食")
    assert "来源" in text
    assert "6" in text or "六" in text  # complementary food from around 6 months


def test_english_question_answered_in_english_with_source(rasa_stack):
    text = _say(rasa_stack, f"test-{uuid.uuid4().hex[:10]}", "when should my baby start solid food")
    assert "Source" in text and "来源" not in text


def test_emergency_gets_120_before_anything_else(rasa_stack):
    text = _say(rasa_stack, f"test-{uuid.uuid4().hex[:10]}", "孩子把纽扣电池吞下去了")
    assert "120" in text
    assert "医院" in text or "急诊" in text
