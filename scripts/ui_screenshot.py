#!/usr/bin/env python
"""Check in a real browser what `metarl ui` shows first, and save a screenshot of it.

Logs a tiny fake search (one search run, a few trial runs with a `fitness` metric and two
hyperparameters; no training) to a temporary SQLite store through `SearchTracker`, the way a
search logs, starts `metarl ui` on it, and points headless Chromium at the address
`metarl ui` prints. Passes (exit 0) if the rendered page is the runs table with the search
run, its expander for the nested trials and the fitness and hyperparameter columns, and not
MLflow's GenAI overview. Look at the PNG too: the check reads the page's text, not pixels.

Needs Chromium (Debian: `apt-get install chromium`); CI has none, so the test suite does
not run this. Takes about a minute, most of it MLflow starting:

    python scripts/ui_screenshot.py                    # writes /tmp/metarl_ui.png
    python scripts/ui_screenshot.py --expanded /tmp/metarl_ui_expanded.png  # trials shown too
    python scripts/ui_screenshot.py --tracking-uri sqlite:////abs/mlflow.db --out ui.png
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from metarl.tracking import SearchTracker

URL_TIMEOUT_S = 240.0  # MLflow takes 20-30 s to start on 2 loaded cores
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HPARAMS = ("lr", "clip_eps")
GENERATIONS, MEMBERS = 3, 2
TRIALS = GENERATIONS * MEMBERS
# text of the page MLflow 3.17 opens by default for a new experiment
GENAI_MARKERS = ("Token Usage", "Detect Issues")


def main() -> int:
    args = parse_args()
    browser = args.browser or next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    if browser is None:
        sys.exit("no Chromium found: install it (apt-get install chromium) or pass --browser")
    with tempfile.TemporaryDirectory(prefix="metarl-ui-check-") as tmp:
        uri = args.tracking_uri or fake_search(Path(tmp))
        port = args.port or free_port()
        ui = start_ui(uri, port)
        try:
            url = read_url(ui)
            print(f"metarl ui printed {url}")
            dom = render(browser, url, args.out, Path(tmp))
            if args.expanded:
                render_expanded(browser, url, args.expanded, Path(tmp))
                print(f"search run expanded: {args.expanded}")
        finally:
            stop(ui)
    print(f"screenshot: {args.out}")
    problems = check_page(dom, expect_search=args.tracking_uri is None)
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("OK: the first page is the runs table with the fitness and hyperparameter columns")
    return 1 if problems else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/metarl_ui.png", help="screenshot path (PNG)")
    parser.add_argument("--tracking-uri", help="screenshot this store instead of a fake search")
    parser.add_argument("--port", type=int, help="port for metarl ui (default: a free one)")
    parser.add_argument("--browser", help="Chromium executable (default: found on PATH)")
    parser.add_argument("--expanded", metavar="PNG", help="also screenshot the page after "
                        "clicking the first search run's expander (needs `pip install "
                        "websockets`)")
    return parser.parse_args()


def fake_search(folder: Path) -> str:
    """A finished search run with GENERATIONS x MEMBERS trials, logged as a search logs them."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = SearchTracker.start(
        tracking_uri=uri, experiment="ui-check", run_name="ui-check-20260101-120000",
        params={"outer.generations": 3}, spec_text='[search]\nkind = "hparams"\n',
        tags={"metarl.kind": "hparams", "metarl.search": "ui-check"})
    for gen in range(GENERATIONS):
        for member in range(MEMBERS):
            fitness = round(0.3 + 0.1 * gen + 0.05 * member, 2)
            hparams = {"lr": round(1e-4 * (1 + member + gen), 6),
                       "clip_eps": round(0.1 + 0.05 * gen, 2)}
            tracker.log_trial(f"g{gen:04d}-m{member:03d}", hparams, {"fitness": fitness},
                              tags={"metarl.generation": str(gen), "metarl.member": str(member),
                                    "metarl.trial": "candidate"})
        best = round(0.3 + 0.1 * gen + 0.05 * (MEMBERS - 1), 2)
        tracker.log_metrics({"generation": gen, "best_fitness": best}, step=gen)
    tracker.finish("FINISHED")
    return uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ui(uri: str, port: int) -> subprocess.Popen:
    # its own session, so that stop() can end it and the MLflow processes it starts
    return subprocess.Popen([sys.executable, "-m", "metarl", "ui", "--port", str(port),
                             "--tracking-uri", uri], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def read_url(ui: subprocess.Popen) -> str:
    """The first line `metarl ui` prints on stdout: it does so once the UI answers."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(ui.stdout.readline()), daemon=True)
    reader.start()
    reader.join(URL_TIMEOUT_S)
    if not lines or not lines[0].strip():
        sys.exit(f"metarl ui printed no address within {URL_TIMEOUT_S:.0f} s "
                 f"(exit status {ui.poll()})")
    return lines[0].strip()


def render(browser: str, url: str, out: str, tmp: Path) -> str:
    """Screenshot `url` into `out` and return the page's HTML after its scripts ran."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp / 'profile'}", "--window-size=1600,1000",
              "--virtual-time-budget=15000"]
    quiet = {"stderr": subprocess.DEVNULL, "timeout": 120, "check": True}
    subprocess.run([*common, f"--screenshot={out}", url], stdout=subprocess.DEVNULL, **quiet)
    return subprocess.run([*common, "--dump-dom", url], stdout=subprocess.PIPE, text=True,
                          **quiet).stdout


def render_expanded(browser: str, url: str, out: str, tmp: Path) -> None:
    """Screenshot `url` after clicking the first expander, through the DevTools protocol:
    a headless screenshot cannot click."""
    import asyncio
    import base64
    import json
    import time
    import urllib.request

    import websockets

    port = free_port()
    chrome = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--remote-debugging-port={port}", f"--user-data-dir={tmp / 'profile-cdp'}",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def drive(page: str) -> None:
        async with websockets.connect(page, max_size=None) as ws:
            async def call(method: str, **params: object) -> dict:
                call.n = getattr(call, "n", 0) + 1
                await ws.send(json.dumps({"id": call.n, "method": method, "params": params}))
                while (reply := json.loads(await ws.recv())).get("id") != call.n:
                    pass
                return reply.get("result", {})

            await call("Emulation.setDeviceMetricsOverride", width=1600, height=1000,
                       deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", url=url)
            await asyncio.sleep(15)  # as --virtual-time-budget=15000 above
            await call("Runtime.evaluate", expression=(
                "document.querySelector('.ag-row button[data-component-id*=runnamecellrenderer]')"
                "?.click()"))
            await asyncio.sleep(3)
            shot = await call("Page.captureScreenshot", format="png")
            Path(out).write_bytes(base64.b64decode(shot["data"]))

    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(drive(pages[0]["webSocketDebuggerUrl"]))
    finally:
        chrome.terminate()
        chrome.wait()


def check_page(dom: str, expect_search: bool) -> list[str]:
    """What is wrong with the first page, from its rendered HTML."""
    text = re.sub(r"<[^>]+>", " ", dom)
    problems = [f"the GenAI overview is showing ({marker!r} on the page)"
                for marker in GENAI_MARKERS if marker in text]
    wanted = ["Runs", "fitness", "best_fitness"]
    if expect_search:
        wanted += ["ui-check-20260101-120000", *HPARAMS]
    problems += [f"{word!r} is not on the page" for word in wanted
                 if not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)]
    if expect_search:
        if not re.search(rf"\b{1 + TRIALS}\s+matching\s+runs", text):
            problems.append(f"the table does not count the search run and its {TRIALS} trials")
        # the button MLflow's run-name cell shows on a run with nested children
        if not re.search(r'<button[^>]*data-component-id="[^"]*runnamecellrenderer', dom):
            problems.append("no expander for the search run's nested trials")
    return problems


def stop(ui: subprocess.Popen) -> None:
    try:  # SIGTERM: Ctrl-C would make MLflow's workers still starting print tracebacks
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait()


if __name__ == "__main__":
    sys.exit(main())
