"""Async client for the reminders API, for the Rasa custom actions.

    from reminders.client import RemindersClient
    async with RemindersClient.from_env() as rc:
        child = await rc.create_child(consent_by="sender-123", consent_version="2026-01",
                                      nickname="小明", birth_date="2025-03-05", language="zh",
                                      chat_sender_id="sender-123", output_channel="wechat")
        nxt = await rc.upcoming_for_sender("sender-123")

Every method raises :class:`RemindersError` (``.status``, ``.code``, ``.message``) on a 4xx/5xx
answer or when the service cannot be reached (``status`` 0, code ``unavailable``). Short timeouts:
Rasa's own action timeout is long, so the bot should answer "try later" instead of hanging.
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, Dict, List, Optional

import aiohttp


class RemindersError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class RemindersClient:
    def __init__(self, base_url: str, token: Optional[str], timeout: float = 5.0,
                 session: Optional[aiohttp.ClientSession] = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._own = session is None

    @classmethod
    def from_env(cls, timeout: float = 5.0) -> "RemindersClient":
        """``REMINDERS_URL`` (default http://127.0.0.1:8002) and ``REMINDERS_API_TOKEN``."""
        return cls(os.environ.get("REMINDERS_URL", "http://127.0.0.1:8002"), os.environ.get("REMINDERS_API_TOKEN"),
                   timeout)

    async def __aenter__(self) -> "RemindersClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, json: Any = None, params: Optional[Dict[str, str]] = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with self._session.request(method, self.base_url + path, json=json, params=params,
                                             headers=headers, timeout=self.timeout) as resp:
                ctype = resp.headers.get("Content-Type", "")
                body = await resp.json() if "json" in ctype else await resp.text()
                if resp.status >= 400:
                    err = body.get("error", {}) if isinstance(body, dict) else {}
                    raise RemindersError(resp.status, err.get("code", "http_error"), err.get("message", str(body)[:200]))
                return body
        except RemindersError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise RemindersError(0, "unavailable", f"reminders service unavailable: {type(e).__name__}") from None
        except Exception as e:  # asyncio.TimeoutError on 3.10
            if type(e).__name__ == "TimeoutError":
                raise RemindersError(0, "unavailable", "reminders service timed out") from None
            raise

    # ------------------------------------------------------------------ subscriptions
    async def create_child(self, *, consent_by: str, consent_version: str, nickname: str, birth_date: str,
                           language: str = "zh", timezone: str = "Asia/Shanghai", region: Optional[str] = None,
                           chat_sender_id: Optional[str] = None, output_channel: Optional[str] = None,
                           phone: Optional[str] = None, role: str = "parent",
                           preferred_channel: Optional[str] = None,
                           caregivers: Optional[List[Dict[str, Any]]] = None,
                           doses: Optional[List[Dict[str, Any]]] = None,
                           community: Optional[str] = None) -> Dict[str, Any]:
        """Create a child with its first caregiver (this chat and/or an SMS phone) AFTER consent.

        Call it only once the guardian said yes to the consent text; *consent_version* names that
        text. *birth_date* is ISO (use :func:`reminders.dates.parse_birth_date` on the user's words).
        Extra caregivers (grandparents…) may be given as API ``Caregiver`` objects in *caregivers*.
        *community* (optional, at most 100 characters) groups the child in ``GET /stats``.
        Returns the child (with ``id``, ``family_id``, ``caregivers``, ``calendar_url``, ``upcoming``).
        """
        first: Dict[str, Any] = {"role": role, "language": language}
        if chat_sender_id:
            first["chat"] = {"sender_id": chat_sender_id, "output_channel": output_channel or "latest"}
        if phone:
            first["phone"] = phone
        if preferred_channel:
            first["preferred_channel"] = preferred_channel
        child: Dict[str, Any] = {"nickname": nickname, "birth_date": birth_date, "language": language,
                                 "timezone": timezone}
        if region:
            child["region"] = region
        if community:
            child["community"] = community
        payload = {"consent": {"given": True, "by": consent_by, "text_version": consent_version, "channel": "chat"},
                   "child": child, "caregivers": [first] + list(caregivers or [])}
        if doses:
            payload["doses"] = doses
        return await self._request("POST", "/children", json=payload)

    async def add_caregiver(self, child_id: str, caregiver: Dict[str, Any]) -> Dict[str, Any]:
        return await self._request("POST", f"/children/{child_id}/caregivers", json=caregiver)

    async def find_by_sender(self, sender_id: str) -> Optional[Dict[str, Any]]:
        """``{caregivers, children}`` registered from this chat, or None."""
        try:
            return await self._request("GET", f"/senders/{sender_id}")
        except RemindersError as e:
            if e.status == 404:
                return None
            raise

    # ------------------------------------------------------------------ doses / upcoming
    async def record_dose(self, child_id: str, *, item_id: Optional[str] = None, vaccine: Optional[str] = None,
                          dose: Optional[int] = None, given_on: Optional[dt.date] = None,
                          source: str = "chat") -> Dict[str, Any]:
        """Record a dose (``item_id`` like ``hepb-2``, or ``vaccine="hepb", dose=2``); returns the new upcoming list."""
        body: Dict[str, Any] = {"source": source}
        if item_id:
            body["item_id"] = item_id
        else:
            body["vaccine"], body["dose"] = vaccine, dose
        if given_on:
            body["given_on"] = given_on.isoformat()
        return await self._request("POST", f"/children/{child_id}/doses", json=body)

    async def upcoming(self, child_id: str, lang: Optional[str] = None, limit: Optional[int] = None,
                       include_all: bool = False) -> Dict[str, Any]:
        """Due / overdue / upcoming items; ``include_all`` adds given, dropped and expired ones."""
        params = {}
        if lang:
            params["lang"] = lang
        if limit:
            params["limit"] = str(limit)
        if include_all:
            params["all"] = "1"
        return await self._request("GET", f"/children/{child_id}/upcoming", params=params)

    async def upcoming_for_sender(self, sender_id: str, lang: Optional[str] = None,
                                  limit: int = 5) -> List[Dict[str, Any]]:
        """"下一针什么时候打": upcoming items of every child registered from this chat."""
        found = await self.find_by_sender(sender_id)
        if not found:
            return []
        return [await self.upcoming(k["id"], lang, limit) for k in found["children"]]

    # ------------------------------------------------------------------ replies / opt-out
    async def handle_reply(self, sender_id: str, text: str) -> Dict[str, Any]:
        """Forward a chat reply (收到 / 已打 / 是 / 退订 …); returns ``{intent, action, reply_text}``."""
        return await self._request("POST", "/replies", json={"sender_id": sender_id, "text": text})

    async def opt_out(self, sender_id: Optional[str] = None, phone: Optional[str] = None) -> Dict[str, Any]:
        """Stop every reminder for the caregiver(s) of this chat sender (or phone), at once."""
        body = {"sender_id": sender_id} if sender_id else {"phone": phone}
        return await self._request("POST", "/opt-out", json=body)

    # ------------------------------------------------------------------ activities
    async def list_activities(self) -> List[Dict[str, Any]]:
        return (await self._request("GET", "/activities"))["activities"]

    async def book_activity(self, activity_id: str, caregiver_id: str, child_id: Optional[str] = None) -> Dict[str, Any]:
        body = {"caregiver_id": caregiver_id}
        if child_id:
            body["child_id"] = child_id
        return await self._request("POST", f"/activities/{activity_id}/bookings", json=body)

    # ------------------------------------------------------------------ privacy
    async def export_family(self, family_id: str) -> Dict[str, Any]:
        return await self._request("GET", f"/families/{family_id}/export")

    async def delete_family(self, family_id: str) -> Dict[str, Any]:
        return await self._request("DELETE", f"/families/{family_id}")
