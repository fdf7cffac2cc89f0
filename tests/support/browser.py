"""Debian's chromium under the system chromedriver, headless and kept off the network, for tests
that drive the admin dashboard as a person would.

Selenium speaks W3C WebDriver to `/usr/bin/chromedriver`, given by path, with SE_OFFLINE set so
selenium-manager never looks for or downloads a driver or a browser. The flags keep chromium from
reaching anything but the loopback pages the test opens: no component updates, no sync, no
background fetches, no QUIC, a fresh profile each time.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--hide-scrollbars",
)
LAPTOP = (1280, 900)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None (`make test` installs both packages)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists() and shutil.which(path.name) is None:
            return f"{path} is missing: install Debian's chromium and chromium-driver (make test does)"
    return None


@contextmanager
def chromium(profile: Path, size: tuple[int, int] = LAPTOP) -> Iterator[Any]:
    """A headless chromium whose console messages `driver.get_log('browser')` returns."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for flag in (*OFFLINE_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else Path(str(shutil.which("chromedriver")))
    driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def severe_console_entries(driver: Any) -> list[str]:
    """The page's console errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def prefer_dark(driver: Any, dark: bool) -> None:
    """Emulate `prefers-color-scheme` as a system in dark mode would set it."""
    value = "dark" if dark else "light"
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": value}]})


def full_page_screenshot(driver: Any, path: Path) -> None:
    """The whole page, below the window's fold too, at the window's width."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
