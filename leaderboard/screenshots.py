"""Full-page screenshots of every view of the leaderboard app in headless Chromium (Debian `chromium` +
`chromium-driver`, `make browser`): each family tab and each of its dataset tabs, the plots (the first table
with speed, then the tables named by --plot with their per-label breakdown), About, Submit, and Submit after
checking a record (the smallest of the results: a `local/` record is refused, with the reasons).

    python leaderboard/screenshots.py --results outputs/smoke/results outputs/bench_sentiment/results \
        --out outputs/leaderboard_screenshots [--width 1600]

The app is started on a free 127.0.0.1 port in a subprocess (offline) and stopped afterwards; Chromium may
only reach 127.0.0.1. Prints one line per PNG written.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(results: list[str], port: int, n_boot: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False", NO_PROXY="127.0.0.1,localhost")
    cmd = [sys.executable, str(HERE / "app.py"), "--port", str(port), "--n-boot", str(n_boot)]
    for r in results:
        cmd += ["--results", r]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 600
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.terminate()
            sys.exit(f"leaderboard app did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def chromium(width: int, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={width},1000", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)


def wait_for(cond, timeout: float = 120, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception:  # noqa: BLE001 - elements re-render while Gradio updates
            pass
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def tab_buttons(driver, scope: str = ""):
    from selenium.webdriver.common.by import By

    return [b for b in driver.find_elements(By.CSS_SELECTOR, f"{scope} button[role='tab']".strip()) if b.is_displayed()]


def click_tab(driver, label: str, scope: str = "") -> None:
    button = wait_for(lambda: next((b for b in tab_buttons(driver, scope) if b.text.strip() == label), None),
                      what=f"the {label!r} tab")
    button.click()
    time.sleep(0.6)


def images_ready(driver, css: str) -> bool:
    return driver.execute_script("""
        const imgs = [...document.querySelectorAll(arguments[0])].filter(i => i.offsetParent !== null);
        return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 300);
    """, css)


def shoot(driver, width: int, path: Path) -> Path:
    """The whole page (CDP: the viewport set to the document's height, at most 16,000 px, then reset)."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight, "
        "document.querySelector('.gradio-container')?.scrollHeight || 0)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": int(min(max(900, height + 24), 16000)),
                            "deviceScaleFactor": 1, "mobile": False})
    time.sleep(1.0)
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": int(min(max(900, height + 24), 16000)),
                            "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(path)
    return path


def pick_plot(driver, choice: str) -> bool:
    """Pick the Plots tab's leaderboard whose name starts with `choice`; wait for both plots to redraw."""
    from selenium.webdriver.common.keys import Keys

    before = driver.execute_script("return document.querySelector('#label-plot img')?.src || ''")
    box = driver.find_element("css selector", "#plot-table input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(choice)
    box.send_keys(Keys.ENTER)
    try:
        wait_for(lambda: driver.execute_script("return document.querySelector('#label-plot img')?.src || ''") != before
                 and images_ready(driver, "#quality-plot img"), timeout=60, what=f"the plots of {choice}")
    except TimeoutError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return False
    time.sleep(1.0)
    return True


def smallest_record(results: list[str]) -> str | None:
    """The smallest result record of the results folders (for the Submit tab's check)."""
    files = [p for r in results if Path(r).is_dir() for p in Path(r).rglob("results_*.json")]
    return str(min(files, key=lambda p: p.stat().st_size)) if files else None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", action="extend", nargs="+", required=True,
                        help="results folders (several, or repeated)")
    parser.add_argument("--out", default="outputs/leaderboard_screenshots")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--plot", action="append", default=None,
                        help="also shoot the Plots tab for the leaderboard whose name starts with this (repeatable; "
                             "default: the emotions and persona-regression ones)")
    parser.add_argument("--submit-example", default=None,
                        help="a record pasted into the Submit tab and checked (default: the smallest one)")
    args = parser.parse_args(argv)
    args.plot = args.plot if args.plot is not None else ["Emotions — goemotions", "Persona regression — emobank"]
    sys.path.insert(0, str(HERE.parent))
    from affectlab.leaderboard import FAMILIES

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lb-shots-"))
    port = free_port()
    proc = start_app(args.results, port, args.n_boot, work / "app.log")
    driver = None
    try:
        driver = chromium(args.width, str(work / "profile"))
        driver.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: tab_buttons(driver), what="the app")
        for n, fam in enumerate(FAMILIES, 1):
            click_tab(driver, fam.title)
            inner = [b.text.strip() for b in tab_buttons(driver, f"#tab-{fam.key}")]
            if not inner:
                shoot(driver, args.width, out / f"{n:02d}_{fam.key}.png")
                continue
            for i, label in enumerate(inner):
                click_tab(driver, label, f"#tab-{fam.key}")
                wait_for(lambda: driver.execute_script(
                    "return document.querySelectorAll(arguments[0] + ' [role=gridcell]').length", f"#table-{fam.key}-{i}"),
                    what=f"the rows of {fam.title} / {label}")
                shoot(driver, args.width, out / f"{n:02d}_{fam.key}_{i}_{slug(label)}.png")
        click_tab(driver, "Plots")
        wait_for(lambda: images_ready(driver, "#quality-plot img") and images_ready(driver, "#label-plot img"),
                 what="the plots")
        shoot(driver, args.width, out / "07_plots.png")
        for n, choice in enumerate(args.plot, 1):
            if pick_plot(driver, choice):
                shoot(driver, args.width, out / f"07_plots_{n}_{slug(choice)}.png")
        click_tab(driver, "About")
        wait_for(lambda: "Statistics" in driver.find_element("css selector", "#about-text").text, what="About")
        shoot(driver, args.width, out / "08_about.png")
        click_tab(driver, "Submit")
        wait_for(lambda: driver.find_elements("css selector", "#submit-text textarea"), what="Submit")
        shoot(driver, args.width, out / "09_submit.png")
        example = args.submit_example or smallest_record(args.results)
        if example:
            box = driver.find_element("css selector", "#submit-text textarea")
            driver.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
                                  box, Path(example).read_text())
            box.send_keys(" ")
            driver.find_element("css selector", "#submit-button").click()
            wait_for(lambda: driver.find_element("css selector", "#submit-status").text.strip(), what="the verdict")
            driver.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input'));", box)
            time.sleep(1.0)
            shoot(driver, args.width, out / "09_submit_checked.png")
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
