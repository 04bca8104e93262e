"""The leaderboard app in a real headless Chromium, deployed as on a Space: it reads its results from a results
dataset (`hf://datasets/board/results`) on the Hub emulator, with the token of a bot user that may not write
to that dataset. Every family tab renders its rows (links, CIs, significance marks, results on other rows
apart), a filter changes them, the plots render, the About tab has the protocols, a broken submission is
refused with what is wrong, and a valid one opens a pull request on the emulator. Screenshots of every view
are kept under `test-artifacts/` (or `$AFFECTLAB_TEST_ARTIFACTS`). Chromium may only reach 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import board_records

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="needs Debian chromium + chromium-driver (`make browser`)")
OWNER, BOT = "hf_boardOwnerToken000000000001", "hf_leaderboardBotToken00000002"
WIDTH = 1600  # a researcher's browser window
ARTIFACTS = Path(os.environ.get("AFFECTLAB_TEST_ARTIFACTS", REPO / "test-artifacts"))
TABS = {  # tab id -> (button label, models of its first table, in rank order)
    "emotions": ("Emotions", ["org/roberta-goemotions", "org/minilm-goemotions-lora", "local/minilm-demo"]),
    "sentiment": ("Sentiment", ["local/minilm", "local/tiny-bert", "local/tiny-gpt2"]),
    "criterion-matching": ("Criterion matching", ["org/gemma-redsm5-nli", "org/deberta-redsm5-nli"]),
    "evidence-spans": ("Evidence spans", ["org/spanbert-redsm5-evidence", "org/minilm-redsm5-evidence"]),
    "persona-regression": ("Persona regression", ["org/roberta-emobank-persona", "org/minilm-emobank"]),
    "llm-sft": ("LLM SFT", ["org/qwen-emotions-sft", "org/gemma-emotions-sft"]),
}


@pytest.fixture(scope="module")
def hub():
    from huggingface_hub import CommitOperationAdd, HfApi, constants

    from affectlab.results import result_path
    from affectlab.testing.hub_emulator import HubEmulator

    with pytest.MonkeyPatch.context() as mp, \
            HubEmulator(tokens={OWNER: "owner", BOT: "leaderboard-bot"}, orgs={"owner": ["board"]}) as server:
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        api = HfApi(endpoint=server.url, token=OWNER)
        api.create_repo("board/results", repo_type="dataset")
        api.create_commit("board/results", repo_type="dataset", commit_message="results",
                          operations=[CommitOperationAdd(result_path(r), json.dumps(r).encode())
                                      for r in board_records.records()])
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(hub, tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("app")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "PYTHONPATH")}
    env.update(hub.client_env(token=BOT), HF_HOME=str(home / "hf_home"), GRADIO_ANALYTICS_ENABLED="False",
               OMP_NUM_THREADS="1", NO_PROXY="127.0.0.1,localhost", AFFECTLAB_RESULTS="hf://datasets/board/results")
    log = home / "app.log"
    with open(log, "w") as fh:  # no --results: the Space reads $AFFECTLAB_RESULTS
        proc = subprocess.Popen([sys.executable, str(REPO / "leaderboard" / "app.py"), "--port", str(port),
                                 "--n-boot", "200", "--hub-url", "http://hub.invalid"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, cwd=home)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 240
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
        proc.wait(timeout=30)
        assert BOT not in log.read_text()


@pytest.fixture(scope="module")
def browser(app_url, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={WIDTH},1000", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.get(app_url)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(cond, timeout=90, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001 - elements re-render while Gradio updates
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def open_tab(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    wait_for(lambda: any(b.text.strip() == label for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']")),
             what=f"the {label} tab")
    next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == label).click()


def screenshot(driver, name: str) -> Path:
    """A full-page screenshot: the viewport set to the document's height (Chrome DevTools device metrics, so the
    browser's own frame does not cut the page's bottom off), then reset. Returns the PNG, kept as an artifact."""
    from PIL import Image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": min(max(900, height + 24), 8000),
                                                                  "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.8)
    path = ARTIFACTS / f"leaderboard_{name}.png"
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with Image.open(path) as image:
        assert image.size[0] == WIDTH and image.size[1] >= min(height, 8000)  # the whole page, nothing cut off
    assert path.stat().st_size > 10_000
    return path


def rows_of(driver, css: str) -> list[list[str]]:
    """The body rows of a Gradio dataframe as lists of cell texts (its virtual rows, not the hidden sizing row)."""
    return driver.execute_script("""
        const root = document.querySelector(arguments[0]);
        if (!root) return [];
        return [...root.querySelectorAll("[role=row].virtual-row")].map(
            row => [...row.querySelectorAll("[role=gridcell]")].map(c => c.innerText.trim()));
    """, css)


def headers_of(driver, css: str) -> list[str]:
    return driver.execute_script("""
        const root = document.querySelector(arguments[0]);
        return root ? [...root.querySelectorAll("thead th")].map(c => c.innerText.trim()) : [];
    """, css)


def cut_off(driver, css: str) -> int:
    """How many pixels of a Gradio dataframe's columns do not fit its width (0: every column is visible)."""
    return driver.execute_script("""
        const view = document.querySelector(arguments[0] + " .virtual-table-viewport");
        return view ? Math.max(0, view.scrollWidth - view.clientWidth) : -1;
    """, css)


def models_in(driver, css: str, known) -> list[str]:
    return [c for row in rows_of(driver, css) for c in row if c in known]


def test_every_tab_renders_its_rows(browser):
    from selenium.webdriver.common.by import By

    wait_for(lambda: "affectlab leaderboard" in text(browser, "#lb-header"), what="the header")
    assert "18 results of 15 models on 5 datasets" in text(browser, "#lb-header")
    for key, (label, models) in TABS.items():
        open_tab(browser, label)
        css = f"#table-{key}-0"
        wait_for(lambda: models_in(browser, css, models) == models, what=f"the {label} rows in rank order")
        rows = rows_of(browser, css)
        assert [r[0] for r in rows] == [str(i) for i in range(1, len(models) + 1)]  # ranks
        assert all(r[3].startswith("[") and r[3].endswith("]") for r in rows)   # 95% CI
        assert rows[0][5] == "—" and all(r[5] for r in rows[1:])                # vs #1: leader, then p or ✱
        headers = headers_of(browser, css)
        assert headers[:6] == ["Rank", "Model", headers[2], "95% CI", "Δ to #1", "vs #1"] and headers[2].endswith("↑")
        assert cut_off(browser, css) <= 1, f"the {label} table is cut off at {WIDTH} px"
        protocol = text(browser, f"#tab-{key} .protocol")
        assert "Split" in protocol and "evaluated rows" in protocol and "seeds" in protocol
        screenshot(browser, key)
        if key == "emotions":
            links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, f"{css} a")}
            rev = board_records.SHA["roberta"][:12]
            assert links["org/roberta-goemotions"] == f"http://hub.invalid/org/roberta-goemotions/tree/{rev}"
            assert "local/minilm-demo" not in links  # never pushed: no link
            assert links["roberta-base"] == "http://hub.invalid/FacebookAI/roberta-base"
            assert any(c.startswith("✱ p") for r in rows for c in r)
            assert "the official dev split (5,426 comments)" in protocol and "5,427 comments" in protocol
            other = rows_of(browser, "#other-emotions-0")  # the 32-row smoke evaluation, listed apart
            assert len(other) == 1 and other[0][0].endswith("(32 rows)") and other[0][2] == "org/minilm-smoke"
            assert "org/minilm-smoke" not in models_in(browser, css, ["org/minilm-smoke"])
        if key == "sentiment":
            assert {"p50 ms", "samples/s", "TTFT ms"} <= set(headers)
            speed = dict(zip(headers, rows[0]))
            assert speed["p50 ms"] == "5.99" and speed["samples/s"] == "198" and speed["Params"] == "22.7M"


def test_filters_change_the_rows(browser):
    from selenium.webdriver.common.by import By

    open_tab(browser, "Emotions")
    css = "#table-emotions-0"
    models = TABS["emotions"][1]
    wait_for(lambda: models_in(browser, css, models) == models, what="the emotions rows")
    box = browser.find_element(By.CSS_SELECTOR, "#search-emotions textarea, #search-emotions input")
    box.send_keys("roberta")
    wait_for(lambda: models_in(browser, css, models) == ["org/roberta-goemotions"], what="the search to filter")
    wait_for(lambda: not [e for e in browser.find_elements(By.CSS_SELECTOR, "#other-emotions-0, #other-heading-emotions-0")
                          if e.is_displayed()],
             what="the other-rows table to hide (no row left)")
    screenshot(browser, "filtered")
    box.clear()
    box.send_keys(" ")  # a change event with an empty search
    wait_for(lambda: models_in(browser, css, models) == models, what="the rows back")
    lora = next(label for label in browser.find_elements(By.CSS_SELECTOR, "#method-emotions label")
                if label.text.strip() == "LoRA")
    lora.click()
    wait_for(lambda: models_in(browser, css, models) == ["org/roberta-goemotions", "local/minilm-demo"],
             what="the method filter to drop the LoRA row")
    lora.click()


def plot_src(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    imgs = driver.find_elements(By.CSS_SELECTOR, f"{css} img")
    ok = imgs and driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 300", imgs[0])
    return imgs[0].get_attribute("src") if ok else ""


def test_plots_render(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_tab(browser, "Plots")
    wait_for(lambda: plot_src(browser, "#quality-plot"), what="the quality plot")
    note = text(browser, "#plot-note")
    assert "Pareto front" in note and "local/tiny-gpt2" in note and "local/minilm" in note
    wait_for(lambda: plot_src(browser, "#label-plot"), what="the per-label plot")
    screenshot(browser, "plots")
    before = plot_src(browser, "#label-plot")
    box = browser.find_element(By.CSS_SELECTOR, "#plot-table input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("Emotions — goemotions")
    box.send_keys(Keys.ENTER)
    wait_for(lambda: "6 labels" in text(browser, "#label-note") and plot_src(browser, "#label-plot") != before,
             what="the per-label breakdown of the emotions leader")
    assert "org/roberta-goemotions" in browser.find_element(By.CSS_SELECTOR, "#label-model input").get_attribute("value")
    screenshot(browser, "plots_per_label")


def test_about_has_protocols_statistics_and_splits(browser):
    open_tab(browser, "About")
    wait_for(lambda: "Statistics" in text(browser, "#about-text"), what="the About text")
    about = text(browser, "#about-text")
    for title in ("Emotions", "Criterion matching", "Evidence spans", "Persona regression", "LLM SFT"):
        assert title in about
    assert "paired bootstrap" in about and "validation (GLUE SST-2 dev, 872 sentences)" in about
    screenshot(browser, "about")


def uploaded(driver) -> str | None:
    """The name of the file in the upload box, or None."""
    return driver.execute_script("""
        const cell = document.querySelector("#submit-file td.filename");
        return cell ? cell.getAttribute("aria-label") : null;
    """)


def test_submissions_refused_with_reasons_then_a_pull_request(browser, hub, tmp_path):
    from selenium.webdriver.common.by import By

    open_tab(browser, "Submit")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#submit-text textarea"), what="the Submit tab")
    broken = board_records.submission(valid=False)
    del broken["versions"], broken["hardware"]  # keep the pasted text short
    box = browser.find_element(By.CSS_SELECTOR, "#submit-text textarea")
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
                           box, json.dumps(broken))
    box.send_keys(" ")
    browser.find_element(By.CSS_SELECTOR, "#submit-button").click()
    wait_for(lambda: "refused" in text(browser, "#submit-status"), what="the refusal")
    status = text(browser, "#submit-status")
    assert "versions: missing" in status and "hardware: missing" in status
    broken = board_records.submission(valid=False)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    browser.find_element(By.CSS_SELECTOR, "#submit-file input[type=file]").send_keys(str(path))
    wait_for(lambda: uploaded(browser) == "broken.json", what="the upload")
    browser.find_element(By.CSS_SELECTOR, "#submit-button").click()
    wait_for(lambda: "model.revision" in text(browser, "#submit-status"), what="the refusal of the uploaded record")
    status = text(browser, "#submit-status")
    assert "is not a model on the Hub (<org>/<name>): push the model" in status and "are not the rows of sst2 (train_heldout)" in status
    screenshot(browser, "submit_refused")
    repo = hub.repos[("dataset", "board/results")]
    assert repo.discussions == []

    browser.find_element(By.CSS_SELECTOR, "#submit-file button[aria-label='Clear']").click()
    wait_for(lambda: uploaded(browser) is None, what="the upload to clear")
    path = tmp_path / "electra.json"
    path.write_text(json.dumps(board_records.submission()))
    browser.find_element(By.CSS_SELECTOR, "#submit-file input[type=file]").send_keys(str(path))
    wait_for(lambda: uploaded(browser) == "electra.json", what="the upload")
    browser.find_element(By.CSS_SELECTOR, "#submit-button").click()
    wait_for(lambda: "Pull request #1 opened" in text(browser, "#submit-status"), what="the pull request")
    (pr,) = repo.discussions
    assert pr.is_pr and pr.author == "leaderboard-bot" and pr.title == "Submit new-org/electra-sst2 on sst2 (train_heldout)"
    added = [p for p in repo.commits[repo.pr_refs["refs/pr/1"]].tree if p.startswith("new-org/")]
    assert len(added) == 1 and added[0].endswith(".json")
    assert not [p for p in repo.commits[repo.branches["main"]].tree if p.startswith("new-org/")]
    link = browser.find_element(By.CSS_SELECTOR, "#submit-status a").get_attribute("href")
    assert link == f"{hub.url}/datasets/board/results/discussions/1"
    wait_for(lambda: "leaderboard-bot" in text(browser, "#submissions-table"), what="the submissions queue")
    screenshot(browser, "submit_ok")
