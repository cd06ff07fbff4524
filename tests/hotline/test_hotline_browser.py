"""End to end in headless Chromium: a parent asks for a human on the web
chat page, a worker signed in to the console sees the ticket appear without
reloading, claims it, replies; the parent gets the reply on the page; the
worker resolves and the bot answers the parent's next message.

Debian's `chromium` and `chromium-driver` (never a browser download);
skipped only when they are not installed."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.browser import browser, needs_chromium
from tests.hotline.helpers import PASSWORD

# The README's screenshot; refreshed by `UPDATE_SCREENSHOTS=1 pytest tests/hotline/test_hotline_browser.py`.
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "console.png"

pytestmark = needs_chromium


def test_parent_and_worker_in_the_browser(hotline_stack, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    stack = hotline_stack
    screenshot = tmp_path / "console.png"
    worker = browser(str(tmp_path / "worker"))
    parent = browser(str(tmp_path / "parent"))
    try:
        wait_worker, wait_parent = WebDriverWait(worker, 30), WebDriverWait(parent, 30)

        def bot_said(fragment):
            return lambda d: any(fragment in m.text for m in d.find_elements(By.CSS_SELECTOR, "#log .msg.bot"))

        # The worker signs in; nothing is reachable before that.
        worker.get(stack.hotline_url + "/")
        assert worker.current_url.endswith("/login")
        worker.find_element(By.ID, "username").send_keys("wang")
        worker.find_element(By.ID, "password").send_keys(PASSWORD)
        worker.find_element(By.ID, "login").click()
        wait_worker.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#queue tbody")))
        worker.execute_script("window.__notReloaded = true;")

        # The parent asks for a person on the web chat page.
        parent.get(stack.rasa_url + "/webhooks/webchat/chat")
        sender = parent.execute_script("return localStorage.getItem('webchat-sender');")
        parent.find_element(By.ID, "text").send_keys("我要转人工")
        parent.find_element(By.ID, "send").click()
        wait_parent.until(bot_said("已为您转接热线工作人员"))

        # The ticket appears in the worker's queue without a reload.
        row = wait_worker.until(lambda d: next(
            (r for r in d.find_elements(By.CSS_SELECTOR, "#queue tbody tr") if sender in r.text), None))
        assert worker.execute_script("return window.__notReloaded === true;")
        row.find_element(By.CSS_SELECTOR, "a.open-ticket").click()

        # Ticket page: the transcript, claim, reply.
        wait_worker.until(lambda d: "我要转人工" in d.find_element(By.ID, "transcript").text)
        wait_worker.until(EC.element_to_be_clickable((By.ID, "claim"))).click()
        wait_worker.until(lambda d: "claimed" in d.find_element(By.ID, "status").text)
        worker.find_element(By.ID, "note").send_keys("家长说孩子发烧，先了解体温和月龄")
        worker.find_element(By.CSS_SELECTOR, "#note-form button").click()
        wait_worker.until(lambda d: "先了解体温" in d.find_element(By.ID, "notes").text)

        # While paused, the parent's messages reach the console live.
        parent.find_element(By.ID, "text").send_keys("宝宝一直发烧，现在39度，8个月大")
        parent.find_element(By.ID, "send").click()
        wait_worker.until(lambda d: "现在39度" in d.find_element(By.ID, "transcript").text)
        assert not parent.find_elements(By.XPATH, "//*[contains(@class,'bot') and contains(., '39')]")

        worker.find_element(By.ID, "reply").send_keys("您好，我是热线小王。39度请先物理降温，精神差就马上去医院。")
        worker.find_element(By.ID, "send").click()
        wait_parent.until(bot_said("我是热线小王"))  # pushed through the web chat outbox
        wait_worker.until(lambda d: "我是热线小王" in d.find_element(By.ID, "transcript").text)
        worker.save_screenshot(str(screenshot))

        # Resolve: the bot is back and answers the next message.
        worker.find_element(By.ID, "resolve").click()
        wait_worker.until(lambda d: "resolved" in d.find_element(By.ID, "status").text)
        wait_parent.until(bot_said("育儿小助手回来了"))
        parent.find_element(By.ID, "text").send_keys("你好")
        parent.find_element(By.ID, "send").click()
        wait_parent.until(bot_said("我是育儿小助手"))
    finally:
        worker.quit()
        parent.quit()
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, README_SCREENSHOT)
