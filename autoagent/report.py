"""`autoagent report`: one self-contained HTML file of a run, and its progress chart as a PNG.

Everything is drawn here, as inline SVG: no script, no font, no network asset, so
the file opens offline and can be mailed. Every figure comes from the ledger
(.autoagent/runs.jsonl), the spend meter (.autoagent/spend.jsonl) and git.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autoagent.history import History
from autoagent.ledger import Experiment, Ledger
from autoagent.spend import Meter, money

COLORS = {"baseline": "#4c72b0", "keep": "#2a9d4b", "discard": "#999999", "indecisive": "#c9a227",
          "crash": "#d1495b", "rejected": "#7b2d8b", "interrupted": "#bbbbbb", "running": "#4c72b0"}  # fmt: skip
DIFF_LIMIT = 20_000  # characters of a candidate's diff shown inline


@dataclass
class Run:
    """What the report shows, read from the workspace's files."""

    root: Path
    experiments: list[Experiment]
    spend: list[dict]
    tasks: list[str]
    diffs: dict[int, str]

    @classmethod
    def load(cls, root: Path) -> Run:
        experiments = [e for e in Ledger(root).experiments() if e.final]
        history = History(root)
        diffs = {}
        for e in experiments:
            if e.commit and e.parent:
                try:
                    diffs[e.id] = history.diff(e.parent, e.commit)
                except Exception:  # a commit that is gone (a pruned ref): say so, do not fail
                    diffs[e.id] = "(this candidate's commit is no longer in the repository)"
        tasks = sorted({t for e in experiments for t in e.task_scores})
        return cls(root, experiments, Meter(root / ".autoagent" / "spend.jsonl").entries(), tasks, diffs)


def write(root: Path, out_dir: Path | None = None) -> tuple[Path, Path | None]:
    """Write report.html (and progress.png when there is something to plot)."""
    run = Run.load(root)
    out_dir = out_dir or root / ".autoagent" / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "report.html"
    page.write_text(render(run, page.parent))
    png = out_dir / "progress.png" if run.experiments else None
    if png:
        progress_png(run, png)
    return page, png


# -- the page -------------------------------------------------------------------------


def render(run: Run, base: Path) -> str:
    best = _best(run.experiments)
    counts: dict[str, int] = {}
    for e in run.experiments:
        counts[e.status] = counts.get(e.status, 0) + 1
    by_role = {role: sum(s["cost_usd"] or 0 for s in run.spend if s["role"] == role) for role in ("task", "meta")}
    unknown = {s["role"] for s in run.spend if s.get("cost_usd") is None and not s.get("refused")}
    summary = (
        f"{len(run.experiments)} experiments · "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + (f" · best: experiment {best.id}, passed {best.passed}/{best.total}" if best else "")
        + f" · spent {money(by_role['task'], 'task' in unknown, 2)} on task runs, "
        + f"{money(by_role['meta'], 'meta' in unknown, 2)} on the meta-agent"
    )
    sections = [
        f"<h1>AutoAgent run: {_e(run.root.name)}</h1><p class=summary>{_e(summary)}</p>",
        "<h2>Progress</h2>" + progress_svg(run),
        "<h2>Cost over time, by role</h2>" + cost_svg(run),
    ]
    if any(e.held_out for e in run.experiments):
        sections.append("<h2>Held-out against search</h2>" + held_out_svg(run))
    sections += [
        "<h2>Tasks × experiments</h2><p class=note>Mean reward per task; blank: not run.</p>" + heatmap_svg(run),
        "<h2>Experiments</h2>" + lineage_table(run),
        "<h2>Details</h2>" + "".join(details(run, e, base) for e in reversed(run.experiments)),
        "<p class=note>Open a trial in Harbor's viewer: <code>harbor view " + _e(str(run.root / ".autoagent" / "jobs"))
        + "</code></p>",
    ]
    return PAGE.format(title=_e(f"AutoAgent: {run.root.name}"), body="\n".join(sections))


PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }}
.summary {{ font-size: 1.05em; }} .note {{ color: #666; font-size: .9em; }}
table {{ border-collapse: collapse; width: 100%; font-size: .92em; }}
td, th {{ border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top; }}
.status {{ color: #fff; border-radius: 3px; padding: 0 5px; font-size: .85em; }}
details {{ border: 1px solid #e3e3e3; border-radius: 4px; margin: .5em 0; padding: .3em .8em; }}
summary {{ cursor: pointer; }} pre {{ background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: .85em; }}
.add {{ color: #1a7f37; }} .del {{ color: #cf222e; }}
svg text {{ font: 11px system-ui, sans-serif; fill: #444; }}
</style></head><body>
{body}
</body></html>
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _best(experiments: list[Experiment]) -> Experiment | None:
    kept = [e for e in experiments if e.status in ("baseline", "keep")]
    return kept[-1] if kept else None


def _badge(status: str) -> str:
    return f"<span class=status style='background:{COLORS.get(status, '#888')}'>{_e(status)}</span>"


def _score(e: Experiment) -> float | None:
    return e.passed / e.total if e.passed is not None and e.total else None


# -- charts (inline SVG) --------------------------------------------------------------


def _axes(width: int, height: int, pad: int, y_label: str, x_label: str) -> list[str]:
    parts = [f"<line x1={pad} y1={height - pad} x2={width - 10} y2={height - pad} stroke=#999 />",
             f"<line x1={pad} y1=30 x2={pad} y2={height - pad} stroke=#999 />",
             f"<text x={width // 2} y={height - 8} text-anchor=middle>{_e(x_label)}</text>",
             f"<text x=12 y={height // 2} transform='rotate(-90 12 {height // 2})' text-anchor=middle>{_e(y_label)}</text>"]  # fmt: skip
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = height - pad - fraction * (height - pad - 30)
        parts.append(f"<line x1={pad - 4} y1={y:.1f} x2={width - 10} y2={y:.1f} stroke=#eee />")
        parts.append(f"<text x={pad - 6} y={y + 4:.1f} text-anchor=end>{fraction:.0%}</text>")
    return parts


def progress_svg(run: Run, width: int = 1000, height: int = 320) -> str:
    """Share of search tasks passed per experiment; the kept ones joined as the running best."""
    pad = 50
    points = [(e, _score(e)) for e in run.experiments]
    n = max(len(points) - 1, 1)
    x = lambda i: pad + i * (width - pad - 20) / n  # noqa: E731
    y = lambda v: height - pad - v * (height - pad - 30)  # noqa: E731
    parts = _axes(width, height, pad, "search tasks passed", "experiment")
    best_path, best = [], None
    for i, (e, score) in enumerate(points):  # a step: the best holds until a keep raises it
        if best is not None:
            best_path.append(f"{x(i):.1f},{y(best):.1f}")
        if score is not None and e.status in ("baseline", "keep"):
            best = score
            best_path.append(f"{x(i):.1f},{y(best):.1f}")
    if best_path:
        parts.append(f"<polyline points='{' '.join(best_path)}' fill=none stroke='{COLORS['keep']}' "
                     "stroke-width=2 class=running-best />")  # fmt: skip
    for i, (e, score) in enumerate(points):
        if score is None:  # a crash or a rejection: marked on the axis, it still happened
            parts.append(f"<text x={x(i):.1f} y={height - pad + 14} text-anchor=middle "
                         f"fill='{COLORS.get(e.status, '#888')}' class='point {e.status}'>×<title>experiment "
                         f"{e.id}: {_e(e.status)} - {_e(e.reason[:120])}</title></text>")  # fmt: skip
            continue
        kept = e.status in ("baseline", "keep")
        parts.append(
            f"<circle cx={x(i):.1f} cy={y(score):.1f} r={5 if kept else 3.5} fill='{COLORS.get(e.status, '#888')}' "
            f"class='point {e.status}'><title>experiment {e.id}: {_e(e.status)}, passed {e.passed}/{e.total}"
            f"{' - ' + _e(e.description[:80]) if e.description else ''}</title></circle>"
        )
    step = max(1, len(points) // 20)
    for i, (e, _) in enumerate(points):
        if i % step == 0:
            parts.append(f"<text x={x(i):.1f} y={height - pad + 26} text-anchor=middle>{e.id}</text>")
    legend = " ".join(f"<tspan fill='{COLORS[s]}'>● {s}</tspan>" for s in ("keep", "discard", "crash", "indecisive"))
    parts.append(f"<text x={pad} y=12>{legend} <tspan fill='{COLORS['keep']}'>— running best</tspan></text>")
    return f"<svg id=progress width={width} height={height} viewBox='0 0 {width} {height}'>{''.join(parts)}</svg>"


def cost_svg(run: Run, width: int = 1000, height: int = 220) -> str:
    """Cumulative USD by role against time."""
    pad = 50
    entries = sorted((s for s in run.spend if s.get("cost_usd")), key=lambda s: s["time"])
    if not entries:
        return "<p class=note>No model spend recorded yet.</p>"
    start, end = entries[0]["time"], max(entries[-1]["time"], entries[0]["time"] + 1)
    total = sum(s["cost_usd"] for s in entries)
    parts = [f"<line x1={pad} y1={height - pad} x2={width - 10} y2={height - pad} stroke=#999 />",
             f"<text x={pad - 6} y=18 text-anchor=end>${total:.2f}</text>",
             f"<text x={width // 2} y={height - 10} text-anchor=middle>time ({(end - start) / 3600:.1f} h)</text>"]  # fmt: skip
    for role, color in (("task", "#4c72b0"), ("meta", "#dd8452")):
        running, points = 0.0, [f"{pad},{height - pad}"]
        for s in entries:
            if s["role"] == role:
                running += s["cost_usd"]
                px = pad + (s["time"] - start) / (end - start) * (width - pad - 20)
                py = height - pad - running / total * (height - pad - 20)
                points.append(f"{px:.1f},{py:.1f}")
        parts.append(f"<polyline points='{' '.join(points)}' fill=none stroke={color} stroke-width=2 class=cost-{role} />")
        parts.append(f"<text x={width - 15} y={20 + 14 * (role == 'meta')} text-anchor=end fill={color}>"
                     f"{role}: ${running:.2f}</text>")  # fmt: skip
    return f"<svg id=cost width={width} height={height}>{''.join(parts)}</svg>"


def held_out_svg(run: Run, width: int = 1000, height: int = 240) -> str:
    pad = 50
    rows = [(e, _score(e), e.held_out["passed"] / e.held_out["total"]) for e in run.experiments
            if e.held_out and e.total]  # fmt: skip
    n = max(len(run.experiments) - 1, 1)
    ids = {e.id: i for i, e in enumerate(run.experiments)}
    x = lambda e: pad + ids[e.id] * (width - pad - 20) / n  # noqa: E731
    y = lambda v: height - pad - v * (height - pad - 30)  # noqa: E731
    parts = _axes(width, height, pad, "passed", "experiment")
    for e, search, held in rows:
        parts.append(f"<circle cx={x(e):.1f} cy={y(search):.1f} r=4 fill=#4c72b0><title>search</title></circle>")
        parts.append(f"<rect x={x(e) - 4:.1f} y={y(held) - 4:.1f} width=8 height=8 fill=#dd8452>"
                     f"<title>held-out</title></rect>")  # fmt: skip
    parts.append(f"<text x={pad} y=12><tspan fill=#4c72b0>● search</tspan> <tspan fill=#dd8452>■ held-out</tspan></text>")
    return f"<svg id=held-out width={width} height={height}>{''.join(parts)}</svg>"


def heatmap_svg(run: Run) -> str:
    """One row per task, one column per experiment, colour by mean reward."""
    if not run.tasks or not run.experiments:
        return "<p class=note>No trials yet.</p>"
    cell, left, top = 12, 160, 30
    width = left + cell * len(run.experiments) + 10
    height = top + cell * len(run.tasks) + 10
    parts = []
    for j, e in enumerate(run.experiments):
        if j % max(1, len(run.experiments) // 20) == 0:
            parts.append(f"<text x={left + j * cell + cell / 2:.0f} y={top - 8} text-anchor=middle>{e.id}</text>")
    for i, task in enumerate(run.tasks):
        parts.append(f"<text x={left - 6} y={top + i * cell + cell - 2} text-anchor=end>{_e(task[:28])}</text>")
        for j, e in enumerate(run.experiments):
            score = e.task_scores.get(task)
            if score is None:
                continue
            shade = f"hsl({int(120 * score)},60%,{45 + 10 * (1 - score):.0f}%)"
            parts.append(f"<rect x={left + j * cell} y={top + i * cell} width={cell - 1} height={cell - 1} "
                         f"fill='{shade}'><title>{_e(task)}, experiment {e.id}: {score:.2f}</title></rect>")  # fmt: skip
    return f"<svg id=heatmap width={width} height={height}>{''.join(parts)}</svg>"


# -- tables and details -------------------------------------------------------------------


def lineage_table(run: Run) -> str:
    rows = ["<table id=lineage><tr><th>#</th><th>parent</th><th>status</th><th>passed</th>"
            "<th>held-out</th><th>hit rate</th><th>cost</th><th>description</th></tr>"]  # fmt: skip
    for e in run.experiments:
        held = f"{e.held_out['passed']}/{e.held_out['total']}" if e.held_out else ""
        hits = "" if e.hit_rate is None else f"{e.hit_rate:.0%}"
        passed = "" if e.passed is None else f"{e.passed}/{e.total}"
        parent = "" if e.parent_id is None else str(e.parent_id)
        rows.append(f"<tr><td><a href='#e{e.id}'>{e.id}</a></td><td>{parent}</td><td>{_badge(e.status)}</td>"
                    f"<td>{passed}</td><td>{held}</td><td>{hits}</td><td>{money(e.total_cost, bool(e.cost_unknown), 3)}</td>"
                    f"<td>{_e(e.description)}</td></tr>")  # fmt: skip
    return "".join(rows) + "</table>"


def details(run: Run, e: Experiment, base: Path) -> str:
    fixed, broken = e.flips.get("fixed", []), e.flips.get("broken", [])
    lines = [f"<details id=e{e.id}><summary>experiment {e.id} {_badge(e.status)} {_e(e.description)}</summary>"]
    if e.hypothesis:
        lines.append(f"<p><b>Hypothesis.</b> {_e(e.hypothesis)}</p>")
    if e.overfitting:
        lines.append(f"<p><b>If this exact task disappeared?</b> {_e(e.overfitting)}</p>")
    lines.append(f"<p><b>Decision.</b> {_e(e.reason)}</p>")
    if e.expected_flips or fixed or broken:
        lines.append(f"<p><b>Expected to flip:</b> {_e(', '.join(e.expected_flips) or 'nothing')} · "
                     f"<b>fixed:</b> {_e(', '.join(fixed) or 'none')} · <b>broke:</b> {_e(', '.join(broken) or 'none')}</p>")  # fmt: skip
    if e.commit:
        lines.append(f"<p class=note>commit {e.commit[:10]}, parent experiment {e.parent_id}, "
                     f"{sum(e.timings.values()):.0f} s, cost {money(e.total_cost, bool(e.cost_unknown))} "
                     f"(task {money(e.cost_usd.get('task', 0), 'task' in e.cost_unknown)}, "
                     f"meta {money(e.cost_usd.get('meta', 0), 'meta' in e.cost_unknown)})</p>")  # fmt: skip
    diff = run.diffs.get(e.id)
    if diff:
        lines.append("<pre class=diff>" + _colour_diff(diff[:DIFF_LIMIT]) + "</pre>")
    if e.trials:
        links = []
        for t in e.trials:
            trial = Path(t["trial_dir"])
            mark = "✓" if t["reward"] >= 1 else "✗"
            links.append(f"<tr><td>{_e(t['task'])}</td><td>{mark} {t['reward']:g}</td>"
                         f"<td><a href='{_e(_link(trial / 'agent' / 'trajectory.json', base))}'>trajectory</a> · "
                         f"<a href='{_e(_link(trial / 'verifier' / 'test-stdout.txt', base))}'>verifier output</a></td>"
                         f"<td>{_e(t.get('error') or '')}</td></tr>")  # fmt: skip
        lines.append("<table class=trials>" + "".join(links) + "</table>")
    return "".join(lines) + "</details>"


def _link(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return path.as_uri()


def _colour_diff(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        kind = "add" if line.startswith("+") and not line.startswith("+++") else (
            "del" if line.startswith("-") and not line.startswith("---") else "")
        out.append(f"<span class={kind}>{_e(line)}</span>" if kind else _e(line))
    return "\n".join(out)


# -- the PNG -------------------------------------------------------------------------------


def progress_png(run: Run, path: Path) -> None:
    """The progress chart for a README, drawn with matplotlib (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 3.6), dpi=110)
    for e in run.experiments:
        score = _score(e)
        if score is None:  # a crash or a rejection: on the axis, it still happened
            axes.scatter(e.id, 0, marker="x", color=COLORS.get(e.status, "#888"), zorder=3)
        else:
            axes.scatter(e.id, score, s=36 if e.status in ("baseline", "keep") else 18,
                         color=COLORS.get(e.status, "#888"), zorder=3)  # fmt: skip
    best, best_x, best_y = None, [], []
    for e in run.experiments:
        score = _score(e)
        if score is not None and e.status in ("baseline", "keep"):
            best = score
        if best is not None:
            best_x.append(e.id)
            best_y.append(best)
    axes.step(best_x, best_y, where="post", color=COLORS["keep"], linewidth=2, label="running best")
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_xlabel("experiment")
    axes.set_ylabel("search tasks passed")
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes.set_title(f"AutoAgent: {run.root.name} ({datetime.now():%Y-%m-%d})", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
