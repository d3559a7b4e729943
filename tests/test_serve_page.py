"""The page at ``GET /`` driven in a real headless Chromium (Debian's chromium + chromium-driver, selenium):
type a query, the expected top hit appears; compare two sentences, a score appears."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from jtcse.serve.config import ModelSource, ServeConfig
from serve_helpers import running_server

CORPUS = [
    "A man is playing a guitar on the stage.",
    "The chef slices fresh vegetables in the kitchen.",
    "Heavy snow closed the mountain roads overnight.",
    "Children are building a sandcastle at the beach.",
    "Stock prices fell sharply after the announcement.",
]
QUERY = "kids play with sand by the sea"
EXPECTED_TOP = CORPUS[3]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,900",
)


def _find(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (extra 'test')")
    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("no Chromium here: install Debian's chromium and chromium-driver (see .ci/run)")
    os.environ["SE_OFFLINE"] = "true"  # selenium must not try to download a browser or a driver
    profile = tempfile.mkdtemp(prefix="jtcse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page_server(minilm_dir, tmp_path_factory) -> str:
    corpus = tmp_path_factory.mktemp("page") / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    config = ServeConfig([ModelSource("minilm", str(minilm_dir))], corpus=corpus, device="cpu")
    with running_server(config) as url:
        yield url


def test_search_and_compare_in_a_real_browser(browser, page_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(f"{page_server}/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "model-line"), "5 corpus sentences"))
    browser.find_element(By.ID, "query").send_keys(QUERY)
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "search-status"), "top 5"))
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits li .text")
    assert hits[0].text == EXPECTED_TOP
    assert len(hits) == 5

    browser.find_element(By.ID, "sentence-a").send_keys("A cat sleeps on the sofa.")
    browser.find_element(By.ID, "sentence-b").send_keys("A kitten naps on the couch.")
    browser.find_element(By.CSS_SELECTOR, "#compare-form button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "compare-result"), "cosine similarity"))
    score = float(browser.find_element(By.CSS_SELECTOR, "#compare-result strong").text)
    assert 0.5 < score <= 1.0

    shot = os.environ.get("JTCSE_SERVE_SCREENSHOT")  # how docs/serve_page.png is made
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(shot)
