"""The blueprint every connector starts from (Rasa's naming), with the
`GET /webhooks/<channel>/` health route each one answers."""
from __future__ import annotations

import inspect

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse


def webhook_blueprint(channel: InputChannel) -> Blueprint:
    """A blueprint named after the connector's class, answering GET / with ok."""
    module = inspect.getmodule(channel)
    blueprint = Blueprint(f"custom_webhook_{type(channel).__name__}", module.__name__ if module else None)

    @blueprint.route("/", methods=["GET"])
    async def health(request: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return blueprint
