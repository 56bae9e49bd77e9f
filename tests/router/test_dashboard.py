"""The /ui dashboard in real headless Chromium against a real router and model servers."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

# selenium is in the `test` extra, imported plainly: a missing one fails the run, never skips it.
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from tests.router.conftest import ADMIN_TOKEN, RouterProcess

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None
                                or shutil.which("chromedriver") is None,
                                reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_dashboard_shows_hot_model_and_edits_weights(
        router_proc: RouterProcess, hot_server: str, browser: Any) -> None:
    admin = router_proc.admin()
    admin.put("/admin/placements/hotm", json={"pool": "hot", "endpoint": hot_server}
              ).raise_for_status()
    admin.post("/admin/experiments", json={"name": "dash-ab", "variants": [
        {"model": "arm-a", "weight": 50}, {"model": "arm-b", "weight": 50}]}).raise_for_status()
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        for _ in range(5):
            assert client.post("/v1/models/hotm:predict",
                               json={"instances": [1.0]}).status_code == 200

    browser.get(f"{router_proc.url}/ui")
    token = browser.find_element(By.ID, "token")
    token.send_keys(ADMIN_TOKEN)
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", token)

    # The page re-renders every 2 s, so read it through scripts rather than held elements.
    shown_pool = 'return document.querySelector(\'tr[data-model="hotm"]\')?.dataset.pool'
    assert _wait_for(lambda: browser.execute_script(shown_pool)) == "hot"

    def edit_weights() -> bool:
        try:
            for arm, weight in (("arm-a", "90"), ("arm-b", "10")):
                field = browser.find_element(By.CSS_SELECTOR, f'input[data-variant="{arm}"]')
                field.clear()
                field.send_keys(weight)
            browser.find_element(By.XPATH, '//div[h3="dash-ab"]//button').click()
        except WebDriverException:  # replaced by a refresh mid-edit (stale, not interactable)
            return False
        return True

    _wait_for(edit_weights)

    def weights() -> list[int]:
        spec = admin.get("/admin/experiments/dash-ab").json()
        return [v["weight"] for v in spec["variants"]]

    assert _wait_for(lambda: weights() == [90, 10])


def test_overview_requires_admin(router_proc: RouterProcess) -> None:
    # The router under test has a token, so an anonymous caller is refused.
    answer = httpx.get(f"{router_proc.url}/ui/api/overview", timeout=10)
    assert answer.status_code == 401
    assert "error" in answer.json()
