"""A small keep-alive HTTP/1.1 client for the delivery hot path.

Delivery only POSTs small JSON bodies to two known endpoints (Rasa and the SMS gateway). aiohttp's
client costs about twice the CPU per request of this one (see docs/benchmarks/reminders.md), so the
sweep uses this by default (``DELIVERY_HTTP_CLIENT=lean``; ``aiohttp`` switches back).
Supports http and https, Content-Length, chunked and read-until-close responses, per-request
timeouts and a bounded connection pool per host. Connections are dropped on any error.
"""
from __future__ import annotations

import asyncio
import functools
import ssl as _ssl
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit


class HttpError(Exception):
    """Malformed response or connection problem."""


_Conn = Tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LeanHTTPClient:
    def __init__(self, limit: int = 64, max_idle_per_host: int = 64,
                 ssl_context: Optional[_ssl.SSLContext] = None, max_response: int = 1 << 20):
        self._sem = asyncio.Semaphore(limit)
        self._idle: Dict[Tuple[str, str, int], List[_Conn]] = {}
        self._max_idle = max_idle_per_host
        self._ssl = ssl_context
        self._max_response = max_response
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Tuple[int, bytes]:
        """POST *body*; returns ``(status, response body)``. Raises asyncio.TimeoutError/HttpError/OSError."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise HttpError(f"unsupported URL {url!r}")
        netloc, slash, path = rest.partition("/")
        query = ""
        if not slash and "?" in netloc:
            netloc, _, query = netloc.partition("?")
        key, host_hdr = _origin(scheme + "://" + netloc)
        if key is None:
            raise HttpError(f"unsupported URL {url!r}")
        target = "/" + path if slash else ("/?" + query if query else "/")
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_hdr}", f"Content-Length: {len(body)}",
                 "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")]
        req = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._sem:
            # a timer cancelling this task is much cheaper than asyncio.wait_for's extra task
            task = asyncio.current_task()
            state = {"timed_out": False}

            def on_timeout() -> None:
                state["timed_out"] = True
                task.cancel()

            handle = asyncio.get_running_loop().call_later(timeout, on_timeout)
            try:
                return await self._send(key, req)
            except asyncio.CancelledError:
                if state["timed_out"]:
                    raise asyncio.TimeoutError() from None
                raise
            finally:
                handle.cancel()

    async def _send(self, key, req: bytes) -> Tuple[int, bytes]:
        conn = self._pop_idle(key)
        reused = conn is not None
        if conn is None:
            conn = await self._connect(key)
        try:
            return await self._exchange(key, conn, req)
        except (ConnectionError, asyncio.IncompleteReadError, _Stale) as e:
            self._close(conn)
            if reused and isinstance(e, _Stale):
                # the server closed an idle keep-alive connection before reading: one fresh attempt
                conn = await self._connect(key)
                try:
                    return await self._exchange(key, conn, req)
                except BaseException:
                    self._close(conn)
                    raise
            raise HttpError(f"{type(e).__name__}: {e}") from None
        except BaseException:
            self._close(conn)
            raise

    async def _connect(self, key) -> _Conn:
        scheme, host, port = key
        ctx = None
        if scheme == "https":
            ctx = self._ssl or _ssl.create_default_context()
        return await asyncio.open_connection(host, port, ssl=ctx)

    async def _exchange(self, key, conn: _Conn, req: bytes) -> Tuple[int, bytes]:
        reader, writer = conn
        writer.write(req)
        status_line = await reader.readline()
        if not status_line:
            raise _Stale("connection closed before the response")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {status_line[:80]!r}")
        status = int(parts[1])
        keep_alive = parts[0] == b"HTTP/1.1"
        length: Optional[int] = None
        chunked = False
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection":
                v = value.lower()
                keep_alive = b"close" not in v and (keep_alive or b"keep-alive" in v)
        if chunked:
            data = bytearray()
            while True:
                size_line = await reader.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += await reader.readexactly(size)
                await reader.readexactly(2)
                if len(data) > self._max_response:
                    raise HttpError("response too large")
            body = bytes(data)
        elif length is not None:
            if length > self._max_response:
                raise HttpError("response too large")
            body = await reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await reader.read(self._max_response)
            keep_alive = False
        if keep_alive and not self._closed:
            self._push_idle(key, conn)
        else:
            self._close(conn)
        return status, body

    def _pop_idle(self, key) -> Optional[_Conn]:
        lst = self._idle.get(key)
        while lst:
            conn = lst.pop()
            if not conn[1].is_closing() and not conn[0].at_eof():
                return conn
            self._close(conn)
        return None

    def _push_idle(self, key, conn: _Conn) -> None:
        lst = self._idle.setdefault(key, [])
        if len(lst) < self._max_idle:
            lst.append(conn)
        else:
            self._close(conn)

    @staticmethod
    def _close(conn: _Conn) -> None:
        try:
            conn[1].close()
        except Exception:  # pragma: no cover
            pass

    async def close(self) -> None:
        self._closed = True
        for lst in self._idle.values():
            for conn in lst:
                self._close(conn)
        self._idle.clear()


class _Stale(Exception):
    pass


@functools.lru_cache(maxsize=64)
def _origin(origin: str):
    """``scheme://host:port`` -> ((scheme, host, port), Host header) or (None, None)."""
    u = urlsplit(origin)
    if u.scheme not in ("http", "https") or not u.hostname:
        return None, None
    return (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)), u.netloc.rsplit("@", 1)[-1]
