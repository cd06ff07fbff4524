import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.voice import ActionVoiceMode, voice_mode_from


def tracker(metadata=None, channel="rest", voice_mode=False):
    events = [{"event": "user", "text": "你好", "input_channel": channel, "metadata": metadata or {}}]
    return Tracker(
        sender_id="u1", slots={"voice_mode": voice_mode},
        latest_message={"text": "你好", "intent": {"name": "greet"}, "metadata": metadata or {}},
        events=events, paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )


def run(t):
    return asyncio.run(ActionVoiceMode().run(CollectingDispatcher(), t, {}))


def test_metadata_switches_voice_mode_on_and_off():
    assert run(tracker({"voice_mode": True})) == [{"event": "slot", "timestamp": None, "name": "voice_mode", "value": True}]
    assert run(tracker({"voice_mode": False}, voice_mode=True))[0]["value"] is False
    assert run(tracker({"voice_mode": True}, voice_mode=True)) == []


def test_voice_channels_are_voice_mode_and_others_unchanged():
    assert run(tracker({}, channel="twilio_voice"))[0]["value"] is True
    assert run(tracker({}, channel="rest")) == []
    assert voice_mode_from({"voice_mode": "yes"}, "webchat") is None
