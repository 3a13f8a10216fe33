"""A reviewer's Swagger UI, driven in headless Chromium against the real service.

Open /docs, find every program's example, run 第十九条's with "Try it out" and read the award in
the response panel; the page must load nothing from anywhere but the service (reviewers'
networks may have no internet: the browser is also told that no other host exists).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without them
the test skips locally and fails in CI (``CI`` set), so it never passes by not running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.examples import examples
from tests.test_operations import Service, running_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PROGRAM = "ipa2022-art19"
OPERATION = "operations-programs-programs-calculate"  # Swagger UI: operations-{tag}-{operationId}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# data: and blob: URLs are inline; chrome:// is the browser's own start page before /docs.
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}
WAIT_S = 30

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    reason = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs them", pytrace=False)
    pytest.skip(f"{reason}; apt-get install chromium chromium-driver", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the check: the skip names the cause)
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("swagger")) as s:
        yield s


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,2000",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'profile'}",
        # Offline, as on a reviewer's network: every host but this one fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: WebDriver) -> set[str]:
    """Every URL the page asked for: the network log (requests that failed too) and the
    page's own resource timing entries."""
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    urls.update(
        driver.execute_script(
            "return performance.getEntriesByType('navigation')"
            ".concat(performance.getEntriesByType('resource')).map(e => e.name)"
        )
    )
    return urls


def test_a_reviewer_runs_the_art19_example_offline(service: Service, browser: WebDriver) -> None:
    example = examples()[PROGRAM]["value"]
    api = httpx.post(f"{service.url}/v1/programs/{PROGRAM}/calculate", json=example)
    assert api.status_code == 200
    expected: dict[str, Any] = api.json()
    programs = {p["id"] for p in httpx.get(f"{service.url}/v1/programs").json()}

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{service.url}/docs")
    operation: WebElement = wait.until(lambda d: d.find_element(By.ID, OPERATION))
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()

    try_it = wait.until(lambda _: operation.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    if try_it.text.strip() == "Try it out":  # the docs open in try-it-out mode already
        try_it.click()
    chooser = Select(
        wait.until(
            lambda _: operation.find_element(By.CSS_SELECTOR, "select.examples-select-element")
        )
    )
    # One passing example per program, and beside it a failing one (ineligible, with reasons).
    offered = {o.get_attribute("value") for o in chooser.options}
    assert offered == programs | {f"{p}-failing" for p in programs}
    chooser.select_by_value(PROGRAM)
    body = operation.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
    wait.until(lambda _: json.loads(body.get_attribute("value") or "null") == example)

    program_id = operation.find_element(By.CSS_SELECTOR, "input[placeholder='program_id']")
    program_id.clear()
    program_id.send_keys(PROGRAM)
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()

    live = ".live-responses-table .response"
    panel: WebElement = wait.until(lambda _: operation.find_element(By.CSS_SELECTOR, live))
    assert panel.find_element(By.CSS_SELECTOR, ".response-col_status").text.strip() == "200"
    shown = json.loads(
        panel.find_element(By.CSS_SELECTOR, ".response-col_description pre").get_attribute(
            "textContent"
        )
        or "null"
    )
    assert shown["award"]["amount"] == expected["award"]["amount"]
    assert Decimal(shown["award"]["amount"]) > 0
    assert shown == expected  # the whole answer, rules version included
    # Response headers are listed under the body: the service's request id among them.
    assert "x-request-id: " in (panel.get_attribute("textContent") or "").lower()

    urls = requested_urls(browser)
    assert f"{service.url}/v1/programs/{PROGRAM}/calculate" in urls
    assert f"{service.url}/static/docs/swagger-ui-bundle.js" in urls
    elsewhere = {
        u
        for u in urls
        if urlsplit(u).scheme in NETWORK_SCHEMES and urlsplit(u).hostname not in LOCAL_HOSTS
    }
    assert not elsewhere, f"the page reached beyond the service: {sorted(elsewhere)}"
