"""Reminders in chat: subscribe (consent first), next due, doses, opt-out, activities.

The actions are thin: parsing lives in `reminders.dates`, `reminders.phones`
and `reminders.dose_text`, decisions in small pure functions here, and the
data in the reminders service (`reminders.client`).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.language import current_language
from reminders.client import RemindersClient, RemindersError
from reminders.dates import parse_birth_date
from reminders.dose_text import find_dose_mention
from reminders.phones import normalize_phone

TIMEZONE = ZoneInfo("Asia/Shanghai")
CONSENT_TEXT_VERSION = "chat-consent-v1"
FORM_SLOTS = ("consent_given", "child_nickname", "birth_date", "reminder_channel", "phone_confirmed")
CHAT = "chat"
BOOKING_CONFLICTS = ("already_booked", "activity_full", "activity_started")

_CANCEL = re.compile(r"算了|不要了|不订了|不用了|取消|不弄了|不想|cancel|never ?mind|forget it|\bstop\b", re.I)
_IN_CHAT = re.compile(r"这里|这儿|聊天|对话|网页|微信|本页|chat|here|app", re.I)
_PHONE_IN_TEXT = re.compile(r"(?:\+?86[\s-]*)?1[3-9](?:[\s-]*\d){9}")
_SMS_WORD = re.compile(r"短信|手机|sms|text|phone|mobile", re.I)

T = {
    "zh": {
        "ask_consent_given": "为了给您发提醒，需要保存宝宝的小名、出生日期和您的联系方式，只用于提醒，您可以随时退订或要求删除。您同意吗？",
        "ask_child_nickname": "宝宝的小名叫什么？说个小名就行。",
        "ask_birth_date": "宝宝是哪天出生的？比如：2025年3月5日。",
        "ask_reminder_channel": "提醒发到哪里？就在这里聊天提醒，还是发短信（请告诉我手机号）？",
        "not_stored": "好的，我们不会保存任何信息。需要时随时说“订阅提醒”。",
        "cancelled": "好的，已取消订阅，没有保存任何信息。",
        "bad_nickname": "小名请说1到20个字，比如“豆豆”。",
        "confirm_date": "您说的是哪一天？",
        "need_phone": "好的，发短信的话，请告诉我手机号（11位）。",
        "bad_channel": "没听明白。可以说“就在这里提醒”，或者直接告诉我手机号。",
        "confirm_phone": "提醒会发到手机 {phone}，对吗？",
        "subscribed": "已为{nickname}订阅提醒。提醒只在早上8点到晚上9点之间发送，回复“退订”可随时取消。",
        "next_items": "接下来：",
        "no_items": "目前没有待提醒的疫苗或体检。",
        "item_line": "· {name}：{date}{when}",
        "due_now": "（现在就可以去）",
        "overdue": "（已经可以补打，请尽快联系接种门诊）",
        "local_note": "具体安排以当地接种门诊、社区卫生服务中心通知为准。",
        "service_down": "抱歉，提醒服务暂时连不上，您的信息还没保存。请稍后再说“订阅提醒”，或者说“转人工”。",
        "not_subscribed": "您还没有订阅提醒。要现在订阅吗？",
        "subscribe_button": "订阅提醒",
        "which_dose": "请告诉我是哪种疫苗、第几针，比如“已经打了乙肝第二针”。",
        "confirm_dose": "确认一下：{nickname}已经打了{name}，对吗？",
        "no_such_dose": "我在{nickname}的接种计划里没找到这一针，请再说一次是哪种疫苗、第几针。",
        "dose_recorded": "已记录：{name}（{date}）。后面的提醒已按最短间隔重新计算。",
        "dose_not_recorded": "好的，没有记录。",
        "unsubscribed": "已退订，之后不会再给您发提醒。",
        "nothing_to_unsubscribe": "您目前没有订阅任何提醒。",
        "anything_else": "好的。还有什么需要帮忙的吗？",
        "no_activities": "目前没有可以报名的活动。",
        "choose_activity": "可以报名的活动：",
        "activity_line": "{title}，{time}，{place}（剩{remaining}个名额）",
        "booked": "报名成功：{title}，{time}，{place}。活动前一天和前一小时会提醒您。",
        "already_booked": "您已经报过这个活动了。",
        "activity_full": "这个活动名额已满，可以看看别的活动。",
        "activity_started": "这个活动已经开始了，不能再报名。",
        "book_needs_subscription": "报名前需要先登记宝宝信息（订阅提醒）。要现在登记吗？",
    },
    "en": {
        "ask_consent_given": "To send reminders I need to store your child's nickname and birth date and how to reach you. They are used only for reminders; you can unsubscribe or have them deleted at any time. Do you agree?",
        "ask_child_nickname": "What do you call your child? A nickname is enough.",
        "ask_birth_date": "When was your child born? For example: March 5 2025.",
        "ask_reminder_channel": "Where should I send the reminders: here in this chat, or by SMS (tell me the mobile number)?",
        "not_stored": "OK, nothing has been stored. Say \"remind me about vaccines\" any time.",
        "cancelled": "OK, cancelled. Nothing has been stored.",
        "bad_nickname": "Please give a nickname of 1 to 20 characters, for example \"Doudou\".",
        "confirm_date": "Which day do you mean?",
        "need_phone": "OK, by SMS: please tell me the mobile number (11 digits).",
        "bad_channel": "Sorry, I didn't get that. Say \"in this chat\", or tell me a mobile number.",
        "confirm_phone": "Reminders will go to {phone}. Is that right?",
        "subscribed": "Reminders for {nickname} are set up. They are only sent between 8 am and 9 pm; reply STOP to unsubscribe at any time.",
        "next_items": "Coming up:",
        "no_items": "Nothing is due for now.",
        "item_line": "- {name}: {date}{when}",
        "due_now": " (can be given now)",
        "overdue": " (can be caught up now: please contact the clinic soon)",
        "local_note": "Follow your local vaccination clinic for the exact arrangements.",
        "service_down": "Sorry, the reminders service is not reachable right now and nothing was stored yet. Please try again later, or say \"human\".",
        "not_subscribed": "You haven't subscribed to reminders yet. Subscribe now?",
        "subscribe_button": "Subscribe",
        "which_dose": "Which vaccine and dose was it? For example: \"had HepB dose 2\".",
        "confirm_dose": "Just to check: {nickname} has had {name}, right?",
        "no_such_dose": "I couldn't find that dose in {nickname}'s schedule. Which vaccine and dose was it?",
        "dose_recorded": "Recorded: {name} ({date}). The next reminders were recalculated.",
        "dose_not_recorded": "OK, nothing was recorded.",
        "unsubscribed": "You're unsubscribed; no more reminders will be sent.",
        "nothing_to_unsubscribe": "You have no reminders to unsubscribe from.",
        "anything_else": "All right. Is there anything else I can help with?",
        "no_activities": "There are no activities open for booking right now.",
        "choose_activity": "Activities you can book:",
        "activity_line": "{title}, {time}, {place} ({remaining} places left)",
        "booked": "Booked: {title}, {time}, {place}. I'll remind you a day and an hour before.",
        "already_booked": "You have already booked this activity.",
        "activity_full": "This activity is full; have a look at the others.",
        "activity_started": "This activity has already started.",
        "book_needs_subscription": "To book, I first need your child's details (a reminders subscription). Set it up now?",
    },
}


def today_local(now: Optional[dt.datetime] = None) -> dt.date:
    """Today's date in China."""
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(TIMEZONE).date()


def wants_to_cancel(text: str, intent: Optional[str]) -> bool:
    """The user gives up the form ("算了", "cancel", or a plain no)."""
    return intent == "deny" or bool(_CANCEL.search(text or ""))


def parse_channel(text: str) -> Dict[str, Optional[str]]:
    """Decide a reminder channel from a reply: {"channel": "chat" | "+86..." | None, "ask": key}."""
    found = _PHONE_IN_TEXT.search(text or "")
    phone = normalize_phone(found.group(0)) if found else None
    if phone:
        return {"channel": phone, "ask": None}
    if _SMS_WORD.search(text or "") and not _IN_CHAT.search(text or ""):
        return {"channel": None, "ask": "need_phone"}
    if _IN_CHAT.search(text or ""):
        return {"channel": CHAT, "ask": None}
    return {"channel": None, "ask": "bad_channel"}


def spoken_phone(phone: str) -> str:
    """138 1234 5678: easy to check by eye and by ear."""
    digits = re.sub(r"\D", "", phone)[-11:]
    return f"{digits[:3]} {digits[3:7]} {digits[7:]}"


def describe_items(items: List[Dict[str, Any]], language: str, limit: int = 3) -> str:
    """Lines for the next due items, with how urgent each one is."""
    text = T[language]
    if not items:
        return text["no_items"]
    lines = [text["next_items"]]
    for item in items[:limit]:
        when = {"due": text["due_now"], "overdue": text["overdue"]}.get(item.get("status"), "")
        lines.append(text["item_line"].format(name=item["name"], date=item.get("due_date") or "", when=when))
    lines.append(text["local_note"])
    return "\n".join(lines)


def decide_confirmation(events: List[Dict[str, Any]], slots: Dict[str, Any]) -> str:
    """What a bare yes/no answers: "dose", "service", "offer_human", "reminder" or "none"."""
    if slots.get("pending_dose"):
        return "dose"
    if slots.get("service_confirmation"):
        return "service"
    user_positions = [i for i, e in enumerate(events) if e.get("event") == "user"]
    start = user_positions[-2] + 1 if len(user_positions) >= 2 else 0
    previous_turn = events[start : user_positions[-1]] if user_positions else []
    for event in previous_turn:
        if event.get("event") == "bot" and (event.get("metadata") or {}).get("utter_action") == "utter_offer_human":
            return "offer_human"
        if event.get("event") == "action" and event.get("name") == "action_deliver_reminder":
            return "reminder"
    return "none"


def _say(dispatcher: CollectingDispatcher, tracker: Tracker, key: str, **kwargs: Any) -> None:
    dispatcher.utter_message(text=T[current_language(tracker)][key].format(**kwargs))


def _yes_no(language: str) -> List[Dict[str, str]]:
    """Yes / no buttons for a confirmation question."""
    pairs = [("是的", "/affirm"), ("不对", "/deny")] if language == "zh" else [("Yes", "/affirm"), ("No", "/deny")]
    return [{"title": title, "payload": payload} for title, payload in pairs]


def _subscribe_button(language: str) -> List[Dict[str, str]]:
    return [{"title": T[language]["subscribe_button"], "payload": "/subscribe_reminders"}]


class ValidateSubscriptionForm(FormValidationAction):
    """Checks each answer of the subscription form; consent comes first."""

    def name(self) -> Text:
        return "validate_subscription_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        # Refused or cancelled: ask nothing more; the submit action says so.
        if tracker.get_slot("consent_given") is False:
            return []
        if tracker.get_slot("reminder_channel") == CHAT:
            return [s for s in domain_slots if s != "phone_confirmed"]
        return domain_slots

    def _cancel(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str) -> Dict[Text, Any]:
        return {slot: None, "consent_given": False}

    def validate_child_nickname(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if wants_to_cancel(text, tracker.latest_message.get("intent", {}).get("name")):
            return self._cancel(dispatcher, tracker, "child_nickname")
        # "他叫豆豆" / "小名是豆豆" -> 豆豆
        text = re.sub(r"^(他|她|宝宝|孩子|娃)?(的)?(小名|名字)?(叫|是)", "", text).strip(" 。.!！")
        if not 1 <= len(text) <= 20:
            _say(dispatcher, tracker, "bad_nickname")
            return {"child_nickname": None}
        return {"child_nickname": text}

    def validate_birth_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = str(value or "")
        if wants_to_cancel(text, tracker.latest_message.get("intent", {}).get("name")):
            return self._cancel(dispatcher, tracker, "birth_date")
        language = current_language(tracker)
        result = parse_birth_date(text, today_local())
        if result.ok and result.date:
            return {"birth_date": result.date.isoformat()}
        if result.status == "ambiguous" and result.candidates:
            buttons = [{"title": c.isoformat(), "payload": c.isoformat()} for c in result.candidates]
            dispatcher.utter_message(text=result.message(language) or T[language]["confirm_date"], buttons=buttons)
        else:
            dispatcher.utter_message(text=result.message(language))
        return {"birth_date": None}

    def validate_reminder_channel(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        text = str(value or "")
        if wants_to_cancel(text, tracker.latest_message.get("intent", {}).get("name")):
            return self._cancel(dispatcher, tracker, "reminder_channel")
        decision = parse_channel(text)
        if decision["ask"]:
            _say(dispatcher, tracker, decision["ask"])
        return {"reminder_channel": decision["channel"]}

    def validate_phone_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        if value is True:
            return {"phone_confirmed": True}
        # Wrong number: ask for the channel again.
        return {"phone_confirmed": None, "reminder_channel": None}


# Buttons offered with each question of the form.
ASK_BUTTONS = {
    "consent_given": {"zh": [("同意", "/affirm"), ("不同意", "/deny")], "en": [("I agree", "/affirm"), ("No", "/deny")]},
    "reminder_channel": {"zh": [("就在这里提醒", "就在这里提醒")], "en": [("In this chat", "in this chat")]},
}


class _AskSlot(Action):
    """Asks for one slot of the subscription form, in the user's language."""

    slot = ""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        buttons = [{"title": t, "payload": p} for t, p in ASK_BUTTONS.get(self.slot, {}).get(language, [])]
        dispatcher.utter_message(text=T[language][f"ask_{self.slot}"], buttons=buttons or None)
        return []


class ActionAskConsentGiven(_AskSlot):
    slot = "consent_given"


class ActionAskChildNickname(_AskSlot):
    slot = "child_nickname"


class ActionAskBirthDate(_AskSlot):
    slot = "birth_date"


class ActionAskReminderChannel(_AskSlot):
    slot = "reminder_channel"


class ActionAskPhoneConfirmed(Action):
    """Read the number back before anything is sent to it."""

    def name(self) -> Text:
        return "action_ask_phone_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        phone = spoken_phone(tracker.get_slot("reminder_channel") or "")
        dispatcher.utter_message(text=T[language]["confirm_phone"].format(phone=phone), buttons=_yes_no(language))
        return []


def _reset_form() -> List[EventType]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


class ActionSubmitSubscription(Action):
    """Store the subscription (only with consent) and say what comes next."""

    def name(self) -> Text:
        return "action_submit_subscription"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        if tracker.get_slot("consent_given") is not True:
            key = "not_stored" if tracker.get_slot("child_nickname") is None and tracker.get_slot("birth_date") is None else "cancelled"
            _say(dispatcher, tracker, key)
            return _reset_form()
        channel = tracker.get_slot("reminder_channel")
        phone = channel if channel and channel != CHAT else None
        try:
            async with RemindersClient.from_env() as client:
                child = await client.create_child(
                    consent_by=f"chat:{tracker.sender_id}",
                    consent_version=CONSENT_TEXT_VERSION,
                    nickname=tracker.get_slot("child_nickname"),
                    birth_date=tracker.get_slot("birth_date"),
                    language=language,
                    timezone=str(TIMEZONE),
                    chat_sender_id=tracker.sender_id,
                    output_channel=tracker.get_latest_input_channel() or "latest",
                    phone=phone,
                    preferred_channel="sms" if phone else "chat",
                )
        except RemindersError:
            # Keep the answers: "订阅提醒" again re-uses them and only submits.
            _say(dispatcher, tracker, "service_down")
            return []
        nickname = child.get("nickname") or tracker.get_slot("child_nickname")
        text = T[language]["subscribed"].format(nickname=nickname)
        dispatcher.utter_message(text=text + "\n" + describe_items(child.get("upcoming") or [], language))
        return _reset_form()


async def _subscribed_children(client: RemindersClient, dispatcher: CollectingDispatcher,
                               tracker: Tracker) -> List[Dict[str, Any]]:
    """The sender's children; none (after offering to subscribe) when the sender has not subscribed."""
    found = await client.find_by_sender(tracker.sender_id)
    children = (found or {}).get("children") or []
    if not children:
        language = current_language(tracker)
        dispatcher.utter_message(text=T[language]["not_subscribed"], buttons=_subscribe_button(language))
    return children


class ActionNextDue(Action):
    """下一针什么时候打 / when is the next shot."""

    def name(self) -> Text:
        return "action_next_due"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        try:
            async with RemindersClient.from_env() as client:
                children = await _subscribed_children(client, dispatcher, tracker)
                if not children:
                    return []
                parts = []
                for child in children[:3]:
                    upcoming = await client.upcoming(child["id"], language, limit=3)
                    parts.append(f"{child['nickname']}：\n" + describe_items(upcoming.get("items") or [], language))
        except RemindersError:
            _say(dispatcher, tracker, "service_down")
            return []
        dispatcher.utter_message(text="\n\n".join(parts))
        return []


class ActionReportDose(Action):
    """已经打了乙肝第二针: find the dose, then confirm before recording."""

    def name(self) -> Text:
        return "action_report_dose"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        text = tracker.latest_message.get("text") or ""
        try:
            async with RemindersClient.from_env() as client:
                children = await _subscribed_children(client, dispatcher, tracker)
                if not children:
                    return []
                child = children[0]
                mention = find_dose_mention(text, child.get("region", "CN"))
                if mention is None:
                    # "已打" right after a reminder: the service knows which dose it was about.
                    reply = await client.handle_reply(tracker.sender_id, text)
                    dispatcher.utter_message(text=reply.get("reply_text") or T[language]["which_dose"])
                    return [SlotSet("service_confirmation", reply.get("action") == "confirmation_requested")]
                upcoming = await client.upcoming(child["id"], language, include_all=True)
        except RemindersError:
            _say(dispatcher, tracker, "service_down")
            return []
        item = _pick_item(upcoming.get("items") or [], mention.series, mention.dose)
        if item is None:
            _say(dispatcher, tracker, "no_such_dose", nickname=child["nickname"])
            return []
        dispatcher.utter_message(
            text=T[language]["confirm_dose"].format(nickname=child["nickname"], name=item["name"]),
            buttons=_yes_no(language),
        )
        return [SlotSet("pending_dose", f"{child['id']}|{item['item_id']}|{item['name']}")]


def _pick_item(items: List[Dict[str, Any]], series: str, dose: Optional[int]) -> Optional[Dict[str, Any]]:
    """The schedule item a mention means: that dose, or the series' next one not given."""
    in_series = [i for i in items if i.get("series") == series]
    if dose is not None:
        return next((i for i in in_series if i.get("dose") == dose), None)
    return next((i for i in in_series if i.get("status") not in ("given", "presumed_given", "dropped")), None)


class ActionResolveConfirmation(Action):
    """A bare yes / no: answers whatever the bot asked last."""

    def name(self) -> Text:
        return "action_resolve_confirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        yes = tracker.latest_message.get("intent", {}).get("name") == "affirm"
        context = decide_confirmation(tracker.events, tracker.current_slot_values())
        try:
            async with RemindersClient.from_env() as client:
                if context == "dose":
                    child_id, item_id, name = (tracker.get_slot("pending_dose") or "||").split("|", 2)
                    if yes:
                        result = await client.record_dose(child_id, item_id=item_id)
                        given_on = result.get("given_on") or today_local().isoformat()
                        _say(dispatcher, tracker, "dose_recorded", name=name, date=given_on)
                    else:
                        _say(dispatcher, tracker, "dose_not_recorded")
                    return [SlotSet("pending_dose", None)]
                if context in ("service", "reminder"):
                    said = tracker.latest_message.get("text") or ("是" if yes else "否")
                    reply = await client.handle_reply(tracker.sender_id, said)
                    dispatcher.utter_message(text=reply.get("reply_text") or T[language]["anything_else"])
                    return [SlotSet("service_confirmation", reply.get("action") == "confirmation_requested")]
        except RemindersError:
            _say(dispatcher, tracker, "service_down")
            return []
        if context == "offer_human" and yes:
            return [FollowupAction("action_handoff")]
        _say(dispatcher, tracker, "anything_else")
        return []


class ActionUnsubscribe(Action):
    """退订 / TD / STOP: stop every reminder for this caregiver at once."""

    def name(self) -> Text:
        return "action_unsubscribe"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        try:
            async with RemindersClient.from_env() as client:
                await client.opt_out(sender_id=tracker.sender_id)
        except RemindersError as error:
            _say(dispatcher, tracker, "nothing_to_unsubscribe" if error.status == 404 else "service_down")
            return []
        _say(dispatcher, tracker, "unsubscribed")
        return []


def _activity_time(starts_at: str, language: str) -> str:
    try:
        when = dt.datetime.fromisoformat(starts_at.replace("Z", "+00:00")).astimezone(TIMEZONE)
    except ValueError:
        return starts_at
    if language == "zh":
        return f"{when.month}月{when.day}日 {when.hour}:{when.minute:02d}"
    return when.strftime("%b %d, %H:%M")


def _activity_buttons(activities: List[Dict[str, Any]], language: str) -> List[Dict[str, str]]:
    """One button per open activity (at most five), carrying its id."""
    return [
        {
            "title": T[language]["activity_line"].format(
                title=a["title"], time=_activity_time(a["starts_at"], language),
                place=a["place"], remaining=a.get("remaining", 0),
            ),
            "payload": f'/book_activity{{"activity_id": "{a["id"]}"}}',
        }
        for a in activities[:5]
    ]


class ActionBookActivity(Action):
    """List open activities; book the one chosen (button payload carries its id)."""

    def name(self) -> Text:
        return "action_book_activity"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        language = current_language(tracker)
        text = T[language]
        activity_id = next(tracker.get_latest_entity_values("activity_id"), None)
        try:
            async with RemindersClient.from_env() as client:
                activities = [
                    a for a in await client.list_activities() if a.get("remaining", 0) > 0 or a.get("id") == activity_id
                ]
                if not activities:
                    dispatcher.utter_message(text=text["no_activities"])
                    return []
                chosen = next((a for a in activities if a.get("id") == activity_id), None)
                if chosen is None:
                    dispatcher.utter_message(text=text["choose_activity"], buttons=_activity_buttons(activities, language))
                    return []
                found = await client.find_by_sender(tracker.sender_id)
                if not found or not found.get("caregivers"):
                    dispatcher.utter_message(text=text["book_needs_subscription"], buttons=_subscribe_button(language))
                    return []
                children = found.get("children") or []
                await client.book_activity(chosen["id"], found["caregivers"][0]["id"], children[0]["id"] if children else None)
                outcome = "booked"
        except RemindersError as error:
            if error.status == 409 and error.code in BOOKING_CONFLICTS:
                outcome = error.code
            else:
                _say(dispatcher, tracker, "service_down")
                return []
        if outcome in BOOKING_CONFLICTS:
            dispatcher.utter_message(text=text[outcome])
            return []
        dispatcher.utter_message(
            text=text["booked"].format(
                title=chosen["title"], time=_activity_time(chosen["starts_at"], language), place=chosen["place"]
            )
        )
        return []
