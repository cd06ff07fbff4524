"""Pure decisions of the reminders chat actions."""
import pytest

from bot.actions.reminders import (
    CHAT,
    _pick_item,
    decide_confirmation,
    describe_items,
    parse_channel,
    spoken_phone,
    wants_to_cancel,
)


@pytest.mark.parametrize(
    "text, channel, ask",
    [
        ("就在这里提醒", CHAT, None),
        ("in this chat", CHAT, None),
        ("13812345678", "13812345678", None),
        ("我的手机号是139 1234 5678", "13912345678", None),
        ("+86 138-1234-5678", "13812345678", None),
        ("发短信", None, "need_phone"),
        ("12345", None, "bad_channel"),
        ("随便", None, "bad_channel"),
    ],
)
def test_parse_channel(text, channel, ask):
    decision = parse_channel(text)
    assert decision["ask"] == ask
    if channel in (None, CHAT):
        assert decision["channel"] == channel
    else:
        assert decision["channel"].endswith(channel)


def test_spoken_phone_groups_digits():
    assert spoken_phone("+8613812345678") == "138 1234 5678"


@pytest.mark.parametrize("text, intent, expected", [("算了", None, True), ("不要了", "inform", True),
                                                    ("cancel", None, True), ("豆豆", "inform", False),
                                                    ("不", "deny", True)])
def test_wants_to_cancel(text, intent, expected):
    assert wants_to_cancel(text, intent) is expected


ITEMS = [
    {"item_id": "hepb-1", "series": "hepb", "dose": 1, "name": "乙肝疫苗第1剂", "status": "given", "due_date": "2025-03-05"},
    {"item_id": "hepb-2", "series": "hepb", "dose": 2, "name": "乙肝疫苗第2剂", "status": "overdue", "due_date": "2025-04-05"},
    {"item_id": "hepb-3", "series": "hepb", "dose": 3, "name": "乙肝疫苗第3剂", "status": "upcoming", "due_date": "2025-09-05"},
]


def test_pick_item_by_dose_or_next_not_given():
    assert _pick_item(ITEMS, "hepb", 3)["item_id"] == "hepb-3"
    assert _pick_item(ITEMS, "hepb", None)["item_id"] == "hepb-2"
    assert _pick_item(ITEMS, "dtap", 1) is None


def test_describe_items_marks_overdue_and_names_local_clinic():
    text = describe_items(ITEMS[1:], "zh")
    assert "乙肝疫苗第2剂：2025-04-05（已经可以补打" in text
    assert "以当地接种门诊" in text
    assert "Nothing is due" in describe_items([], "en")


def _turn(*events):
    return [{"event": "user", "text": "q"}, *events, {"event": "action", "name": "action_listen"},
            {"event": "user", "text": "是"}]


def test_decide_confirmation_follows_what_was_asked():
    assert decide_confirmation(_turn(), {"pending_dose": "c|hepb-2|x"}) == "dose"
    assert decide_confirmation(_turn(), {"service_confirmation": True}) == "service"
    offer = {"event": "bot", "text": "转人工吗", "metadata": {"utter_action": "utter_offer_human"}}
    assert decide_confirmation(_turn(offer), {}) == "offer_human"
    reminder = {"event": "action", "name": "action_deliver_reminder"}
    assert decide_confirmation(_turn(reminder), {}) == "reminder"
    assert decide_confirmation(_turn(), {}) == "none"
