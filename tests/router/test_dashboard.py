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

from db import queries
from db.queries import CountDelta, make_engine
from tests.router.conftest import ADMIN_TOKEN, RouterProcess, error_rows, send_mixed_statuses

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


def _open_with_token(browser: Any, router_proc: RouterProcess) -> None:
    browser.get(f"{router_proc.url}/ui")
    token = browser.find_element(By.ID, "token")
    token.clear()
    token.send_keys(ADMIN_TOKEN)
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", token)


def test_dashboard_totals_search_and_pages(router_proc: RouterProcess, browser: Any) -> None:
    """Sixty models: totals cover them all, the table shows one page, search narrows it."""
    engine = make_engine(router_proc.db_url)
    minute = int(time.time() // 60)
    deltas = []
    for i in range(60):
        delta = CountDelta(model=f"bulk-{i:03d}", minute=minute)
        for _ in range(i + 1):
            delta.record(0.004, 200)
        deltas.append(delta)
    queries.add_counts(engine, deltas)
    engine.dispose()
    _open_with_token(browser, router_proc)
    expected = router_proc.admin().get("/ui/api/overview").json()["totals"]
    assert expected["all"]["requests"] >= sum(range(1, 61))

    def shown_totals() -> dict[str, float] | None:
        got = browser.execute_script(
            "return Object.fromEntries(['all', 'hot', 'cold'].map(p => "
            "[p, Number(document.getElementById('total-' + p).dataset.rate)]))")
        # Not drawn yet: NaN in the page, which arrives here as None (JSON has no NaN).
        return got if not any(v is None or v != v for v in got.values()) else None

    totals = _wait_for(shown_totals)
    assert totals == pytest.approx({k: expected[k]["rate_per_s"] for k in totals})
    assert totals["all"] == pytest.approx(totals["hot"] + totals["cold"])

    rows = "return [...document.querySelectorAll('#models tbody tr')].map(r => r.dataset.model)"
    first = _wait_for(lambda: browser.execute_script(rows))
    assert len(first) == 25  # one page, so what follows the table stays in sight
    browser.find_element(By.ID, "models-next").click()
    second = _wait_for(lambda: (r := browser.execute_script(rows)) != first and r)
    assert len(second) == 25 and not set(first) & set(second)

    browser.find_element(By.ID, "model-search").send_keys("BULK-05")
    found = _wait_for(lambda: (r := browser.execute_script(rows)) and
                      all(m.startswith("bulk-05") for m in r) and r)
    assert sorted(found) == [f"bulk-05{i}" for i in range(10)]
    label = browser.find_element(By.ID, "models-page")
    assert label.get_attribute("data-matching") == "10" and "1/1" in label.text


def test_overview_requires_admin(router_proc: RouterProcess) -> None:
    # The router under test has a token, so an anonymous caller is refused.
    answer = httpx.get(f"{router_proc.url}/ui/api/overview", timeout=10)
    assert answer.status_code == 401
    assert "error" in answer.json()


def test_errors_split_into_4xx_and_5xx_and_pins_show_their_source(
        router_without_cold: RouterProcess, hot_server: str, browser: Any) -> None:
    """The split drawn: per model and overall (tests/router/test_real.py checks the db rows
    and the data behind it), and who pins each model."""
    router = router_without_cold
    expected = send_mixed_statuses(router, hot_server)
    engine = make_engine(router.db_url)
    assert _wait_for(lambda: error_rows(engine) == expected or None)
    engine.dispose()
    _open_with_token(browser, router)

    def drawn() -> dict[str, Any] | None:
        got = browser.execute_script("""
            const cells = m => [...document.querySelectorAll(
                `tr[data-model="${m}"] td.e4xx, tr[data-model="${m}"] td.e5xx`)]
                .map(td => td.textContent);
            const row = m => document.querySelector(`tr[data-model="${m}"]`);
            return {ghost: cells("ghost"), coldm: cells("coldm"), hotm: cells("hotm"),
                    total: [document.getElementById("total-4xx").textContent,
                            document.getElementById("total-5xx").textContent],
                    pins: ["hotm", "coldm", "ghost"].map(m => row(m)?.dataset.pinnedBy),
                    pool: row("hotm")?.querySelector(".pool").textContent};""")
        return got if got["total"] == ["2", "1"] and got["pool"] else None

    shown = _wait_for(drawn)
    assert (shown["ghost"], shown["coldm"], shown["hotm"]) == (["2", "0"], ["0", "1"],
                                                               ["0", "0"])
    assert shown["pins"] == ["policy + admin", "policy", ""]
    assert shown["pool"] == "hot (pinned: policy + admin)"
