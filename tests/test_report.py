"""`openmrr report`: the HTML report renders its charts in a real browser (headless Chromium)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image

from openmrr.report import write_report
from orchestration.refresh import refresh
from tests.helpers import SCENARIOS_DIR

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    refresh(SCENARIOS_DIR / "02-lifecycle" / "data", folder / "w.duckdb")
    return write_report(folder / "w.duckdb", folder / "report")


def test_the_report_holds_every_chart_and_the_headline_figures(report_page):
    page = report_page.read_text()
    for chart in ("mrr_arr", "movements", "customers_churn", "top_movers", "fx_impact"):
        assert f'<figure id="{chart}"><img' in page
        assert (report_page.parent / f"{chart}.png").stat().st_size > 5000
    assert "400.00 USD" in page  # MRR at as_of
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained: nothing to fetch


@pytest.mark.slow
def test_the_report_renders_its_charts_in_headless_chromium(report_page, tmp_path):
    assert CHROMIUM, "chromium missing: scripts/install-system-deps installs it"
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1100,1800",
         report_page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = Image.open(screenshot).convert("RGB")
    pixels = list(image.getdata())
    not_white = sum(1 for pixel in pixels if min(pixel) < 235) / len(pixels)
    assert not_white > 0.05, "the page looks blank"
    assert len(set(pixels)) > 200, "no charts: too few colours"
