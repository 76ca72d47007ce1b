"""The console in a real browser (Debian's chromium, driven by Selenium and chromium-driver)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import IN_CI
from tests.support.console import PASSWORDS, PATIENT, ConsoleStack, console_stack
from tests.support.register_double import RegisterDouble

pytestmark = pytest.mark.integration
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# set to a folder to keep screenshots of the pages (docs/images/ holds the ones the docs show)
SCREENSHOTS = os.environ.get("REGBRIDGE_CONSOLE_SCREENSHOTS")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if CHROMIUM is None or DRIVER is None:
        message = "chromium and chromium-driver are not installed (make tools installs them in CI)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser test, not skip it", pytrace=False)
        pytest.skip(message)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    # the Debian driver, given by path: Selenium Manager downloads nothing
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    postgres_url: str,
    double: RegisterDouble,
    unique_name: str,
    tmp_path: Path,
) -> AsyncIterator[ConsoleStack]:
    async with console_stack(kafka_bootstrap, postgres_url, double, unique_name, tmp_path) as s:
        yield s


def _sign_in(driver: WebDriver, stack: ConsoleStack, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{stack.url}/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "sign-in").click()
    assert f"{name} (" in driver.find_element(By.ID, "who").text


def _heading_says(driver: WebDriver, text: str) -> None:
    """Wait for the next page's heading (a form's answer replaces the page)."""
    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: text in d.find_element(By.TAG_NAME, "h1").text
    )


def _shot(driver: WebDriver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def _operator_replays(driver: WebDriver, stack: ConsoleStack) -> None:
    _sign_in(driver, stack, "olle")
    assert f"worker-{stack.worker}" in driver.page_source
    _shot(driver, "console-overview")
    driver.get(f"{stack.url}/dead-letters?worker={stack.worker}")
    assert "1 dead letters match" in driver.find_element(By.ID, "count").text
    driver.find_element(By.CSS_SELECTOR, "a.letter").click()
    assert driver.find_element(By.ID, "error-class").text == "register_rejected"
    assert "19121212****" in driver.find_element(By.ID, "value").text
    assert PATIENT not in driver.page_source
    _shot(driver, "console-dead-letter")
    driver.find_element(By.ID, "plan-replay").click()  # the dry run
    assert "1 would be replayed" in driver.find_element(By.ID, "plan-summary").text
    driver.find_element(By.ID, "reason").send_keys("the register's rule was fixed")
    driver.find_element(By.ID, "confirm-replay").click()
    assert "replayed 1, refused 0" in driver.find_element(By.CSS_SELECTOR, ".replayed").text
    driver.find_element(By.PARTIAL_LINK_TEXT, "trace record").click()

    def accepted(d: WebDriver) -> bool:  # the replayed event's result arrives
        d.refresh()
        return "accepted" in d.find_element(By.CSS_SELECTOR, "table.results").text

    WebDriverWait(driver, 30, poll_frequency=0.5, ignored_exceptions=(Exception,)).until(accepted)


def _viewer_is_refused(driver: WebDriver, stack: ConsoleStack) -> None:
    _sign_in(driver, stack, "vera")
    driver.get(f"{stack.url}/dead-letters?worker={stack.worker}")
    driver.find_element(By.CSS_SELECTOR, "a.letter").click()
    assert driver.find_elements(By.ID, "plan-replay") == []
    assert driver.find_elements(By.ID, "reveal") == []
    position = driver.current_url.split("/dead-letters/", 1)[1].replace("/", ":")
    # the buttons are missing; the endpoint refuses a form forged with the page's own token
    driver.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/replay/run';
        for (const [name, value] of [['position', arguments[0]], ['reason', 'curious'],
             ['csrf_token', document.querySelector('input[name=csrf_token]').value]]) {
          const input = document.createElement('input');
          input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
        """,
        position,
    )
    _heading_says(driver, "only an operator may do this")


def _post_without_csrf_is_refused(driver: WebDriver, stack: ConsoleStack) -> None:
    _sign_in(driver, stack, "olle")
    driver.get(f"{stack.url}/dead-letters?worker={stack.worker}")
    driver.find_element(By.CSS_SELECTOR, "a.letter").click()
    driver.execute_script(
        "document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove());"
    )
    driver.find_element(By.ID, "plan-replay").click()
    _heading_says(driver, "missing CSRF token")


async def test_an_operator_replays_in_the_browser_and_a_viewer_cannot(
    stack: ConsoleStack, browser: WebDriver
) -> None:
    # the browser blocks: it runs in a thread while the worker's runtime runs on this loop
    await asyncio.to_thread(_post_without_csrf_is_refused, browser, stack)
    await asyncio.to_thread(_viewer_is_refused, browser, stack)
    await asyncio.to_thread(_operator_replays, browser, stack)
