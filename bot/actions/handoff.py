"""Handing a conversation to the hotline (issue #6).

action_handoff opens a ticket through the hotline service (`POST
{HOTLINE_URL}/api/tickets`, bearer HOTLINE_API_TOKEN) with who, channel,
language, urgency, trigger, the child's age if known and a summary of the
last questions and answers; tells the user, in their language, the expected
wait, the hotline number and 120 for emergencies; and pauses the bot
(ConversationPaused) until staff resolve the ticket. If the hotline service
cannot be reached it does not pause: it tells the user to call the hotline.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from typing import Any, Dict, List, Optional, Text, Tuple

import aiohttp
from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language

logger = logging.getLogger(__name__)

HANDOFF_MESSAGES = {
    "zh": "好的，已为您转接热线工作人员，预计等待约{wait}分钟，工作人员会在这里直接回复您。"
          "如果情况紧急，请立即拨打120；也可以拨打热线电话{hotline}。",
    "en": "OK, I've passed your conversation to a hotline worker, who will reply here. Expected wait: about "
          "{wait} min. In an emergency call 120 (in China) or your local emergency number now; "
          "you can also call the hotline on {hotline}.",
}
URGENT_HANDOFF_MESSAGES = {
    "zh": "我已同时通知热线工作人员，预计约{wait}分钟内在这里联系您。如果情况危急，不要等待，请马上拨打120。热线电话：{hotline}。",
    "en": "I've also alerted a hotline worker, who will contact you here in about {wait} min. If it is serious, "
          "don't wait: call 120 (in China) or your local emergency number now. Hotline: {hotline}.",
}
UNAVAILABLE_MESSAGES = {
    "zh": "抱歉，热线工作台暂时连不上。请直接拨打热线电话{hotline}；如果情况紧急，请立即拨打120。",
    "en": "Sorry, I can't reach the hotline desk right now. Please call the hotline on {hotline}; "
          "in an emergency call 120 (in China) or your local emergency number now.",
}

KB_ACTION = "action_answer_question"
OFFER_RESPONSE = "utter_offer_human"
OUT_OF_SCOPE_RESPONSE = "utter_out_of_scope"
OUT_OF_SCOPE_ACTION = "action_out_of_scope"
_AGE_SLOTS = ("child_age_months", "child_age", "baby_age_months")
_BIRTH_SLOTS = ("child_birth_date", "child_birthdate", "birth_date")
_PHONE = re.compile(r"^\+?\d{7,15}$")
SUMMARY_TURNS = 3


def hotline_number() -> str:
    """The hotline phone number shown to users (HOTLINE_NUMBER, default 12320)."""
    return os.environ.get("HOTLINE_NUMBER", "12320")


def hotline_url() -> str:
    return os.environ.get("HOTLINE_URL", "http://127.0.0.1:8003").rstrip("/")


def _turns(events: List[Dict[str, Any]]) -> List[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
    """(user event, events after it until the next user event), oldest first."""
    turns: List[Tuple[Dict[str, Any], List[Dict[str, Any]]]] = []
    for event in events:
        if event.get("event") == "user":
            turns.append((event, []))
        elif turns:
            turns[-1][1].append(event)
    return turns


def _intent(user_event: Dict[str, Any]) -> Optional[str]:
    return ((user_event.get("parse_data") or {}).get("intent") or {}).get("name")


def _said(events: List[Dict[str, Any]], response: str) -> bool:
    """Did these events include the bot response (as an action or inside one)?"""
    for event in events:
        if event.get("event") == "action" and event.get("name") == response:
            return True
        if event.get("event") == "bot" and (event.get("metadata") or {}).get("utter_action") == response:
            return True
    return False


def _ran(events: List[Dict[str, Any]], action_name: str) -> bool:
    return any(e.get("event") == "action" and e.get("name") == action_name for e in events)


def _decided(events: List[Dict[str, Any]], decision: str) -> bool:
    """A bot message of the knowledge-base action flagged with this decision
    (in its metadata or custom payload), if the action flags them."""
    for event in events:
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        for source in (event.get("metadata") or {}, data.get("custom") or {}):
            if isinstance(source, dict) and decision in (source.get("decision"), source.get("kb_decision")):
                return True
    return False


def detect_trigger(events: List[Dict[str, Any]]) -> Tuple[str, str]:
    """Why the conversation is handed over, and how urgent it is.

    - `urgent`: the knowledge-base action ran in this very turn and handed
      over (it does so with FollowupAction after urgent advice);
    - `low_confidence`: the user accepted the bot's offer of a human
      (utter_offer_human, said after two low-confidence answers);
    - `out_of_scope_insist`: the bot declined an out-of-scope message and the
      user insists (asks again, so action_out_of_scope hands over, or asks
      for a person right after the decline);
    - `request`: the user asked for a person (转人工, human, keypad 0).
    """
    turns = _turns(events)
    if not turns:
        return "request", "normal"
    latest, this_turn = turns[-1]
    if _ran(this_turn, OUT_OF_SCOPE_ACTION):
        return "out_of_scope_insist", "normal"
    if _ran(this_turn, KB_ACTION):
        if _decided(this_turn, "urgent"):
            return "urgent", "urgent"
        if _said(this_turn, OFFER_RESPONSE) or _decided(this_turn, "low_confidence"):
            return "low_confidence", "normal"
        if _decided(this_turn, "out_of_scope"):
            return "out_of_scope_insist", "normal"
        return "urgent", "urgent"
    previous_user, previous_turn = turns[-2] if len(turns) >= 2 else ({}, [])
    if _said(previous_turn, OFFER_RESPONSE):
        return "low_confidence", "normal"
    declined_before = (
        _ran(previous_turn, OUT_OF_SCOPE_ACTION)
        or _said(previous_turn, OUT_OF_SCOPE_RESPONSE)
        or _intent(previous_user) == "out_of_scope"
        or _decided(previous_turn, "out_of_scope")
    )
    if _intent(latest) == "out_of_scope" or declined_before:
        return "out_of_scope_insist", "normal"
    return "request", "normal"


def summarize(events: List[Dict[str, Any]], turns: int = SUMMARY_TURNS) -> List[Dict[str, str]]:
    """The last user questions (not commands like 转人工) and what the bot answered."""
    summary = []
    for user, after in _turns(events):
        text = (user.get("text") or "").strip()
        if not text or text.startswith("/") or _intent(user) in ("request_human", "affirm", "deny"):
            continue
        answer = " ".join((e.get("text") or "") for e in after if e.get("event") == "bot").strip()
        summary.append({"question": text[:300], "answer": answer[:300]})
    return summary[-turns:]


def child_age_months(slots: Dict[str, Any], today: Optional[dt.date] = None) -> Optional[float]:
    """The child's age in months from an age or birth-date slot, if any."""
    for name in _AGE_SLOTS:
        value = slots.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 216:
            return float(value)
    today = today or dt.date.today()
    for name in _BIRTH_SLOTS:
        value = slots.get(name)
        if isinstance(value, str):
            try:
                born = dt.date.fromisoformat(value[:10])
            except ValueError:
                continue
            months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
            if 0 <= months <= 216:
                return float(months)
    return None


def caller_phone(sender_id: str, channel: Optional[str], metadata: Dict[str, Any]) -> Optional[str]:
    """The user's phone number: from message metadata, or the sender id of a
    phone channel (SMS, voice)."""
    for key in ("phone", "from", "caller", "From"):
        value = metadata.get(key)
        if isinstance(value, str) and _PHONE.match(re.sub(r"[\s\-]", "", value)):
            return re.sub(r"[\s\-]", "", value)
    if channel and any(word in channel for word in ("sms", "voice", "twilio", "phone")):
        candidate = re.sub(r"[\s\-]", "", sender_id)
        if _PHONE.match(candidate):
            return candidate
    return None


def ticket_request(tracker: Tracker) -> Dict[str, Any]:
    """The body of `POST /api/tickets` for this conversation."""
    trigger, urgency = detect_trigger(tracker.events)
    channel = tracker.get_latest_input_channel() or "unknown"
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return {
        "sender_id": tracker.sender_id,
        "channel": channel,
        "language": current_language(tracker),
        "urgency": urgency,
        "trigger": trigger,
        "child_age_months": child_age_months(tracker.slots or {}),
        "phone": caller_phone(tracker.sender_id, channel, metadata),
        "summary": summarize(tracker.events),
    }


async def open_ticket(body: Dict[str, Any], timeout: float = 5.0) -> Optional[Dict[str, Any]]:
    """POST the ticket; None if the hotline service is unreachable or refuses."""
    headers = {"Authorization": f"Bearer {os.environ.get('HOTLINE_API_TOKEN', '')}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(f"{hotline_url()}/api/tickets", json=body, headers=headers) as response:
                if response.status not in (200, 201):
                    logger.error("hotline refused the ticket: %s %s", response.status, (await response.text())[:200])
                    return None
                return await response.json()
    except (aiohttp.ClientError, OSError, ValueError) as error:
        logger.error("hotline unreachable: %s", error)
        return None
    except Exception:  # noqa: BLE001 - a timeout or anything else: never break the conversation
        logger.exception("hotline call failed")
        return None


class ActionHandoff(Action):
    """Open a hotline ticket, tell the user, pause the bot."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        language = current_language(tracker)
        body = ticket_request(tracker)
        ticket = await open_ticket(body)
        if ticket is None:
            dispatcher.utter_message(text=UNAVAILABLE_MESSAGES[language].format(hotline=hotline_number()))
            return []
        messages = URGENT_HANDOFF_MESSAGES if body["trigger"] == "urgent" else HANDOFF_MESSAGES
        dispatcher.utter_message(
            text=messages[language].format(
                wait=ticket.get("expected_wait_minutes", 5),
                hotline=hotline_number(),
            )
        )
        return [SlotSet("handoff_ticket_id", str(ticket["ticket_id"])), ConversationPaused()]
