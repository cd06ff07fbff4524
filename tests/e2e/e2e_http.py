"""Small HTTP helpers for the end-to-end tests (standard library only)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Optional, Tuple


def post(url: str, payload: Any = None, raw: Optional[bytes] = None, timeout: float = 60,
         headers: Optional[dict] = None) -> Tuple[int, Any]:
    """POST JSON (or raw bytes); returns (status, decoded JSON body)."""
    data = raw if raw is not None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def get(url: str, timeout: float = 30, headers: Optional[dict] = None) -> Tuple[int, str]:
    """GET; returns (status, body text)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
