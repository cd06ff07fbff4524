"""The elder-friendly web chat in headless Chromium, against a real Rasa server.

Opens the page served by the Rasa server of the shared test stack (launcher
Supervisor, free ports), switches on the elder-friendly mode with the
keyboard, checks the large text, asks a question, sees the answer, checks
the page told the bot it is in voice mode, and saves a screenshot to
docs/images/webchat-elder.png.

Debian's `chromium` and `chromium-driver` (never a browser download);
skipped only when they are not installed.
"""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from tests.browser import browser, needs_chromium

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "webchat-elder.png"

pytestmark = needs_chromium


def px(driver, selector: str, prop: str = "font-size") -> float:
    value = driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).getPropertyValue(arguments[1]);",
        selector, prop,
    )
    return float(str(value).replace("px", ""))


def test_elder_mode_large_text_question_answer_and_voice_metadata(rasa_stack, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser(str(tmp_path / "profile"), window="1000,900")
    try:
        wait = WebDriverWait(driver, 90)
        driver.get(rasa_stack.url + "/webhooks/webchat/chat")
        assert px(driver, "body") < 22  # the ordinary page first

        # Every control is labelled.
        for element in driver.find_elements(By.CSS_SELECTOR, "button, input"):
            label = element.get_attribute("aria-label") or element.text
            if element.tag_name == "input":
                label = label or driver.find_element(By.CSS_SELECTOR, f"label[for='{element.get_attribute('id')}']").get_attribute("textContent")
            assert label.strip(), element.get_attribute("outerHTML")

        # Switch the elder-friendly mode on with the keyboard only.
        elder = driver.find_element(By.ID, "elder")
        elder.send_keys(Keys.SPACE)
        wait.until(lambda d: elder.get_attribute("aria-pressed") == "true")
        assert px(driver, "body") >= 22 and px(driver, "#text") >= 22
        talk, again = driver.find_element(By.ID, "talk"), driver.find_element(By.ID, "again")
        assert talk.is_displayed() and again.is_displayed() and again.text == "再说一遍"
        assert px(driver, "#talk") >= 22 and talk.size["height"] >= 60
        # High contrast: black text on white.
        assert driver.execute_script("return getComputedStyle(document.body).color;") == "rgb(0, 0, 0)"
        assert driver.execute_script("return getComputedStyle(document.body).backgroundColor;") == "rgb(255, 255, 255)"

        # Ask by typing (always possible) and press Enter.
        box = driver.find_element(By.ID, "text")
        box.send_keys("你好")
        box.send_keys(Keys.ENTER)
        answer = wait.until(lambda d: next((m for m in d.find_elements(By.CSS_SELECTOR, "#log .msg.bot")
                                            if m.text.strip()), None))
        assert "育儿" in answer.text or "您好" in answer.text
        assert px(driver, "#log .msg.bot") >= 22
        assert "连接出错" not in driver.find_element(By.ID, "status").text
        # 再说一遍 works from the keyboard too (reads the last answer again, no round trip).
        again.send_keys(Keys.ENTER)
        wait.until(lambda d: "再读一遍" in d.find_element(By.ID, "status").text)

        # The page told the bot it is in voice mode.
        sender = driver.execute_script("return localStorage.getItem('webchat-sender');")
        url = f"{rasa_stack.url}/conversations/{sender}/tracker?token={rasa_stack.token}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            tracker = json.load(resp)
        users = [e for e in tracker["events"] if e.get("event") == "user"]
        assert users and users[-1]["metadata"].get("voice_mode") is True

        # The README's screenshot is refreshed only on request (UPDATE_SCREENSHOTS=1),
        # so a test run never changes tracked files.
        target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "elder.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(target))
        assert target.stat().st_size > 10_000
    finally:
        driver.quit()
