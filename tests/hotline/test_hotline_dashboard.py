"""Dashboard: children overdue by community, from a real reminders app
(`reminders.api.create_app`, real SQLite file, fixed clock) on loopback.

The JSON the dashboard page reads is checked here; the page itself renders
that JSON in headless Chromium when Debian's `chromium` and
`chromium-driver` are installed."""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hotline.app import CONFIG
from hotline.app import create_app as create_hotline
from reminders.api import create_app as create_reminders
from reminders.clock import FakeClock
from reminders.config import Config
from reminders.store import NO_COMMUNITY
from tests.browser import browser, needs_chromium
from tests.hotline.helpers import PASSWORD, Staff

REMINDERS_TOKEN = "dash-reminders-token"
# 2026-03-02 10:00 in Shanghai. Born 2026-02-20 with nothing recorded: three items overdue
# (BCG-1, HepB-1, newborn home visit); born 2026-03-02: the birth doses are due today, none overdue.
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.timezone.utc)
OVERDUE_BIRTH, TODAY_BIRTH = "2026-02-20", "2026-03-02"

EXPECTED_ROWS = [
    {"community": "幸福社区", "children": 2, "overdue_children": 2, "overdue_items": 6},
    {"community": "Sunshine", "children": 3, "overdue_children": 1, "overdue_items": 3},
    {"community": NO_COMMUNITY, "children": 1, "overdue_children": 0, "overdue_items": 0},
]


@pytest.fixture
async def dashboard(aiohttp_server, tmp_path, config, accounts):
    """A reminders app with six children in two communities (and one without), and the
    hotline app pointed at it; returns the hotline server."""
    cfg = Config.from_env(env={}, database_url=f"sqlite:///{tmp_path}/reminders.db", api_token=REMINDERS_TOKEN,
                          sweep_enabled=False, public_url="http://testserver")
    reminders = await aiohttp_server(create_reminders(cfg, clock=FakeClock(T0)))
    children = [("Sunshine", TODAY_BIRTH), ("幸福社区", OVERDUE_BIRTH), ("Sunshine", OVERDUE_BIRTH),
                (None, TODAY_BIRTH), ("幸福社区", OVERDUE_BIRTH), ("Sunshine", TODAY_BIRTH)]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {REMINDERS_TOKEN}"}) as session:
        for i, (community, birth) in enumerate(children):
            child = {"nickname": f"宝宝{i}", "birth_date": birth, **({"community": community} if community else {})}
            payload = {"consent": {"given": True, "by": "妈妈", "text_version": "2026-01"}, "child": child,
                       "caregivers": [{"role": "mother", "chat": {"sender_id": f"dash-{i}"}}]}
            async with session.post(reminders.make_url("/children"), json=payload) as response:
                assert response.status == 201, await response.text()
    app = create_hotline(replace(config, reminders_url=str(reminders.make_url("")).rstrip("/"),
                                 reminders_token=REMINDERS_TOKEN), poll=False)
    return await aiohttp_server(app)


async def supervisor_views(base):
    """Log in as the supervisor, read the dashboard's data, then the audit log it left."""
    boss = Staff(base)
    try:
        assert (await boss.login("boss")).status == 303
        response = await boss.session.get(boss.url("/dashboard/data"))
        assert response.status == 200
        data = await response.json()
        audit = (await (await boss.session.get(boss.url("/audit/data"))).json())["entries"]
    finally:
        await boss.close()
    return data, audit


async def test_dashboard_lists_children_overdue_by_community(dashboard):
    data, audit = await supervisor_views(dashboard.make_url("/"))
    reminders = data["reminders"]
    assert reminders["available"] is True and reminders["source"] == "/stats"
    # Most overdue children first.
    assert reminders["overdue_by_community"] == EXPECTED_ROWS
    assert reminders["reminders"]["pending"] > 0 and reminders["reminders"]["failed"] == 0
    # The view of these figures is in the audit log, next to the dashboard view.
    actions = {e["action"]: e for e in audit if e["username"] == "boss"}
    assert actions["view_overdue_by_community"]["detail"] == "communities=3"
    assert "view_dashboard" in actions


async def test_wrong_reminders_token_gives_no_table_and_no_audit_entry(aiohttp_server, dashboard, config):
    """A reminders service that refuses the token for /stats: the dashboard falls back to the
    public /metrics counts, shows no per-community figures and logs no view of them."""
    base = dashboard.app[CONFIG].reminders_url
    server = await aiohttp_server(create_hotline(replace(config, reminders_url=base, reminders_token="wrong"),
                                                 poll=False))
    data, audit = await supervisor_views(server.make_url("/"))
    reminders = data["reminders"]
    assert reminders["available"] is True and reminders["source"] == "/metrics"
    assert reminders["overdue_by_community"] is None and reminders["reminders"]["by_status"]["pending"] > 0
    actions = {e["action"] for e in audit}
    assert "view_dashboard" in actions and "view_overdue_by_community" not in actions


@needs_chromium
async def test_dashboard_page_renders_the_table(dashboard, tmp_path):

    url = str(dashboard.make_url("/")).rstrip("/")

    def drive():
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver = browser(str(tmp_path / "boss"))
        try:
            driver.get(url + "/login")
            driver.find_element(By.ID, "username").send_keys("boss")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "login").click()
            WebDriverWait(driver, 20).until(lambda d: not d.current_url.endswith("/login"))
            driver.get(url + "/dashboard")
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overdue tbody tr"))
            head = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#overdue thead th")]
            rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in driver.find_elements(By.CSS_SELECTOR, "#overdue tbody tr")]
            return head, rows
        finally:
            driver.quit()

    # Selenium blocks: drive the browser in a thread while this loop serves both apps.
    head, rows = await asyncio.get_running_loop().run_in_executor(None, drive)
    assert [h.split()[0] for h in head] == ["社区", "儿童", "逾期儿童", "逾期项目"]
    assert rows == [[r["community"], str(r["children"]), str(r["overdue_children"]), str(r["overdue_items"])]
                    for r in EXPECTED_ROWS]
