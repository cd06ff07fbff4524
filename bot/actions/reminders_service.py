"""HTTP client of the reminders service, for the chat actions.

Short timeouts: a slow service must not hold the conversation (Rasa waits for
the action server). Every failure becomes a ServiceError the action turns
into a polite message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=5)
CONFLICTS = ("already_booked", "activity_full", "activity_started")


class ServiceError(RuntimeError):
    """The reminders service is unreachable or refused the request."""


@dataclass(frozen=True)
class ReminderService:
    """Calls to the reminders API (REMINDERS_URL, bearer REMINDERS_API_TOKEN)."""

    base_url: str
    token: str

    @classmethod
    def from_env(cls) -> "ReminderService":
        return cls(
            base_url=os.environ.get("REMINDERS_URL", "http://127.0.0.1:8002").rstrip("/"),
            token=os.environ.get("REMINDERS_API_TOKEN", ""),
        )

    async def _call(
        self, method: str, path: str, body: Optional[Dict[str, Any]] = None, params: Optional[Dict[str, str]] = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.request(method, self.base_url + path, json=body, params=params, headers=headers) as response:
                    data = await response.json(content_type=None)
                    return response.status, data
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as error:
            raise ServiceError(f"{method} {path}: {error}") from error

    async def _ok(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
                  params: Optional[Dict[str, str]] = None, allow_404: bool = False) -> Any:
        status, data = await self._call(method, path, body, params)
        if status == 404 and allow_404:
            return None
        if status >= 300:
            code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
            raise ServiceError(f"{method} {path}: {status} {code}")
        return data

    async def create_child(self, payload: Dict[str, Any]) -> Dict[str, Any]:
        """Create a family (consent, child, caregivers); the answer lists what is due."""
        return await self._ok("POST", "/children", payload)

    async def sender(self, sender_id: str) -> Optional[Dict[str, Any]]:
        """Caregivers and children of a chat sender, None if not subscribed."""
        return await self._ok("GET", f"/senders/{quote(sender_id, safe='')}", allow_404=True)

    async def upcoming(self, child_id: str, language: str, limit: Optional[int] = None,
                       include_all: bool = False) -> Dict[str, Any]:
        params = {"lang": language}
        if limit:
            params["limit"] = str(limit)
        if include_all:
            params["all"] = "1"
        return await self._ok("GET", f"/children/{quote(child_id, safe='')}/upcoming", params=params)

    async def record_dose(self, child_id: str, item_id: str) -> Dict[str, Any]:
        return await self._ok("POST", f"/children/{quote(child_id, safe='')}/doses", {"item_id": item_id, "source": "chat"})

    async def chat_reply(self, sender_id: str, text: str) -> Dict[str, Any]:
        """Let the service act on a reply to a reminder (ack, 已打, 是/否)."""
        return await self._ok("POST", "/replies", {"sender_id": sender_id, "text": text})

    async def opt_out(self, sender_id: str) -> Optional[Dict[str, Any]]:
        return await self._ok("POST", "/opt-out", {"sender_id": sender_id}, allow_404=True)

    async def activities(self) -> List[Dict[str, Any]]:
        return (await self._ok("GET", "/activities")).get("activities", [])

    async def book(self, activity_id: str, caregiver_id: str, child_id: Optional[str]) -> str:
        """"booked", or the reason it could not be (already_booked, activity_full, activity_started)."""
        body: Dict[str, Any] = {"caregiver_id": caregiver_id}
        if child_id:
            body["child_id"] = child_id
        status, data = await self._call("POST", f"/activities/{quote(activity_id, safe='')}/bookings", body)
        code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
        if status == 409 and code in CONFLICTS:
            return code
        if status >= 300:
            raise ServiceError(f"booking: {status} {code}")
        return "booked"
