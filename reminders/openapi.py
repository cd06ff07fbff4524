"""OpenAPI 3 document of the reminders API (served at ``/openapi.json``)."""
from __future__ import annotations

from typing import Any, Dict, Tuple

ERR = {"$ref": "#/components/responses/Error"}
HHMM = "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"


def _text(max_len: int, *, required: bool = False, **extra: Any) -> Dict[str, Any]:
    """A string field as reminders.api._str checks it: required ones must not be empty; all are length-capped."""
    return {"type": "string", **({"minLength": 1} if required else {}), "maxLength": max_len, **extra}


def _op(summary: str, *, body: str = None, params=(), ok: str = "200", ok_schema: Dict = None,
        errors=("400", "401", "404"), auth: bool = True, content: str = "application/json",
        tag: str = "reminders", also_ok: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """One operation; *also_ok* are further success statuses with the same body."""
    op: Dict[str, Any] = {"summary": summary, "tags": [tag], "parameters": [
        {"$ref": f"#/components/parameters/{p}"} if isinstance(p, str) else p for p in params], "responses": {}}
    for code in (ok, *also_ok):
        op["responses"][code] = {"description": "OK", "content": {content: {"schema": ok_schema or {"type": "object"}}}}
    for e in errors:
        op["responses"][e] = ERR
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        op["responses"].setdefault("413", ERR)      # every JSON body is capped (reminders.api.MAX_BODY)
    if not auth:
        op["security"] = []
    return op


def build_openapi() -> Dict[str, Any]:
    s = {"type": "string"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Reminders service", "version": "1.0.0",
                 "description": "Vaccination, check-up and activity reminders. Errors: {\"error\": {\"code\", \"message\"}}. "
                                "Bearer token on every route except /health, /metrics, /openapi.json, the signed "
                                "/sms/inbound webhook and the token-protected calendar feed."},
        "servers": [{"url": "http://127.0.0.1:8002"}],
        "security": [{"bearer": []}],
        "paths": {
            "/health": {"get": _op("Liveness and DB check", auth=False, errors=())},
            "/metrics": {"get": _op("Prometheus metrics (aggregate counts only)", auth=False, errors=(), content="text/plain",
                                    ok_schema=s)},
            "/openapi.json": {"get": _op("This document", auth=False, errors=())},
            "/children": {"post": _op("Create a child with guardian consent and caregivers; plans reminders. "
                                      "422 consent_required stores nothing.", body="CreateChild", ok="201",
                                      errors=("400", "401", "413", "422"))},
            "/children/{child_id}": {"get": _op("A child with caregivers and consent record", params=["child_id"])},
            "/children/{child_id}/caregivers": {"post": _op("Add a caregiver (next in escalation order)",
                                                            body="Caregiver", params=["child_id"], ok="201",
                                                            errors=("400", "401", "404", "422"))},
            "/children/{child_id}/doses": {
                "post": _op("Record a dose given (catch-up: later reminders are recomputed from it); 200 when "
                            "the dose was already recorded (its date is corrected)", body="Dose",
                            params=["child_id"], ok="201", also_ok=("200",), errors=("400", "401", "404", "422")),
                "get": _op("Doses recorded", params=["child_id"])},
            "/children/{child_id}/upcoming": {"get": _op(
                "Due, overdue and upcoming items with due dates", params=["child_id",
                {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["zh", "en"]}},
                {"name": "all", "in": "query", "schema": {"type": "boolean"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
                errors=("400", "401", "404", "422"))},
            "/children/{child_id}/calendar.ics": {"get": _op(
                "iCalendar feed (subscribe from a phone calendar); authenticated by the per-child token",
                params=["child_id", {"name": "token", "in": "query", "required": True, "schema": s}],
                content="text/calendar", ok_schema=s, auth=False, errors=("400", "404"))},
            "/children/{child_id}/reminders": {"get": _op("Reminder rows of a child (status, attempts, last_error)",
                                                          params=["child_id", "status"])},
            "/reminders": {"get": _op("Reminder rows by status (e.g. status=failed) and counts",
                                      params=["status", {"name": "limit", "in": "query", "description":
                                                          "at most 1000 rows are returned (default 100)",
                                                          "schema": {"type": "integer", "minimum": 1}}])},
            "/stats": {"get": _op("Reminder counts by status and children overdue by community (schedule items with "
                                  "status overdue as of today in each child's time zone; children without a "
                                  "community under \"未填写/unknown\")", errors=("401",), ok_schema={
                "type": "object", "properties": {
                    "reminders": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "overdue_by_community": {"type": "object", "additionalProperties": {
                        "type": "object", "properties": {"children": {"type": "integer"},
                                                         "overdue_children": {"type": "integer"},
                                                         "overdue_items": {"type": "integer"}}}}}})},
            "/caregivers/{caregiver_id}/opt-out": {"post": _op("Opt a caregiver out of everything, at once",
                                                               params=["caregiver_id"])},
            "/opt-out": {"post": _op("Opt out by chat sender id or phone", body="Identity",
                                     errors=("400", "401", "404", "422"))},
            "/senders/{sender_id}": {"get": _op("Caregivers and children of a chat sender id", params=[
                {"name": "sender_id", "in": "path", "required": True, "schema": s}])},
            "/replies": {"post": _op("Handle a chat reply (收到/已打/是/退订 ...); returns the text to utter",
                                     body="ChatReply", errors=("400", "401", "404"))},
            "/activities": {"post": _op("Publish an activity (staff)", body="Activity", ok="201",
                                        errors=("400", "401", "422")),
                            "get": _op("Upcoming activities with remaining capacity", params=[
                                {"name": "past", "in": "query", "schema": {"type": "boolean"}}])},
            "/activities/{activity_id}/bookings": {"post": _op(
                "Book an activity (capacity enforced: 409 activity_full); plans reminders a day and an hour before",
                body="Booking", params=[{"name": "activity_id", "in": "path", "required": True, "schema": s}],
                ok="201", errors=("400", "401", "404", "409"))},
            "/families/{family_id}/export": {"get": _op("Export everything stored about a family", params=["family_id"])},
            "/families/{family_id}": {"delete": _op("Hard-delete a family and all its data", params=["family_id"])},
            "/sms/inbound": {"post": _op("Inbound SMS from the gateway; header X-Signature: sha256=<hex HMAC-SHA256 "
                                         "of the raw body with SMS_WEBHOOK_SECRET>", body="InboundSms", auth=False,
                                         errors=("400", "401", "422"))},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "child_id": {"name": "child_id", "in": "path", "required": True, "schema": s},
                "caregiver_id": {"name": "caregiver_id", "in": "path", "required": True, "schema": s},
                "family_id": {"name": "family_id", "in": "path", "required": True, "schema": s},
                "status": {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                    "pending", "claimed", "sent", "failed", "acknowledged", "cancelled"]}},
            },
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": s, "message": s}}}},
                "Consent": {"type": "object", "required": ["given", "by", "text_version"], "properties": {
                    "given": {"type": "boolean", "description": "must be true"}, "by": _text(200, required=True),
                    "text_version": _text(50, required=True), "channel": _text(50)}},
                "Child": {"type": "object", "required": ["nickname", "birth_date"], "properties": {
                    "nickname": _text(50, required=True),
                    "birth_date": {"type": "string", "format": "date", "description": "not in the future, at most 6 years ago"},
                    "language": {"type": "string", "enum": ["zh", "en"], "default": "zh"},
                    "timezone": _text(64, default="Asia/Shanghai"),
                    "region": {"type": "string", "enum": ["CN", "US"], "default": "CN"},
                    "community": _text(100, description="optional; groups children in GET /stats")}},
                "Caregiver": {"type": "object", "description": "needs chat and/or phone",
                              "anyOf": [{"required": ["chat"]}, {"required": ["phone"]}], "properties": {
                    "role": _text(50, example="mother"), "name": _text(100),
                    "language": {"type": "string", "enum": ["zh", "en"]},
                    "chat": {"type": "object", "required": ["sender_id"], "properties": {
                        "sender_id": _text(200, required=True), "output_channel": _text(100, default="latest")}},
                    "phone": {"type": "string", "description": "mainland mobile 1[3-9]xxxxxxxxx; spaces, dashes, +86 tolerated"},
                    "preferred_channel": {"type": "string", "enum": ["chat", "sms"]},
                    "quiet_hours": {"type": "object", "required": ["start", "end"], "properties": {
                        "start": {"type": "string", "pattern": HHMM, "example": "21:00"},
                        "end": {"type": "string", "pattern": HHMM, "example": "08:00"}}},
                    "timezone": _text(64)}},
                "Dose": {"type": "object", "description": "item_id, or vaccine and dose",
                         "anyOf": [{"required": ["item_id"]}, {"required": ["vaccine", "dose"]}], "properties": {
                    "item_id": _text(50, required=True, example="hepb-2"),
                    "vaccine": _text(50, required=True, example="hepb"), "dose": {"type": "integer"},
                    "given_on": {"type": "string", "format": "date", "description": "default today"},
                    "source": {"type": "string", "enum": ["api", "chat", "sms"]}}},
                "CreateChild": {"type": "object", "required": ["consent", "child", "caregivers"], "properties": {
                    "consent": {"$ref": "#/components/schemas/Consent"},
                    "child": {"$ref": "#/components/schemas/Child"},
                    "caregivers": {"type": "array", "minItems": 1, "maxItems": 10,
                                   "items": {"$ref": "#/components/schemas/Caregiver"}},
                    "doses": {"type": "array", "items": {"$ref": "#/components/schemas/Dose"}}}},
                "Identity": {"type": "object", "anyOf": [{"required": ["sender_id"]}, {"required": ["phone"]}],
                             "properties": {"sender_id": _text(200, required=True), "phone": s}},
                "ChatReply": {"type": "object", "required": ["sender_id", "text"], "properties": {
                    "sender_id": _text(200, required=True), "text": _text(1000, required=True)}},
                "Activity": {"type": "object", "required": ["title", "place", "starts_at", "capacity"], "properties": {
                    "title": _text(200, required=True), "place": _text(200, required=True),
                    "starts_at": {"type": "string", "format": "date-time", "maxLength": 40},
                    "timezone": _text(64, default="Asia/Shanghai"),
                    "capacity": {"type": "integer", "minimum": 1, "maximum": 100000}, "description": _text(2000)}},
                "Booking": {"type": "object", "required": ["caregiver_id"], "properties": {
                    "caregiver_id": _text(32, required=True), "child_id": _text(32)}},
                "InboundSms": {"type": "object", "required": ["from", "text"], "properties": {
                    "from": {"type": "string", "description": "mainland mobile number of the sender"},
                    "text": _text(1000, required=True), "message_id": s,
                    "received_at": {"type": "string", "format": "date-time"}}},
            },
        },
    }
