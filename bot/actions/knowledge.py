"""action_answer_question: answer a childcare question from the knowledge base.

Calls the knowledge-base service (``KB_URL``, default http://127.0.0.1:8001,
``POST /search``, 5 s timeout) with the user's message in the conversation's
language and acts on its decision:

* ``answer``: the chat answer, then the source line (in voice mode the short
  voice answer with the source said briefly); resets ``low_confidence_count``
  and sets ``last_topic``;
* ``clarify``: "您是问A，还是B？" with one button per topic;
* ``out_of_scope``: a polite decline with the hotline offer; the second time in
  a row the ``utter_offer_human`` response instead, and the counter resets;
* ``urgent``: what to do now (emergency number + first step), then
  ``action_handoff``.

Red flags are also checked locally (same rules, ``knowledge_base.red_flags``)
before calling the service, so emergencies are answered even when it is down.
If the service cannot be reached the user gets an apology with the hotline
offer, never an error. Bot messages carry ``decision`` in their metadata so
``action_handoff`` can tell why a conversation was handed over.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import aiohttp
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language
from knowledge_base.red_flags import triage

logger = logging.getLogger(__name__)

MESSAGES_FILE = Path(__file__).with_name("knowledge_messages.yaml")
MESSAGES: Dict[str, Dict[str, str]] = yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8"))
DEFAULT_KB_URL = "http://127.0.0.1:8001"
TIMEOUT_SECONDS = 5.0
LOW_CONFIDENCE_LIMIT = 2
OFFER_HUMAN_RESPONSE = "utter_offer_human"
HANDOFF_ACTION = "action_handoff"


def kb_url() -> str:
    return os.environ.get("KB_URL", DEFAULT_KB_URL).rstrip("/")


def message(key: str, language: str, **values: str) -> str:
    """A user-facing string from knowledge_messages.yaml in ``language``."""
    return MESSAGES[key][language].format(**values)


def format_source_line(sources: List[Dict[str, str]], language: str) -> str:
    """zh ``来源：机构《文件》版本``; en ``Source: Organisation, Document, edition`` (several joined)."""
    parts = []
    for s in sources:
        org, doc, edition = s.get("organisation", ""), s.get("document", ""), s.get("edition", "")
        if language == "zh":
            parts.append(f"{org}《{doc}》{edition}")
        else:
            parts.append(", ".join(p for p in (org, doc, edition) if p))
    return message("source_prefix", language) + message("source_separator", language).join(parts)


async def search_kb(query: str, language: str, top_k: int = 3, url: Optional[str] = None,
                    timeout: float = TIMEOUT_SECONDS) -> Optional[Dict[str, Any]]:
    """The service's answer, or None when it cannot be reached or answers badly."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(f"{url or kb_url()}/search",
                                    json={"query": query, "language": language, "top_k": top_k}) as resp:
                if resp.status != 200:
                    logger.warning("knowledge base answered HTTP %s", resp.status)
                    return None
                data = await resp.json()
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        logger.warning("knowledge base unreachable: %s", exc)
        return None
    if not isinstance(data, dict) or data.get("decision") not in ("answer", "clarify", "out_of_scope", "urgent"):
        return None
    return data


def _count(tracker: Tracker) -> int:
    try:
        return int(float(tracker.get_slot("low_confidence_count") or 0))
    except (TypeError, ValueError):
        return 0


class ActionAnswerQuestion(Action):
    """Answer from vetted guidance, with its source, in the user's language."""

    def name(self) -> Text:
        return "action_answer_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        language = current_language(tracker)
        voice = bool(tracker.get_slot("voice_mode"))
        text = (tracker.latest_message or {}).get("text") or ""
        if not text.strip() or text.startswith("/"):
            dispatcher.utter_message(text=message("empty", language))
            return []
        # Red flags are checked here by rule too, so an emergency gets its
        # advice even when the knowledge-base service is down.
        local_urgent = triage(text, language)
        if local_urgent is not None:
            dispatcher.utter_message(text=local_urgent["message"], decision="urgent")
            return [FollowupAction(HANDOFF_ACTION)]
        result = await search_kb(text.strip()[:2000], language)
        if result is None:
            dispatcher.utter_message(text=message("unavailable", language), decision="unavailable")
            return []
        decision = result["decision"]
        if decision == "urgent":
            urgent = result.get("urgent") or {}
            dispatcher.utter_message(text=urgent.get("message") or message("unavailable", language), decision="urgent")
            return [FollowupAction(HANDOFF_ACTION)]
        hits = result.get("hits") or []
        if decision == "clarify" and len(result.get("clarify") or []) >= 2:
            first, second = result["clarify"][:2]
            dispatcher.utter_message(
                text=message("clarify", language, first=first, second=second),
                buttons=[{"title": t, "payload": t} for t in (first, second)],
                decision="clarify",
            )
            return []
        if decision == "answer" and hits:
            return self._answer(dispatcher, hits[0], language, voice)
        return self._decline(dispatcher, tracker, language)

    @staticmethod
    def _answer(dispatcher: CollectingDispatcher, hit: Dict[str, Any], language: str, voice: bool) -> List[Dict]:
        sources = hit.get("sources") or []
        if voice:
            said = hit.get("voice_answer") or hit.get("answer", "")
            if sources:
                said = f"{said} {message('voice_source', language, organisation=sources[0].get('organisation', ''))}"
            dispatcher.utter_message(text=said.strip(), decision="answer", entry_id=hit.get("entry_id"))
        else:
            dispatcher.utter_message(text=hit.get("answer", ""), decision="answer", entry_id=hit.get("entry_id"))
            if sources:
                dispatcher.utter_message(text=format_source_line(sources, language), decision="answer")
        return [SlotSet("low_confidence_count", 0), SlotSet("last_topic", hit.get("topic"))]

    @staticmethod
    def _decline(dispatcher: CollectingDispatcher, tracker: Tracker, language: str) -> List[Dict]:
        count = _count(tracker) + 1
        if count >= LOW_CONFIDENCE_LIMIT:
            dispatcher.utter_message(text=message("out_of_scope_again", language), decision="out_of_scope")
            dispatcher.utter_message(response=OFFER_HUMAN_RESPONSE)
            return [SlotSet("low_confidence_count", 0)]
        dispatcher.utter_message(text=message("out_of_scope", language), decision="out_of_scope")
        return [SlotSet("low_confidence_count", count)]
