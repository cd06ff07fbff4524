"""The voice connectors inside a real Rasa server (trained model, action server),
started by the launcher's Supervisor on free ports with a credentials file
that adds them: a signed Twilio call and a signed gateway turn get real
answers from the bot, rendered for the ear, and "再说一遍" / "慢一点" act on
the real tracker (intent repeat, slot speech_rate)."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Dict, Iterator, Tuple

import pytest

from bot.channels.twilio_voice import twilio_signature
from bot.voice.speakable import CONTINUE_PROMPT, voice_problems

TWILIO_TOKEN = "twilio-e2e-token"
GATEWAY_SECRET = "gateway-e2e-secret"
@pytest.fixture(scope="module")
def voice_rasa(tmp_path_factory) -> Iterator[str]:
    from launcher.model import latest_model
    from launcher.processes import Ports, base_environment, stack
    from launcher.supervisor import Supervisor

    model = latest_model()
    if model is None:
        pytest.fail("No trained model for the current inputs: run `make train` (make test does).")
    var_dir = tmp_path_factory.mktemp("voice_var")
    # The voice channels are in bot/credentials.yml: the test runs what users run.
    ports = Ports.free()
    secrets = {"RASA_AUTH_TOKEN": "test-token", "REMINDERS_API_TOKEN": "test-reminders-token"}
    specs = []
    for spec in stack(model, ports, secrets, var_dir):
        if spec.name in ("rasa", "actions"):
            specs.append(spec)
    env = {**base_environment(ports, secrets, var_dir), "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
           "VOICE_GATEWAY_SECRET": GATEWAY_SECRET}
    with Supervisor(specs, env, var_dir / "log"):
        yield f"http://127.0.0.1:{ports.rasa}"


def twilio(base: str, caller: str, **fields: str) -> Tuple[int, str]:
    url = f"{base}/webhooks/twilio_voice/webhook"
    params: Dict[str, str] = {"CallSid": "CA" + caller[-8:] * 4, "From": caller, "To": "+12025550100",
                              "AccountSid": "AC" + "9" * 32, "CallStatus": "in-progress", **fields}
    request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), method="POST")
    request.add_header("X-Twilio-Signature", twilio_signature(url, params.items(), TWILIO_TOKEN))
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def said(twiml: str) -> Tuple[str, ET.Element]:
    root = ET.fromstring(twiml)
    return "".join(root.find(".//Say").itertext()), root


def test_phone_call_through_real_rasa(voice_rasa):
    caller = "+8613911112222"
    status, greeting = twilio(voice_rasa, caller, CallStatus="ringing")
    assert status == 200 and "按0" in said(greeting)[0]

    # "你好" -> utter_greet, which is long: the first turn ends with the continue question.
    status, twiml = twilio(voice_rasa, caller, SpeechResult="你好", Confidence="0.9")
    first, root = said(twiml)
    assert status == 200 and root.find("Gather").get("language") == "zh-CN"
    assert "育儿" in first and first.endswith(CONTINUE_PROMPT["zh"])
    assert voice_problems(first, "zh", CONTINUE_PROMPT["zh"]) == []
    assert "（" not in first and "http" not in first

    # Key 1 goes on; "再说一遍" (intent repeat on the real tracker) replays the turn last heard.
    _, twiml = twilio(voice_rasa, caller, Digits="1")
    second, _ = said(twiml)
    prompt = CONTINUE_PROMPT["zh"] if second.endswith(CONTINUE_PROMPT["zh"]) else ""
    assert second != first and voice_problems(second, "zh", prompt) == []
    _, twiml = twilio(voice_rasa, caller, SpeechResult="再说一遍")
    assert said(twiml)[0] == second

    # "慢一点": action_slower sets speech_rate=slow in the tracker; later turns are slow.
    _, twiml = twilio(voice_rasa, caller, SpeechResult="你说慢一点")
    assert said(twiml)[1].find(".//prosody").get("rate") == "70%"
    _, twiml = twilio(voice_rasa, caller, SpeechResult="谢谢")
    text, root = said(twiml)
    assert root.find(".//prosody").get("rate") == "70%" and voice_problems(text, "zh") == []

    # Unsigned requests never reach the bot.
    url = f"{voice_rasa}/webhooks/twilio_voice/webhook"
    bad = urllib.request.Request(url, data=b"CallSid=CA1&From=%2B861&SpeechResult=hi", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=30)
    assert error.value.code == 403


def test_gateway_turn_through_real_rasa(voice_rasa):
    body = json.dumps({"session_id": "spk-e2e", "text": "hello"}).encode()
    request = urllib.request.Request(f"{voice_rasa}/webhooks/voice_gateway/webhook", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("X-Signature", "sha256=" + hmac.new(GATEWAY_SECRET.encode(), body, hashlib.sha256).hexdigest())
    with urllib.request.urlopen(request, timeout=60) as resp:
        reply = json.load(resp)
    assert reply["language"] == "en-US" and reply["ssml"].startswith('<speak xml:lang="en-US">')
    assert len(reply["text"].split()) <= 35 and not re.search(r"[()\"]", reply["text"])
    prompt = CONTINUE_PROMPT["en"] if reply["has_more"] else ""
    assert voice_problems(reply["text"], "en", prompt) == []
