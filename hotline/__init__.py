"""Hotline handoff service and staff console (issue #6).

- an internal API for the action server (`POST /api/tickets`, bearer token),
- the staff console (login, queue with live updates, claim, transcript,
  reply, notes, resolve, supervisor dashboard, audit log),
- the bridge to Rasa (tracker API, pause/resume) and to the SMS gateway.

Run it with `python -m hotline serve --port 8003`.
"""
