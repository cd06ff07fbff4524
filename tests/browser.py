"""Headless Chromium for the page tests: Debian's chromium and chromedriver
(installed by .ci/run), driven by Selenium, never a browser download."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Skipped only where Chromium is missing (CI installs it), and it says why.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or not Path(CHROMEDRIVER).exists(),
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)",
)


def browser(profile: str, window: str = "1366,900"):
    """A headless Chromium with its own empty profile and no background networking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 f"--window-size={window}", "--lang=zh-CN", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
