"""A faster check of action server responses inside the Rasa server.

Rasa 3.6's `RemoteAction._validate_action_result` calls `jsonschema.validate`
on every custom action call, which first checks the (constant) schema
against the draft 2020-12 meta-schema: over half of a Rasa server's CPU time
per chat turn went there (py-spy, docs/benchmarks/scale_out_chat.md). This
builds the validator once and checks each response with it: the same schema,
the same errors. Installed when Rasa imports our channel connectors.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict

from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def response_validator():
    """The validator of Rasa's action response schema, its schema checked once."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    """Drop-in for RemoteAction._validate_action_result (same message on failure)."""
    try:
        response_validator().validate(result)
        return True
    except ValidationError as e:
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


def install() -> None:
    """Replace Rasa's per-call schema check (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result
