"""Regenerate the README screenshots: the Dagster lineage graph and the HTML report.

    .venv/bin/python docs/screenshots.py   (needs `make demo` first, and chromium)

Drives headless Chromium over the DevTools protocol on 127.0.0.1 so it can dismiss the UI's
welcome dialog before taking the picture.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

from websockets.sync.client import connect

from openmrr.report import write_report

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not answer")


def capture(url: str, out: Path, width: int, height: int, script: str = "", settle: float = 8) -> None:
    port = free_port()
    profile = tempfile.mkdtemp()
    browser = subprocess.Popen([shutil.which("chromium") or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                f"--remote-debugging-port={port}", f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/json/version")
        page = next(t for t in json.loads(urlopen(f"http://127.0.0.1:{port}/json").read()) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as devtools:
            counter = iter(range(1, 10_000))

            def call(method: str, **params: object) -> dict:
                number = next(counter)
                devtools.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    message = json.loads(devtools.recv())
                    if message.get("id") == number:
                        return message.get("result", {})

            call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=url)
            time.sleep(settle)
            if script:
                call("Runtime.evaluate", expression=script)
                time.sleep(settle)
            shot = call("Page.captureScreenshot", format="png")
            out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.terminate()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    warehouse = ROOT / "build" / "demo.duckdb"
    page = write_report(warehouse, ROOT / "build" / "report")
    capture(page.as_uri(), IMAGES / "report.png", 1100, 1500, settle=2)
    port = free_port()
    home = tempfile.mkdtemp()
    environment = {**os.environ, "DAGSTER_HOME": home, "OPENMRR_DATA_DIR": str(ROOT / "seeds" / "demo"),
                   "OPENMRR_WAREHOUSE": str(warehouse)}
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info")
        skip_dialog = "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Skip')?.click()"
        capture(f"http://127.0.0.1:{port}/asset-groups", IMAGES / "lineage.png", 1600, 900, skip_dialog, settle=10)
    finally:
        server.terminate()
        shutil.rmtree(home, ignore_errors=True)
    print(f"written: {sorted(p.name for p in IMAGES.iterdir())}")


if __name__ == "__main__":
    main()
