"""Reminders through chat, end to end: Rasa, the action server and the
reminders service, real HTTP and SQLite."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from e2e_http import get, post


def _say(stack, sender, message):
    status, replies = post(stack.rest, {"sender": sender, "message": message})
    assert status == 200, replies
    return "\n".join(r.get("text", "") for r in replies), replies


def _api(stack, path):
    status, body = get(stack.reminders_url + path, headers={"Authorization": "Bearer test-reminders-token"})
    return status, json.loads(body or "null")


def _birth_date_months_ago(months: int) -> dt.date:
    today = dt.date.today()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return dt.date(year, month + 1, min(today.day, 28))


def test_subscribe_ask_next_due_record_dose_and_unsubscribe(rasa_stack):
    sender = f"test-{uuid.uuid4().hex[:10]}"
    text, _ = _say(rasa_stack, sender, "我要订阅疫苗提醒")
    assert "同意" in text  # consent is asked first
    assert _api(rasa_stack, f"/senders/{sender}")[0] == 404

    text, _ = _say(rasa_stack, sender, "同意")
    assert "小名" in text
    text, _ = _say(rasa_stack, sender, "豆豆")
    assert "出生" in text
    born = _birth_date_months_ago(3)
    text, _ = _say(rasa_stack, sender, f"{born.year}年{born.month}月{born.day}日")
    assert "提醒发到哪里" in text
    text, _ = _say(rasa_stack, sender, "就在这里提醒")
    assert "已为豆豆订阅提醒" in text and "乙肝疫苗" in text

    status, found = _api(rasa_stack, f"/senders/{sender}")
    assert status == 200 and found["children"][0]["nickname"] == "豆豆"
    assert found["children"][0]["birth_date"] == born.isoformat()

    text, _ = _say(rasa_stack, sender, "下一针什么时候打")
    assert "豆豆" in text and "剂" in text

    text, _ = _say(rasa_stack, sender, "已经打了乙肝第二针")
    assert "乙肝疫苗第2剂" in text and "对吗" in text
    text, _ = _say(rasa_stack, sender, "是的")
    assert "已记录" in text
    child_id = found["children"][0]["id"]
    status, doses = _api(rasa_stack, f"/children/{child_id}/doses")
    assert any(d.get("item_id") == "hepb-2" for d in doses["doses"]), doses

    text, _ = _say(rasa_stack, sender, "退订")
    assert "已退订" in text
    status, found = _api(rasa_stack, f"/senders/{sender}")
    assert all(c["opted_out"] for c in found["caregivers"])


def test_refused_consent_stores_nothing(rasa_stack):
    sender = f"test-{uuid.uuid4().hex[:10]}"
    _say(rasa_stack, sender, "帮我设个打疫苗的提醒")
    text, _ = _say(rasa_stack, sender, "不同意")
    assert "不会保存" in text
    assert _api(rasa_stack, f"/senders/{sender}")[0] == 404
    # The conversation goes on normally.
    assert "育儿" in _say(rasa_stack, sender, "你好")[0]


def test_asking_before_subscribing_offers_to_subscribe(rasa_stack):
    sender = f"test-{uuid.uuid4().hex[:10]}"
    _say(rasa_stack, sender, "你好")
    for question in ("下一针什么时候打", "已经打了乙肝第二针"):
        text, replies = _say(rasa_stack, sender, question)
        assert "还没有订阅提醒" in text, text
        assert replies[-1].get("buttons"), replies  # the offer comes with a subscribe button
    assert _api(rasa_stack, f"/senders/{sender}")[0] == 404


def test_future_and_too_old_birth_dates_are_refused_clearly(rasa_stack):
    sender = f"test-{uuid.uuid4().hex[:10]}"
    _say(rasa_stack, sender, "订阅提醒")
    _say(rasa_stack, sender, "同意")
    _say(rasa_stack, sender, "乐乐")
    future = dt.date.today() + dt.timedelta(days=40)
    text, _ = _say(rasa_stack, sender, future.isoformat())
    assert "未来" in text or "还没到" in text or "future" in text.lower()
    text, _ = _say(rasa_stack, sender, "2010年1月1日")
    assert "6" in text or "六" in text
    text, _ = _say(rasa_stack, sender, "算了")
    assert "取消" in text
    assert _api(rasa_stack, f"/senders/{sender}")[0] == 404


def test_sms_channel_is_read_back_before_use(rasa_stack):
    sender = f"test-{uuid.uuid4().hex[:10]}"
    _say(rasa_stack, sender, "我要订阅提醒")
    _say(rasa_stack, sender, "同意")
    _say(rasa_stack, sender, "小宝")
    _say(rasa_stack, sender, _birth_date_months_ago(5).isoformat())
    text, _ = _say(rasa_stack, sender, "发短信 我的手机号是139 1234 5678")
    assert "139 1234 5678" in text and "对吗" in text
    text, _ = _say(rasa_stack, sender, "对")
    assert "已为小宝订阅提醒" in text


def test_book_an_activity_from_the_list(rasa_stack):
    auth = {"Authorization": "Bearer test-reminders-token"}
    starts = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).isoformat()
    status, activity = post(
        rasa_stack.reminders_url + "/activities",
        {"title": "新手爸妈育儿课", "place": "幸福社区卫生服务中心", "starts_at": starts, "capacity": 1},
        headers=auth,
    )
    assert status == 201, activity
    sender = f"test-{uuid.uuid4().hex[:10]}"
    status, _ = post(
        rasa_stack.reminders_url + "/children",
        {
            "consent": {"given": True, "by": sender, "text_version": "test"},
            "child": {"nickname": "安安", "birth_date": _birth_date_months_ago(4).isoformat()},
            "caregivers": [{"chat": {"sender_id": sender, "output_channel": "rest"}}],
        },
        headers=auth,
    )
    assert status == 201
    text, replies = _say(rasa_stack, sender, "我想报名亲子课")
    buttons = [b for r in replies for b in r.get("buttons", [])]
    chosen = next(b for b in buttons if "新手爸妈育儿课" in b["title"])
    text, _ = _say(rasa_stack, sender, chosen["payload"])
    assert "报名成功" in text and "幸福社区卫生服务中心" in text
    # The one place is taken: a second family is told it is full.
    other = f"test-{uuid.uuid4().hex[:10]}"
    post(
        rasa_stack.reminders_url + "/children",
        {
            "consent": {"given": True, "by": other, "text_version": "test"},
            "child": {"nickname": "乐乐", "birth_date": _birth_date_months_ago(6).isoformat()},
            "caregivers": [{"chat": {"sender_id": other, "output_channel": "rest"}}],
        },
        headers=auth,
    )
    text, _ = _say(rasa_stack, other, chosen["payload"])
    assert "满" in text
