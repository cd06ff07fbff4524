"""aiohttp API of the reminders service (``create_app(config, clock=...)``).

Authentication: ``Authorization: Bearer <REMINDERS_API_TOKEN>`` on every route except
``/health``, ``/metrics`` (aggregate counts only, no personal data; bind to loopback),
``/openapi.json``, ``POST /sms/inbound`` (HMAC-signed by the gateway) and
``/children/{id}/calendar.ics`` (per-child secret token in the URL).
Errors are JSON: ``{"error": {"code": ..., "message": ...}}``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import uuid
from typing import Any, Dict, List, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from aiohttp import web

from . import planner
from .clock import SystemClock
from .config import Config
from .dates import parse_birth_date
from .delivery import Deliverer, verify_signature
from .http import LeanHTTPClient
from .ics import build_calendar
from .metrics import Metrics
from .openapi import build_openapi
from .phones import install_log_masking, mask_phone, normalize_phone
from .replies import ReplyIntent, classify_reply
from .schedule import REGION_FILES, load_schedule, remindable
from .store import STATUSES, Conflict, NotFound, Store
from .sweep import Sweeper

log = logging.getLogger("reminders.api")

CONFIG_KEY = web.AppKey("config", Config)
CLOCK_KEY = web.AppKey("clock", object)
STORE_KEY = web.AppKey("store", Store)
METRICS_KEY = web.AppKey("metrics", Metrics)
SWEEPER_KEY = web.AppKey("sweeper", Sweeper)
SESSION_KEY = web.AppKey("session", object)

PUBLIC_PATHS = {"/health", "/metrics", "/openapi.json", "/sms/inbound"}
MAX_BODY = 256 * 1024
MAX_LIST = 1000           # rows returned by GET /reminders at most


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def jresp(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


# ---------------------------------------------------------------------- validation helpers
def _obj(v: Any, name: str) -> Dict[str, Any]:
    if not isinstance(v, dict):
        raise ApiError(400, "invalid_type", f"{name} must be an object")
    return v


def _str(d: Mapping, key: str, *, required: bool = True, max_len: int = 200, default: Optional[str] = None) -> Optional[str]:
    v = d.get(key, None)
    if v is None:
        if required:
            raise ApiError(400, "missing_field", f"{key} is required")
        return default
    if not isinstance(v, str):
        raise ApiError(400, "invalid_type", f"{key} must be a string")
    v = v.strip()
    if required and not v:
        raise ApiError(400, "missing_field", f"{key} must not be empty")
    if len(v) > max_len:
        raise ApiError(400, "too_long", f"{key} is longer than {max_len} characters")
    return v


def _date(s: str, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ApiError(400, "invalid_date", f"{key} must be an ISO date YYYY-MM-DD") from None


_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def _datetime(s: str, key: str) -> dt.datetime:
    """ISO 8601 / RFC 3339 date-time; naive if it has no offset.

    Python 3.10's fromisoformat takes only 3- or 6-digit fractions, an upper-case T and no Z, while
    RFC 3339 (the OpenAPI ``date-time`` format) allows any fraction and t/z in either case."""
    s = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], s)
    if len(s) > 10 and s[10] == "t":
        s = s[:10] + "T" + s[11:]
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(s)
    except ValueError:
        raise ApiError(400, "invalid_datetime", f"{key} must be ISO 8601") from None


def _hhmm(s: Any, key: str) -> str:
    if not isinstance(s, str):
        raise ApiError(400, "invalid_type", f"{key} must be a string HH:MM")
    try:
        t = planner.parse_hhmm(s)
    except Exception:
        raise ApiError(400, "invalid_time", f"{key} must be HH:MM") from None
    return t.strftime("%H:%M")


def _tz(s: str) -> str:
    try:
        ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, "invalid_timezone", f"unknown time zone {s!r}") from None
    return s


def _lang(s: Optional[str]) -> str:
    if s not in ("zh", "en"):
        raise ApiError(422, "invalid_language", "language must be 'zh' or 'en'")
    return s


# NUL is rejected by PostgreSQL text columns and an unpaired surrogate (legal as a JSON \ud800 escape)
# cannot be encoded to UTF-8 by either database or by the JSON response: both used to end in a 500.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_text(data: Any) -> None:
    """Reject NUL characters and unpaired surrogates anywhere in a parsed JSON document (keys too).

    Iterative, because json.loads accepts nesting almost as deep as the recursion limit."""
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _BAD_TEXT.search(v):
                raise ApiError(400, "invalid_text", "strings must not contain NUL characters or unpaired surrogates")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _loads(raw: bytes) -> Dict[str, Any]:
    """Parse a JSON object request body; 400 for anything else."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "request body must be valid JSON") from None
    except RecursionError:
        # e.g. 100k nested "[": the C decoder gives up at the interpreter's recursion limit
        raise ApiError(400, "invalid_json", "request body is nested too deeply") from None
    _check_text(data)
    return _obj(data, "body")


async def _json(request: web.Request) -> Dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", "request body too large")
    return _loads(await request.read())


def _now(request: web.Request) -> dt.datetime:
    return request.app[CLOCK_KEY].now()


def validate_caregiver(c: Any, cfg: Config, idx: int) -> Dict[str, Any]:
    """Validate one caregiver object (see the OpenAPI schema ``Caregiver``)."""
    c = _obj(c, f"caregivers[{idx}]")
    out: Dict[str, Any] = {"role": _str(c, "role", required=False, max_len=50, default="parent"),
                           "name": _str(c, "name", required=False, max_len=100)}
    if c.get("language") is not None:
        out["language"] = _lang(c.get("language"))
    chat = c.get("chat")
    if chat is not None:
        chat = _obj(chat, f"caregivers[{idx}].chat")
        out["chat_sender_id"] = _str(chat, "sender_id", max_len=200)
        out["chat_channel"] = _str(chat, "output_channel", required=False, max_len=100, default="latest")
    if c.get("phone") is not None:
        if not isinstance(c["phone"], str):
            raise ApiError(400, "invalid_type", f"caregivers[{idx}].phone must be a string")
        p = normalize_phone(c["phone"])
        if p is None:
            raise ApiError(422, "invalid_phone",
                           f"caregivers[{idx}].phone is not a mainland mobile number (1[3-9] + 9 digits)")
        out["phone"] = p
    if not out.get("chat_sender_id") and not out.get("phone"):
        raise ApiError(422, "no_channel", f"caregivers[{idx}] needs chat.sender_id and/or phone")
    pc = c.get("preferred_channel")
    if pc is not None:
        if pc not in ("chat", "sms"):
            raise ApiError(422, "invalid_channel", "preferred_channel must be 'chat' or 'sms'")
        out["preferred_channel"] = pc
    qh = c.get("quiet_hours")
    if qh is not None:
        qh = _obj(qh, f"caregivers[{idx}].quiet_hours")
        out["quiet_start"] = _hhmm(qh.get("start"), "quiet_hours.start")
        out["quiet_end"] = _hhmm(qh.get("end"), "quiet_hours.end")
    else:
        out["quiet_start"], out["quiet_end"] = cfg.quiet_start.strftime("%H:%M"), cfg.quiet_end.strftime("%H:%M")
    if c.get("timezone") is not None:
        out["timezone"] = _tz(_str(c, "timezone", max_len=64))
    return out


# ---------------------------------------------------------------------- middleware
def _check_url(request: web.Request) -> None:
    """Path and query parameters end up in SQL parameters too (NUL: PostgreSQL raises, a 500)."""
    if _BAD_TEXT.search(request.path) or any(_BAD_TEXT.search(k) or _BAD_TEXT.search(v)
                                             for k, v in request.query.items()):
        raise ApiError(400, "invalid_text", "the URL must not contain NUL characters")


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        _check_url(request)
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message)
    except NotFound as e:
        return error_response(404, "not_found", f"unknown {e}")
    except Conflict as e:
        return error_response(409, str(e), str(e).replace("_", " "))
    except web.HTTPException as e:
        if e.status >= 400:
            return error_response(e.status, e.reason.lower().replace(" ", "_"), e.reason)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")


def _header(request: web.Request, name: str) -> str:
    """A header as text, or "" when it is not UTF-8.

    aiohttp keeps undecodable header bytes as lone surrogates (surrogateescape); encoding those for the
    constant-time comparisons raised UnicodeEncodeError, a 500 instead of a 401."""
    value = request.headers.get(name, "")
    return "" if _BAD_TEXT.search(value) else value


@web.middleware
async def auth_middleware(request: web.Request, handler):
    path = request.path
    if path in PUBLIC_PATHS or (path.startswith("/children/") and path.endswith("/calendar.ics")):
        return await handler(request)
    token = request.app[CONFIG_KEY].api_token
    if token:
        got = _header(request, "Authorization")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), token.encode())):
            return error_response(401, "unauthorized", "missing or invalid bearer token")
    return await handler(request)


# ---------------------------------------------------------------------- handlers
async def health(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    ok = await store.run(store.ping)
    return jresp({"status": "ok" if ok else "degraded", "db": ok, "worker": request.app[SWEEPER_KEY].worker_id})


async def metrics_handler(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    counts = await store.run(store.counts_by_status)
    return web.Response(body=request.app[METRICS_KEY].render(counts).encode("utf-8"),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def stats(request: web.Request) -> web.Response:
    """Reminder counts by status and children overdue by community (for the hotline dashboard)."""
    store = request.app[STORE_KEY]
    return jresp({"reminders": await store.run(store.counts_by_status),
                  "overdue_by_community": await store.run(store.overdue_by_community, _now(request))})


async def openapi_handler(request: web.Request) -> web.Response:
    return jresp(build_openapi())


def _upcoming(ch: Mapping, computed, lang: Optional[str] = None, include_all: bool = False) -> Dict[str, Any]:
    lang = lang or ch["language"]
    items = computed if include_all else remindable(computed)
    return {"child_id": ch["id"], "nickname": ch["nickname"], "birth_date": ch["birth_date"].isoformat()
            if isinstance(ch["birth_date"], dt.date) else ch["birth_date"], "region": ch["region"],
            "items": [c.to_dict(lang) for c in items],
            "note": next((n.get("en" if lang == "en" else "zh") for n in load_schedule(ch["region"]).notes), "")}


async def create_child(request: web.Request) -> web.Response:
    cfg, store = request.app[CONFIG_KEY], request.app[STORE_KEY]
    data = await _json(request)
    now = _now(request)
    consent = data.get("consent")
    if consent is None or not isinstance(consent, dict) or consent.get("given") is not True:
        # PIPL: nothing is stored without explicit guardian consent
        raise ApiError(422, "consent_required", "explicit guardian consent (consent.given = true) is required; nothing was stored")
    consent_v = {"by": _str(consent, "by", max_len=200), "text_version": _str(consent, "text_version", max_len=50),
                 "channel": _str(consent, "channel", required=False, max_len=50)}
    child = _obj(data.get("child"), "child")
    nickname = _str(child, "nickname", max_len=50)
    language = _lang(child.get("language", "zh"))
    tz = _tz(_str(child, "timezone", required=False, max_len=64, default=cfg.default_timezone))
    region = child.get("region") or ("US" if language == "en" else "CN")   # English users: US schedule
    if not isinstance(region, str) or region.upper() not in REGION_FILES:
        raise ApiError(422, "invalid_region", f"region must be one of {sorted(REGION_FILES)}")
    region = region.upper()
    community = _str(child, "community", required=False, max_len=100) or None   # "" = not given
    bd_raw = child.get("birth_date")
    if not isinstance(bd_raw, str):
        raise ApiError(400, "invalid_type" if bd_raw is not None else "missing_field", "child.birth_date must be a string YYYY-MM-DD")
    birth = _date(bd_raw, "child.birth_date")
    today = now.astimezone(ZoneInfo(tz)).date()
    judged = parse_birth_date(birth.isoformat(), today)
    if judged.status == "future":
        raise ApiError(422, "birth_date_in_future", judged.message_en)
    if judged.status == "too_old":
        raise ApiError(422, "birth_date_too_old", judged.message_en)
    cgs_raw = data.get("caregivers")
    if not isinstance(cgs_raw, list) or not cgs_raw:
        raise ApiError(400, "missing_field", "caregivers must be a non-empty list")
    if len(cgs_raw) > 10:
        raise ApiError(422, "too_many_caregivers", "at most 10 caregivers")
    cgs = [validate_caregiver(c, cfg, i) for i, c in enumerate(cgs_raw)]
    doses_in = []
    sched = load_schedule(region)
    doses_raw = data.get("doses")
    if doses_raw is not None and not isinstance(doses_raw, list):
        raise ApiError(400, "invalid_type", "doses must be a list")
    for i, d in enumerate(doses_raw or []):
        d = _obj(d, f"doses[{i}]")
        item = _resolve_item(sched, d)
        given = _date(_str(d, "given_on", max_len=10), f"doses[{i}].given_on")
        if given > today or given < birth:
            raise ApiError(422, "invalid_dose_date", f"doses[{i}].given_on must be between the birth date and today")
        doses_in.append((item.id, given))
    res = await store.run(store.create_family, consent_v, {"nickname": nickname, "birth_date": birth,
                          "language": language, "timezone": tz, "region": region, "community": community},
                          cgs, now, doses_in)
    log.info("child created (family %s, %d caregivers: %s)", res["family_id"], len(cgs),
             ", ".join(mask_phone(c.get("phone")) or "chat" for c in cgs))
    request.app[SWEEPER_KEY].kick()
    body = await store.run(store.get_child, res["child_id"])
    body["family_id"] = res["family_id"]
    body["calendar_url"] = f"{cfg.public_url}/children/{res['child_id']}/calendar.ics?token={body['ics_token']}"
    ch, computed = await store.run(store.child_schedule, res["child_id"], now)
    body["upcoming"] = _upcoming(ch, computed)["items"]
    return jresp(body, 201)


def _resolve_item(sched, d: Mapping):
    if d.get("item_id") is not None:
        item_id = _str(d, "item_id", max_len=50)
        item = sched.by_id.get(item_id)
    else:
        series = _str(d, "vaccine", max_len=50)
        dose = d.get("dose")
        if not isinstance(dose, int) or isinstance(dose, bool):
            raise ApiError(400, "invalid_type", "dose must be an integer")
        item = sched.find(series, dose)
    if item is None:
        raise ApiError(422, "unknown_item", f"unknown vaccine/visit for this region's schedule; known ids: "
                       + ", ".join(i.id for i in sched.items[:60]))
    return item


async def get_child(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return jresp(await store.run(store.get_child, request.match_info["child_id"]))


async def add_caregiver(request: web.Request) -> web.Response:
    store, cfg = request.app[STORE_KEY], request.app[CONFIG_KEY]
    data = await _json(request)
    cg = validate_caregiver(data, cfg, 0)
    gid = await store.run(store.add_caregiver, request.match_info["child_id"], cg, _now(request))
    cg_row = await store.run(store.get_caregiver, gid)
    return jresp({k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in cg_row.items()}, 201)


async def record_dose(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    child_id = request.match_info["child_id"]
    data = await _json(request)
    now = _now(request)
    ch, _ = await store.run(store.child_schedule, child_id, now)
    sched = load_schedule(ch["region"])
    item = _resolve_item(sched, data)
    today = now.astimezone(ZoneInfo(ch["timezone"])).date()
    given = _date(_str(data, "given_on", max_len=10), "given_on") if data.get("given_on") is not None else today
    if given > today:
        raise ApiError(422, "invalid_dose_date", "given_on is in the future")
    if given < ch["birth_date"]:
        raise ApiError(422, "invalid_dose_date", "given_on is before the birth date")
    source = data.get("source", "api")
    if source not in ("api", "chat", "sms"):
        raise ApiError(422, "invalid_source", "source must be api, chat or sms")
    res = await store.run(store.record_dose, child_id, item.id, given, source, now)
    request.app[SWEEPER_KEY].kick()
    ch, computed = await store.run(store.child_schedule, child_id, now)
    res["upcoming"] = _upcoming(ch, computed)["items"]
    return jresp(res, 201 if res["created"] else 200)


async def list_doses(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return jresp({"doses": await store.run(store.list_doses, request.match_info["child_id"])})


async def upcoming(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    lang = request.query.get("lang")
    if lang is not None:
        _lang(lang)
    include_all = request.query.get("all", "0") in ("1", "true")
    ch, computed = await store.run(store.child_schedule, request.match_info["child_id"], _now(request))
    out = _upcoming(ch, computed, lang, include_all)
    if "limit" in request.query:
        try:
            lim = int(request.query["limit"])
            assert lim > 0
        except (ValueError, AssertionError):
            raise ApiError(400, "invalid_limit", "limit must be a positive integer") from None
        out["items"] = out["items"][:lim]
    return jresp(out)


async def calendar(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    child_id = request.match_info["child_id"]
    token = request.query.get("token", "")
    try:
        ch, computed = await store.run(store.child_schedule, child_id, _now(request))
    except NotFound:
        raise ApiError(404, "not_found", "unknown calendar") from None
    if not token or not hmac.compare_digest(token.encode(), ch["ics_token"].encode()):
        raise ApiError(404, "not_found", "unknown calendar")  # don't reveal that the child exists
    now = _now(request)
    today = now.astimezone(ZoneInfo(ch["timezone"])).date()
    body = build_calendar(child_id, ch["nickname"], ch["language"], ch["timezone"], computed, today, now,
                          load_schedule(ch["region"]))
    return web.Response(body=body.encode("utf-8"), content_type="text/calendar", charset="utf-8",
                        headers={"Content-Disposition": f'inline; filename="{child_id}.ics"'})


async def child_reminders(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status must be one of {list(STATUSES)}")
    return jresp({"reminders": await store.run(store.list_reminders, child_id=request.match_info["child_id"],
                                               status=status, limit=1000)})


async def list_reminders(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_status", f"status must be one of {list(STATUSES)}")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "invalid_limit", "limit must be an integer") from None
    # SQL treats a negative LIMIT as "no limit" (and SQLite overflows past 2**63): reject, don't pass it on
    if limit < 1:
        raise ApiError(400, "invalid_limit", "limit must be a positive integer")
    limit = min(limit, MAX_LIST)
    return jresp({"reminders": await store.run(store.list_reminders, status=status, limit=limit),
                  "counts": await store.run(store.counts_by_status)})


async def opt_out_caregiver(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return jresp(await store.run(store.opt_out, request.match_info["caregiver_id"], _now(request)))


async def opt_out_by(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    data = await _json(request)
    cgs = await _caregivers_from(request, data)
    out = [await store.run(store.opt_out, c["id"], _now(request)) for c in cgs]
    return jresp({"opted_out": [o["caregiver_id"] for o in out], "cancelled": sum(o["cancelled"] for o in out)})


async def _caregivers_from(request: web.Request, data: Mapping) -> List[Dict[str, Any]]:
    store = request.app[STORE_KEY]
    if data.get("sender_id") is not None:
        cgs = await store.run(store.caregivers_by, sender_id=_str(data, "sender_id"))
    elif data.get("phone") is not None:
        p = normalize_phone(data["phone"]) if isinstance(data["phone"], str) else None
        if p is None:
            raise ApiError(422, "invalid_phone", "phone is not a mainland mobile number")
        cgs = await store.run(store.caregivers_by, phone=p)
    else:
        raise ApiError(400, "missing_field", "sender_id or phone is required")
    if not cgs:
        raise ApiError(404, "not_found", "no caregiver with this sender_id/phone")
    return cgs


async def sender_lookup(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    cgs = await store.run(store.caregivers_by, sender_id=request.match_info["sender_id"])
    if not cgs:
        raise ApiError(404, "not_found", "no caregiver with this sender_id")
    kids = []
    for c in cgs:
        for k in await store.run(store.family_children, c["family_id"]):
            kids.append({"id": k["id"], "nickname": k["nickname"], "birth_date": k["birth_date"].isoformat(),
                         "language": k["language"], "family_id": k["family_id"]})
    return jresp({"caregivers": [{"id": c["id"], "family_id": c["family_id"], "role": c["role"],
                                  "opted_out": bool(c["opted_out"])} for c in cgs], "children": kids})


# ---------------------------------------------------------------------- replies (chat + SMS)
def _reply_text(key: str, lang: str, **kw) -> str:
    zh = {
        "opt_out": "您已退订育儿助手的全部提醒，之后不会再收到消息。",
        "ack": "好的，已确认收到提醒。",
        "ask_confirm": "请确认：宝宝已经接种了 {names} 吗？回复“是”确认记录，回复“否”取消。",
        "which": "好的！请告诉我是哪一针（例如：已经打了乙肝第二针），或在聊天中记录。",
        "recorded": "已记录：{names}（{date}）。后续提醒已按最短间隔重新计算。",
        "not_recorded": "好的，没有记录。",
        "nothing": "目前没有需要确认的接种记录。",
        "not_given": "好的，我们会继续提醒您。",
        "unknown": "回复“收到”确认提醒，“已打”记录接种，“退订”取消提醒。",
    }
    en = {
        "opt_out": "You have unsubscribed from all reminders. You will not receive further messages.",
        "ack": "Thanks, reminder acknowledged.",
        "ask_confirm": "Please confirm: has your child received {names}? Reply YES to record it, NO to cancel.",
        "which": "Great! Which dose was it? (e.g. 'had HepB dose 2').",
        "recorded": "Recorded: {names} ({date}). Upcoming reminders were recalculated.",
        "not_recorded": "OK, nothing was recorded.",
        "nothing": "There is nothing to confirm right now.",
        "not_given": "OK, we will keep reminding you.",
        "unknown": "Reply OK to acknowledge, DONE SHOT once given, STOP to unsubscribe.",
    }
    return (en if lang == "en" else zh)[key].format(**kw)


async def handle_reply(app: web.Application, cgs: List[Dict[str, Any]], text: str, channel: str) -> Dict[str, Any]:
    """Act on a caregiver's reply; returns ``{intent, action, reply_text}``."""
    store, now = app[STORE_KEY], app[CLOCK_KEY].now()
    intent = classify_reply(text)
    lang = cgs[0]["language"]
    action, reply = intent.value, None
    if intent == ReplyIntent.OPT_OUT:
        for c in cgs:
            await store.run(store.opt_out, c["id"], now)
        reply = _reply_text("opt_out", lang)
    elif intent == ReplyIntent.ACK:
        n = 0
        for c in cgs:
            n += await store.run(store.acknowledge, c["id"], now)
        reply = _reply_text("ack", lang)
        action = "ack"
    elif intent == ReplyIntent.DOSE_GIVEN:
        found = None
        for c in cgs:
            found = await store.run(store.last_vaccine_reminder, c["id"], now)
            if found:
                await store.run(store.acknowledge, c["id"], now)
                await store.run(store.set_confirmation, c["id"], found["child_id"], found["items"],
                                now + app[CONFIG_KEY].confirm_window)
                ch = await store.run(store.get_child, found["child_id"])
                sched = load_schedule(ch["region"])
                names = ("、" if lang == "zh" else ", ").join(sched.by_id[i].name(lang) for i in found["items"])
                reply = _reply_text("ask_confirm", lang, names=names)
                action = "confirmation_requested"
                break
        if not found:
            reply, action = _reply_text("which", lang), "dose_unspecified"
    elif intent in (ReplyIntent.CONFIRM_YES, ReplyIntent.CONFIRM_NO):
        pending = None
        for c in cgs:
            pending = await store.run(store.pop_confirmation, c["id"], now)
            if pending:
                break
        if not pending:
            reply, action = _reply_text("nothing", lang), "nothing_to_confirm"
        elif intent == ReplyIntent.CONFIRM_NO:
            reply, action = _reply_text("not_recorded", lang), "dose_not_recorded"
        else:
            ch = await store.run(store.get_child, pending["child_id"])
            today = now.astimezone(ZoneInfo(ch["timezone"])).date()
            for item_id in pending["items"]:
                await store.run(store.record_dose, pending["child_id"], item_id, today, channel, now)
            sched = load_schedule(ch["region"])
            names = ("、" if lang == "zh" else ", ").join(sched.by_id[i].name(lang) for i in pending["items"])
            reply, action = _reply_text("recorded", lang, names=names, date=today.isoformat()), "dose_recorded"
    elif intent == ReplyIntent.NOT_GIVEN:
        reply = _reply_text("not_given", lang)
    else:
        reply = _reply_text("unknown", lang)
    return {"intent": intent.value, "action": action, "reply_text": reply}


async def chat_reply(request: web.Request) -> web.Response:
    data = await _json(request)
    text = _str(data, "text", max_len=1000)
    cgs = await _caregivers_from(request, {"sender_id": data.get("sender_id")} if data.get("sender_id") is not None else {})
    return jresp(await handle_reply(request.app, cgs, text, "chat"))


MAX_MESSAGE_ID = 100   # the reply's idempotency key "reply:<id>:<caregiver id>" must fit its 160 characters


def _reply_id(message_id: Any, raw: bytes) -> str:
    """The gateway's message id for the reply's idempotency key; a digest when missing or too long.

    A long id overflowed the key's VARCHAR(160) on PostgreSQL (a 500, and the reply was lost); hashing
    keeps retries of the same message idempotent."""
    text = str(message_id) if message_id else ""
    if not text:
        return hashlib.sha256(raw).hexdigest()[:24]
    if len(text) > MAX_MESSAGE_ID:
        return "sha256-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
    return text


async def sms_inbound(request: web.Request) -> web.Response:
    cfg, app = request.app[CONFIG_KEY], request.app
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", "request body too large")
    if not verify_signature(raw, _header(request, "X-Signature"), cfg.sms_webhook_secret):
        app[METRICS_KEY].inbound_sms("bad_signature")
        raise ApiError(401, "invalid_signature", "missing or invalid X-Signature")
    data = _loads(raw)
    sender = data.get("from")
    phone = normalize_phone(sender) if isinstance(sender, str) else None
    if phone is None:
        raise ApiError(422, "invalid_phone", "from is not a mainland mobile number")
    text = _str(data, "text", max_len=1000)
    store = app[STORE_KEY]
    cgs = await store.run(store.caregivers_by, phone=phone)
    if not cgs:
        app[METRICS_KEY].inbound_sms("unknown_sender")
        log.info("inbound sms from unknown %s", mask_phone(phone))
        return jresp({"action": "unknown_sender"})
    res = await handle_reply(app, cgs, text, "sms")
    app[METRICS_KEY].inbound_sms(res["action"])
    log.info("inbound sms from %s: %s", mask_phone(phone), res["action"])
    if res["intent"] != ReplyIntent.UNKNOWN.value and res["reply_text"]:
        msg_id = _reply_id(data.get("message_id"), raw)
        await store.run(store.add_reply, cgs[0]["id"], "sms", res["reply_text"],
                        f"reply:{msg_id}:{cgs[0]['id']}", app[CLOCK_KEY].now())
        app[SWEEPER_KEY].kick()
    return jresp(res)


# ---------------------------------------------------------------------- activities
async def create_activity(request: web.Request) -> web.Response:
    cfg, store = request.app[CONFIG_KEY], request.app[STORE_KEY]
    data = await _json(request)
    title = _str(data, "title", max_len=200)
    place = _str(data, "place", max_len=200)
    tz = _tz(_str(data, "timezone", required=False, max_len=64, default=cfg.default_timezone))
    starts = _datetime(_str(data, "starts_at", max_len=40), "starts_at")
    if starts.tzinfo is None:
        starts = starts.replace(tzinfo=ZoneInfo(tz))  # local time of the activity
    try:
        # near year 1 or 9999 an offset pushes the instant out of datetime's range (OverflowError, a 500)
        starts = starts.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ApiError(400, "invalid_datetime", "starts_at is out of range") from None
    if starts <= _now(request):
        raise ApiError(422, "starts_in_past", "starts_at must be in the future")
    cap = data.get("capacity")
    if not isinstance(cap, int) or isinstance(cap, bool):
        raise ApiError(400, "invalid_type", "capacity must be an integer")
    if cap < 1 or cap > 100000:
        raise ApiError(422, "invalid_capacity", "capacity must be between 1 and 100000")
    desc = _str(data, "description", required=False, max_len=2000)
    act = await store.run(store.create_activity, {"title": title, "place": place, "starts_at": starts,
                                                  "timezone": tz, "capacity": cap, "description": desc}, _now(request))
    return jresp(act, 201)


async def list_activities(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return jresp({"activities": await store.run(store.list_activities, _now(request),
                                                request.query.get("past") in ("1", "true"))})


async def book_activity(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    data = await _json(request)
    cg = _str(data, "caregiver_id", max_len=32)
    child = _str(data, "child_id", required=False, max_len=32)
    res = await store.run(store.book, request.match_info["activity_id"], cg, child, _now(request))
    request.app[SWEEPER_KEY].kick()
    return jresp(res, 201)


# ---------------------------------------------------------------------- privacy
async def export_family(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return jresp(await store.run(store.export_family, request.match_info["family_id"]))


async def delete_family(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    counts = await store.run(store.delete_family, request.match_info["family_id"])
    log.info("family %s deleted: %s", request.match_info["family_id"], counts)
    return jresp({"deleted": counts})


ROUTES = [
    ("GET", "/health", health), ("GET", "/metrics", metrics_handler), ("GET", "/openapi.json", openapi_handler),
    ("POST", "/children", create_child), ("GET", "/children/{child_id}", get_child),
    ("POST", "/children/{child_id}/caregivers", add_caregiver),
    ("POST", "/children/{child_id}/doses", record_dose), ("GET", "/children/{child_id}/doses", list_doses),
    ("GET", "/children/{child_id}/upcoming", upcoming), ("GET", "/children/{child_id}/calendar.ics", calendar),
    ("GET", "/children/{child_id}/reminders", child_reminders), ("GET", "/reminders", list_reminders),
    ("GET", "/stats", stats),
    ("POST", "/caregivers/{caregiver_id}/opt-out", opt_out_caregiver), ("POST", "/opt-out", opt_out_by),
    ("GET", "/senders/{sender_id}", sender_lookup), ("POST", "/replies", chat_reply),
    ("POST", "/activities", create_activity), ("GET", "/activities", list_activities),
    ("POST", "/activities/{activity_id}/bookings", book_activity),
    ("GET", "/families/{family_id}/export", export_family), ("DELETE", "/families/{family_id}", delete_family),
    ("POST", "/sms/inbound", sms_inbound),
]


def create_app(config: Optional[Config] = None, clock=None) -> web.Application:
    """Application factory. *clock* (``.now()`` -> aware datetime) is injectable for tests."""
    cfg = config or Config.from_env()
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY)
    app[CONFIG_KEY] = cfg
    app[CLOCK_KEY] = clock or SystemClock()
    app[METRICS_KEY] = Metrics()
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)

    async def on_startup(app: web.Application) -> None:
        install_log_masking()
        store = Store(cfg.database_url, send_time=cfg.send_time, escalate_after=cfg.escalate_after,
                      activity_offsets=cfg.activity_offsets, plan_horizon_days=cfg.plan_horizon_days)
        app[STORE_KEY] = store
        if cfg.http_client == "aiohttp":
            connector = aiohttp.TCPConnector(limit=max(cfg.concurrency, 1), limit_per_host=max(cfg.concurrency, 1))
            session = aiohttp.ClientSession(connector=connector)
        else:
            session = LeanHTTPClient(limit=max(cfg.concurrency, 1))
        app[SESSION_KEY] = session
        deliverer = Deliverer(session, cfg.rasa_url, cfg.rasa_auth_token, cfg.sms_gateway_url,
                              cfg.sms_webhook_secret, cfg.http_timeout)
        worker = cfg.worker_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        sweeper = Sweeper(store, deliverer, app[CLOCK_KEY], app[METRICS_KEY], worker,
                          batch_size=cfg.batch_size, concurrency=cfg.concurrency, lease=cfg.lease,
                          max_attempts=cfg.max_attempts, backoff_base=cfg.backoff_base, backoff_cap=cfg.backoff_cap)
        app[SWEEPER_KEY] = sweeper
        if cfg.sweep_enabled:
            sweeper.start(cfg.sweep_interval, cfg.sweep_misfire_grace)
        log.info("reminders worker %s started (db=%s, sms=%s)", worker, store.url.split("://")[0],
                 "on" if cfg.sms_gateway_url else "off")

    async def on_cleanup(app: web.Application) -> None:
        app[SWEEPER_KEY].shutdown()
        await app[SESSION_KEY].close()
        app[STORE_KEY].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
