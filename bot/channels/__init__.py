"""Channel connectors of the Rasa server (named in bot/credentials.yml).

Rasa imports this package in every server process, so the server-side
speed-up of action response checks is installed here.
"""
from bot import action_validation

action_validation.install()
