"""The lean delivery HTTP client against real loopback servers."""
import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reminders.delivery import Deliverer
from reminders.http import HttpError, LeanHTTPClient

pytestmark = pytest.mark.asyncio


async def _server(**runner_kw):
    seen = []

    async def plain(request):
        seen.append((request.path_qs, dict(request.headers), await request.read()))
        return web.json_response({"ok": True}, status=int(request.query.get("status", "200")))

    async def chunked(request):
        resp = web.StreamResponse(status=202)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"hel", b"lo ", b"world"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def slow(request):
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    async def close(request):
        return web.Response(text="bye", headers={"Connection": "close"})

    app = web.Application()
    app.router.add_post("/plain", plain)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/slow", slow)
    app.router.add_post("/close", close)
    srv = TestServer(app, host="127.0.0.1", **runner_kw)
    await srv.start_server()
    return srv, seen


async def test_keep_alive_status_headers_and_body():
    srv, seen = await _server()
    c = LeanHTTPClient(limit=4)
    try:
        for i in range(5):
            status, body = await c.post(str(srv.make_url("/plain?x=1&y=%20")), b'{"a":"\xe4"}',
                                        {"Content-Type": "application/json", "Idempotency-Key": "k1"}, 5)
            assert status == 200 and body == b'{"ok": true}'
        assert len(c._idle[("http", "127.0.0.1", srv.port)]) == 1        # one connection reused
        path, headers, raw = seen[0]
        assert path == "/plain?x=1&y=%20" and headers["Idempotency-Key"] == "k1" and raw == b'{"a":"\xe4"}'
        status, _ = await c.post(str(srv.make_url("/plain?status=503")), b"{}", {}, 5)
        assert status == 503
    finally:
        await c.close()
        await srv.close()


async def test_chunked_close_and_timeout():
    srv, _ = await _server()
    c = LeanHTTPClient()
    try:
        assert await c.post(str(srv.make_url("/chunked")), b"x", {}, 5) == (202, b"hello world")
        assert await c.post(str(srv.make_url("/close")), b"x", {}, 5) == (200, b"bye")
        with pytest.raises(asyncio.TimeoutError):
            await c.post(str(srv.make_url("/slow")), b"x", {}, 0.2)
        assert (await c.post(str(srv.make_url("/plain")), b"x", {}, 5))[0] == 200
        with pytest.raises(HttpError):
            await c.post("ftp://example.org/x", b"", {}, 1)
    finally:
        await c.close()
        await srv.close()


async def test_server_closing_idle_connections():
    srv, _ = await _server(keepalive_timeout=0.05)
    c = LeanHTTPClient()
    try:
        assert (await c.post(str(srv.make_url("/plain")), b"x", {}, 5))[0] == 200
        await asyncio.sleep(0.3)                                  # server drops the idle connection
        assert (await c.post(str(srv.make_url("/plain")), b"x", {}, 5))[0] == 200
    finally:
        await c.close()
        await srv.close()


async def test_connection_refused_is_retryable():
    c = LeanHTTPClient()
    d = Deliverer(c, "http://127.0.0.1:9", None, "http://127.0.0.1:9/sms", "s", timeout=2)
    res = await d.send_sms("13800000000", "hi", "1", "k")
    assert res.outcome == "retry" and "sms" in res.error
    await c.close()


async def test_url_forms():
    srv, seen = await _server()
    c = LeanHTTPClient()
    try:
        base = f"http://127.0.0.1:{srv.port}"
        assert (await c.post(base + "/plain?status=201", b"", {}, 5))[0] == 201
        assert seen[-1][0] == "/plain?status=201"
        for bad in ("127.0.0.1/plain", "mailto:x@y", "http:///plain"):
            with pytest.raises(HttpError):
                await c.post(bad, b"", {}, 1)
    finally:
        await c.close()
        await srv.close()
