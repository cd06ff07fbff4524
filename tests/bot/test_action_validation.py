"""The Rasa server's faster action-response check gives Rasa's own verdicts."""
import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import bot.channels  # noqa: F401  (installs the check, as the Rasa server's import does)
from bot.action_validation import validate_action_result

SAMPLES = [
    {"events": [{"event": "slot", "name": "language", "value": "zh"}], "responses": [{"text": "你好"}]},
    {"events": [], "responses": []},
    {},
    {"events": "not a list"},
    {"events": [{"name": "no event key"}]},
    {"responses": [{"text": 5}]},
    {"events": [{"event": "pause"}], "responses": [{"buttons": [{"title": "1", "payload": "/x"}]}]},
]


def test_installed_when_rasa_imports_the_channels():
    assert RemoteAction._validate_action_result is validate_action_result


@pytest.mark.parametrize("result", SAMPLES)
def test_same_verdict_as_jsonschema_validate(result):
    action = RemoteAction("action_x", None)
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        expected = None
    except jsonschema.ValidationError as error:
        expected = error.message
    if expected is None:
        assert action._validate_action_result(result) is True
    else:
        with pytest.raises(jsonschema.ValidationError) as caught:
            action._validate_action_result(result)
        assert caught.value.message.startswith(expected)
        assert "Failed to validate Action server response" in caught.value.message
