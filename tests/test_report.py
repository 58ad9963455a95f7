"""The HTML report of a real (scripted-model) run, looked at in headless Chromium."""

import importlib.util
import struct

import pytest
from typer.testing import CliRunner

from autoagent import report
from autoagent.cli import app
from tests.conftest import CHROMIUM, REPO

pytestmark = pytest.mark.usefixtures("needs_sandbox", "needs_chromium")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(app, ["demo", str(root)])
    assert result.exit_code == 0, result.output
    return root


def open_in_chromium(page, screenshot):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])  # fmt: skip
        tab = browser.new_page(viewport={"width": 1200, "height": 1000})
        errors = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on("request", lambda r: errors.append(f"network: {r.url}") if not r.url.startswith("file:") else None)
        tab.goto(page.as_uri(), wait_until="load")
        drawn = tab.evaluate("""() => ({
            points: document.querySelectorAll('#progress circle').length,
            best: (document.querySelector('#progress polyline.running-best')?.getAttribute('points') || '').split(' ').length,
            cells: document.querySelectorAll('#heatmap rect').length,
            chart_box: document.querySelector('#progress').getBoundingClientRect().height,
            cost_lines: document.querySelectorAll('#cost polyline').length,
            details: document.querySelectorAll('details').length,
        })""")
        tab.screenshot(path=str(screenshot))
        browser.close()
    return drawn, errors


def test_the_report_draws_its_charts_without_errors(demo_run, tmp_path):
    page, png = report.write(demo_run)
    drawn, errors = open_in_chromium(page, tmp_path / "shot.png")
    assert errors == []
    assert drawn["points"] == 3  # baseline, keep, discard (the crash is an × on the axis)
    assert drawn["best"] >= 3 and drawn["chart_box"] > 200
    assert drawn["cells"] == 3 * 3  # 3 tasks × 3 evaluated experiments
    assert drawn["cost_lines"] == 2 and drawn["details"] == 4
    # The screenshot is not blank: the chart area holds coloured pixels.
    from PIL import Image

    image = Image.open(tmp_path / "shot.png").convert("RGB")
    colours = image.crop((0, 100, 1200, 500)).getcolors(maxcolors=100_000)
    assert len(colours) > 20
    with open(png, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24])[0] > 500


def test_report_command_and_links(demo_run, monkeypatch):
    monkeypatch.chdir(demo_run)
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    html = (demo_run / ".autoagent" / "reports" / "report.html").read_text()
    assert "trajectory.json" in html and "test-stdout.txt" in html and "harbor view" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # offline, self-contained
    assert "re-read the instruction" in html  # the kept change's diff


def test_a_long_run_report_stays_small(tmp_path):
    spec = importlib.util.spec_from_file_location("report_scale", REPO / "benchmarks" / "report_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = module.synthetic(tmp_path / "ws", experiments=200, tasks=50)
    page, _ = report.write(root)
    assert page.stat().st_size < 5e6
