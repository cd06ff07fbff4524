"""Phone calls through Twilio Voice webhooks, in Mandarin (and English).

Rasa's own `twilio_voice` connector has no recognition language, no
Chinese voice, no SSML and does not check Twilio's signature. This one:

- answers every webhook with TwiML: `<Gather input="speech dtmf"
  language="zh-CN">` around a `<Say language="cmn-CN" voice="Polly.Zhiyu">`
  whose text is wrapped in SSML `<prosody rate>` (slower after 慢一点 / key 8);
- verifies `X-Twilio-Signature` (base64 HMAC-SHA1, with TWILIO_AUTH_TOKEN,
  over the full URL followed by the POST parameters sorted by name, each
  name immediately followed by its value) and answers 403 otherwise;
- accepts keys at every menu (0 hotline, 9 repeat, 8 slower, 1.. choices
  and "go on"), and says every reply the voice way (bot.voice).

Webhook: `POST /webhooks/twilio_voice/webhook` (set it as the number's
"A call comes in" URL). Behind a proxy set `public_url` to the URL Twilio
calls, because the signature covers it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Text, Tuple
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.voice_common import OnNewMessage, ask_bot, slots_reader
from bot.channels.webhook import webhook_blueprint
from reminders.phones import mask_phone
from bot.voice.dialog import Reply, VoiceDialog
from bot.voice.ssml import RATES, ssml_body

logger = logging.getLogger(__name__)

# Twilio <Gather> recognition languages and <Say> voices per conversation language.
DEFAULTS: Dict[str, Any] = {
    "gather_language": {"zh": "zh-CN", "en": "en-US"},
    "say_language": {"zh": "cmn-CN", "en": "en-US"},
    "voice": {"zh": "Polly.Zhiyu", "en": "Polly.Joanna"},
    "rates": dict(RATES),
    "speech_timeout": "auto",
    "timeout": 6,
    # Words the recogniser should expect (Twilio `hints`).
    "hints": "疫苗,黄疸,麻腮风,百白破,卡介苗,手足口,湿疹,辅食,发烧,转人工,再说一遍,慢一点",
}


def twilio_signature(url: str, params: Iterable[Tuple[str, str]], auth_token: str) -> str:
    """The X-Twilio-Signature Twilio sends for a POST to `url` with form `params`.

    base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...)),
    parameters sorted by name (then value).
    """
    payload = url + "".join(f"{k}{v}" for k, v in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def form_pairs(form: Mapping[str, Any]) -> list:
    """(name, value) pairs of a parsed form, every value of repeated names."""
    pairs = []
    for key in form:
        values = form.getlist(key) if hasattr(form, "getlist") else form[key]
        if isinstance(values, str):
            values = [values]
        pairs.extend((key, v) for v in values)
    return pairs


def verify_twilio_signature(url: str, params: Iterable[Tuple[str, str]], header: Optional[str],
                            auth_token: Optional[str]) -> bool:
    """Constant-time check of X-Twilio-Signature; False without a token or header."""
    if not auth_token or not header:
        return False
    expected = twilio_signature(url, params, auth_token)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def twiml(reply: Reply, action_url: str, settings: Mapping[str, Any]) -> str:
    """The TwiML document for one reply: Say inside Gather, then a no-input redirect."""
    lang = reply.language if reply.language in ("zh", "en") else "zh"
    say = (
        f"<Say language={quoteattr(settings['say_language'][lang])} voice={quoteattr(settings['voice'][lang])}>"
        f"{ssml_body(reply.text, reply.speech_rate, settings['rates'])}</Say>"
    )
    if reply.end:
        return f'<?xml version="1.0" encoding="UTF-8"?><Response>{say}<Hangup/></Response>'
    gather = (
        f'<Gather input="speech dtmf" language={quoteattr(settings["gather_language"][lang])}'
        f" action={quoteattr(action_url)} method=\"POST\" numDigits=\"1\""
        f" speechTimeout={quoteattr(str(settings['speech_timeout']))} timeout=\"{int(settings['timeout'])}\""
        f" hints={quoteattr(settings['hints'])}>{say}</Gather>"
    )
    no_input = f'<Redirect method="POST">{escape(action_url + "?noinput=1")}</Redirect>'
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{gather}{no_input}</Response>'


class TwilioVoiceInput(InputChannel):
    """Twilio Voice webhooks with signature check, Mandarin speech and keypad menus."""

    def __init__(self, auth_token: Optional[str], public_url: Optional[str] = None,
                 settings: Optional[Dict[str, Any]] = None) -> None:
        self.auth_token = auth_token
        self.public_url = public_url.rstrip("/") if public_url else None
        self.settings = {**DEFAULTS, **(settings or {})}
        self.dialog = VoiceDialog(medium="voice")
        if not auth_token:
            logger.warning("TWILIO_AUTH_TOKEN is not set: the twilio_voice webhook refuses every call (403).")

    @classmethod
    def name(cls) -> Text:
        return "twilio_voice"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TwilioVoiceInput":
        credentials = credentials or {}
        token = os.environ.get("TWILIO_AUTH_TOKEN") or credentials.get("auth_token")
        public_url = os.environ.get("TWILIO_VOICE_PUBLIC_URL") or credentials.get("public_url")
        settings = {k: credentials[k] for k in DEFAULTS if k in credentials}
        return cls(token, public_url, settings)

    def _signed_url(self, request: Request) -> str:
        """The URL Twilio signed: the public URL when configured, else the request's own."""
        if not self.public_url:
            return request.url
        parts = urlsplit(request.url)
        return self.public_url + (f"?{parts.query}" if parts.query else "")

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = webhook_blueprint(self)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            params = form_pairs(request.form)
            if not verify_twilio_signature(self._signed_url(request), params,
                                           request.headers.get("X-Twilio-Signature"), self.auth_token):
                logger.warning("twilio_voice: refused a request with a missing or bad signature")
                return response.text("invalid signature", status=403)
            form = request.form
            call_sid = form.get("CallSid") or ""
            caller = form.get("From") or ""
            sender = caller if caller.startswith("+") or caller.isdigit() else call_sid
            if not sender:
                return response.text("missing CallSid", status=400)
            action_url = request.path
            if form.get("CallStatus") in ("completed", "canceled", "failed", "busy", "no-answer"):
                self.dialog.forget(sender)
                return response.text("", content_type="text/xml")
            speech = (form.get("SpeechResult") or "").strip()
            digits = (form.get("Digits") or "").strip()
            first = not speech and not digits and request.args.get("noinput") is None
            if first:
                reply = self.dialog.greeting(sender)
                logger.info("twilio_voice: call from %s", mask_phone(caller))
            else:
                async def ask(text: str):
                    return await ask_bot(on_new_message, text, sender, self.name(),
                                         {"call_sid": call_sid, "confidence": form.get("Confidence")})

                reply = await self.dialog.respond(sender, speech, digits, ask, slots_reader(request, sender))
            return response.text(twiml(reply, action_url, self.settings), content_type="text/xml")

        return webhook
