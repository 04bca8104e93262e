"""The Gradio leaderboard app in a real headless Chromium: start it on loopback over a fixture results folder,
check the table shows every result row with model links, filter by task through the dropdown and by model
search, and keep a screenshot under `test-artifacts/` (or `$AFFECTLAB_TEST_ARTIFACTS`). Chromium may only
reach 127.0.0.1 (host resolver rules map every other name to nothing)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="needs Debian chromium + chromium-driver (`apt-get install chromium chromium-driver`)")
MODELS = {"org/sent-strong": ("sentiment", "tweet_eval", 4), "org/sent-weak": ("sentiment", "tweet_eval", 2),
          "org/emo-model": ("emotions", "goemotions", 3)}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    from affectlab.results import result_record, save_result

    root = tmp_path_factory.mktemp("results")
    y = [0, 1, 2, 1, 0] * 8
    for model, (task, dataset, every) in MODELS.items():
        p = [t if i % every else (t + 1) % 3 for i, t in enumerate(y)]
        save_result(result_record(model_repo=model, revision="c" * 40, task=task, dataset=dataset, split="test",
                                  metrics={"accuracy": float(np.mean(np.array(y) == np.array(p)))}, y_true=y, y_pred=p,
                                  dataset_rows=[{"i": i} for i in range(len(y))]), root)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(results_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "NO_PROXY": "127.0.0.1,localhost"}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(REPO / "leaderboard" / "app.py"), "--results", str(results_dir),
                                 "--port", str(port), "--n-boot", "200", "--hub-url", "http://hub.invalid"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"leaderboard app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def table_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#leaderboard-table").text


def wait_for(cond, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_table_rows_filters_and_screenshot(app_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(app_url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#leaderboard-table") and
             all(m in table_text(browser) for m in MODELS), what="all fixture rows in the table")
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#leaderboard-table a")}
    assert links["org/sent-strong"] == "http://hub.invalid/org/sent-strong/tree/cccccccccccc"
    # the grid renders cells as lines: task, dataset, split, rank, model, metric, value, ci, ...
    cells = table_text(browser).splitlines()
    assert sum(c in MODELS for c in cells) == 3
    expected = {"org/sent-strong": ("1", "0.75"), "org/sent-weak": ("2", "0.5"), "org/emo-model": ("1", "0.65")}
    for model, (rank, value) in expected.items():  # every 4th / 2nd / 3rd of 40 predictions wrong
        i = cells.index(model)
        assert cells[i - 4] == MODELS[model][0] and cells[i - 3] == MODELS[model][1]
        assert (cells[i - 1], cells[i + 1], cells[i + 2]) == (rank, "accuracy", value)
    weak = cells.index("org/sent-weak")
    assert cells[weak + 4: weak + 7] == ["0.25", "0.000", "yes"]  # margin, p vs leader, significant
    artifacts = Path(os.environ.get("AFFECTLAB_TEST_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(artifacts / "leaderboard_all.png"))

    task_input = browser.find_element(By.CSS_SELECTOR, "#task-filter input")
    task_input.click()
    task_input.send_keys(Keys.CONTROL, "a")
    task_input.send_keys("emotions")
    task_input.send_keys(Keys.ENTER)
    wait_for(lambda: "org/sent-strong" not in table_text(browser) and "org/emo-model" in table_text(browser),
             what="the task filter to keep only the emotions rows")
    assert "org/sent-weak" not in table_text(browser)
    browser.save_screenshot(str(artifacts / "leaderboard_filtered.png"))
    assert (artifacts / "leaderboard_filtered.png").stat().st_size > 1000
