"""The HTML report of a real (scripted-model) run, looked at in headless Chromium."""

import asyncio
import importlib.util
import json
import re
import struct

import pytest
from typer.testing import CliRunner

from autoagent import report, workspace
from autoagent.cli import app
from autoagent.loop import Loop, Settings
from autoagent.meta.agent import Limits
from autoagent.strategies.budget import Budget
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
            legend: [...document.querySelectorAll('#progress .legend tspan[class^=legend-]')].map(t => t.className.baseVal.slice(7)),
            cost_y_ticks: document.querySelectorAll('#cost .y-tick').length,
            cost_x_ticks: document.querySelectorAll('#cost .x-tick').length,
            cell_values: document.querySelectorAll('#heatmap text.value').length,
            glance: document.querySelectorAll('#glance tr').length,
            scripted: !!document.querySelector('#scripted') && document.querySelector('#scripted').getBoundingClientRect().height > 10,
            failed_proposals: document.querySelectorAll('#failed-proposals + p + ul li').length,
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
    assert drawn["cells"] == 3 * 3 + 5  # 3 tasks × 3 evaluated experiments, and the colour key
    assert drawn["cost_lines"] == 2 and drawn["details"] == 4
    assert drawn["legend"] == ["baseline", "keep", "discard", "crash"]
    assert drawn["cost_y_ticks"] >= 6 and drawn["cost_x_ticks"] >= 6  # 3 of each per panel
    assert drawn["cell_values"] == 9 and drawn["glance"] >= 4
    assert drawn["scripted"]
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
    assert "steps and verifier" in html and "trials/" in html and "harbor view" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # offline, self-contained
    assert "re-read the instruction" in html  # the kept change's diff


def test_a_long_run_report_stays_small(tmp_path):
    spec = importlib.util.spec_from_file_location("report_scale", REPO / "benchmarks" / "report_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = module.synthetic(tmp_path / "ws", experiments=200, tasks=50)
    page, _ = report.write(root)
    assert page.stat().st_size < 5e6


def test_a_trial_opens_as_a_readable_page(demo_run):
    page, _ = report.write(demo_run)
    html = page.read_text()
    link = re.search(r"href='(trials/[^']+csv-total[^']+\.html)'", html)
    assert link, "no readable page linked for a trial"
    trial = (page.parent / link.group(1)).read_text()
    assert "Verifier output" in trial and "▶ bash" in trial and "/app/data/sales.csv" in trial


def test_failed_proposals_are_shown(tmp_path, scripts, monkeypatch):
    """A real run whose meta-agent never submits: the report says so, up front and in a section."""
    (scripts / "chatty.json").write_text(json.dumps(
        {"conversations": [{"match": ".", "turns": [{"content": "Let me think."}] * 10}]}))
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    settings = Settings.from_workspace(ws, meta_model="scripted/chatty", budget=Budget(iterations=2),
                                       limits=Limits(turns=2), retry_wait_sec=0.01, include=["hello-file"])  # fmt: skip
    asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    page, _ = report.write(ws.root)
    drawn, errors = open_in_chromium(page, tmp_path / "shot.png")
    assert errors == [] and drawn["failed_proposals"] == 2
    html = page.read_text()
    assert "2 × failed proposals" in html and "no submission within 2 turns" in html


def test_the_lineage_tree_nests_a_composition_under_the_best_and_names_what_it_composes(tmp_path):
    """Two candidates from the baseline: 1 is kept first, so 2, which also won, is superseded
    and its change composed onto 1 as experiment 3, kept; 4, from 3, is discarded."""
    from autoagent.ledger import Experiment, Ledger

    ledger = Ledger(tmp_path)
    for e in [
        Experiment(0, "baseline", description="baseline", passed=1, total=4),
        Experiment(1, "keep", parent_id=0, description="re-read the instruction", passed=2, total=4),
        Experiment(2, "superseded", parent_id=0, description="retry failed commands", passed=2, total=4,
                   reason="won against experiment 0, no longer the best; composed onto 1 as experiment 3"),
        Experiment(3, "keep", parent_id=1, composed_from=2, description="retry failed commands", passed=3, total=4),
        Experiment(4, "discard", parent_id=3, description="a shorter prompt", passed=2, total=4),
    ]:  # fmt: skip
        ledger.save(e)
    page, _ = report.write(tmp_path)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.goto(page.as_uri(), wait_until="load")
        tree = tab.evaluate("""() => {
            const node = id => document.querySelector('#tree #t' + id);
            const parent = id => node(id).parentElement.closest('li')?.id || null;
            return {
                parents: Object.fromEntries([0, 1, 2, 3, 4].map(id => [id, parent(id)])),
                kept: [...document.querySelectorAll('#tree li.kept')].map(li => li.id),
                bold: getComputedStyle(node(3).querySelector('.node')).fontWeight,
                normal: getComputedStyle(node(4).querySelector('.node')).fontWeight,
                composes: node(3).querySelector(':scope > .node .composes a').getAttribute('href'),
                composed_as: node(2).querySelector(':scope > .node .note a')?.getAttribute('href'),
                superseded: node(2).classList.contains('superseded') && node(2).innerText.includes('superseded'),
                score: node(3).querySelector(':scope > .node').innerText,
            };
        }""")
        browser.close()
    assert tree["parents"] == {"0": None, "1": "t0", "2": "t0", "3": "t1", "4": "t3"}
    assert tree["kept"] == ["t0", "t1", "t3"]  # the branch's history, not the superseded 2
    assert tree["bold"] == "700" and tree["normal"] == "400"
    assert tree["composes"] == "#t2" and tree["composed_as"] == "#t3" and tree["superseded"]
    assert "3/4" in tree["score"] and "keep" in tree["score"]
