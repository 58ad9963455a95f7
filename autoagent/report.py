"""`autoagent report`: one self-contained HTML file of a run, and its progress chart as a PNG.

Everything is drawn here, as inline SVG: no script, no font, no network asset, so
the file opens offline and can be mailed. Every figure comes from the ledger
(.autoagent/runs.jsonl), the spend meter (.autoagent/spend.jsonl) and git.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autoagent import cost_charts, lineage
from autoagent.history import History
from autoagent.ledger import Experiment, Ledger
from autoagent.spend import Meter, money

COLORS = {**cost_charts.COLORS, "crash": "#d1495b", "rejected": "#7b2d8b", "interrupted": "#bbbbbb",
          "running": "#4c72b0"}  # fmt: skip
DIFF_LIMIT = 20_000  # characters of a candidate's diff shown inline


@dataclass
class Run:
    """What the report shows, read from the workspace's files."""

    root: Path
    experiments: list[Experiment]
    spend: list[dict]
    tasks: list[str]
    diffs: dict[int, str]
    meta_failures: list[dict] = field(default_factory=list)  # proposals that never became a candidate

    @property
    def scripted(self) -> bool:
        """Whether any model was a scripted one: then no figure measures a real model."""
        return any(str(s.get("model", "")).startswith("scripted/") for s in self.spend)

    @classmethod
    def load(cls, root: Path) -> Run:
        ledger = Ledger(root)
        experiments = [e for e in ledger.experiments() if e.final]
        history = History(root)
        diffs = {}
        for e in experiments:
            if e.commit and e.parent:
                try:
                    diffs[e.id] = history.diff(e.parent, e.commit)
                except Exception:  # a commit that is gone (a pruned ref): say so, do not fail
                    diffs[e.id] = "(this candidate's commit is no longer in the repository)"
        tasks = sorted({t for e in experiments for t in e.task_scores})
        return cls(root, experiments, Meter(root / ".autoagent" / "spend.jsonl").entries(), tasks, diffs,
                   ledger.events("meta_failure"))  # fmt: skip


TRAJECTORY_PAGES = 400  # readable trial pages per report, newest first; older trials link the raw JSON


def write(root: Path, out_dir: Path | None = None) -> tuple[Path, Path | None]:
    """Write report.html, a readable page per recent trial, and progress.png when there is
    something to plot."""
    run = Run.load(root)
    out_dir = out_dir or root / ".autoagent" / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "report.html"
    pages = trial_pages(run, out_dir / "trials")
    page.write_text(render(run, page.parent, pages))
    png = out_dir / "progress.png" if run.experiments else None
    if png:
        progress_png(run, png)
    return page, png


def trial_pages(run: Run, directory: Path) -> dict[str, Path]:
    """trial_dir -> its readable page, for the newest trials (see TRAJECTORY_PAGES)."""
    from autoagent import trajectory_view

    directory.mkdir(parents=True, exist_ok=True)
    pages: dict[str, Path] = {}
    for e in reversed(run.experiments):
        for t in e.trials:
            if len(pages) >= TRAJECTORY_PAGES:
                return pages
            trial = Path(t["trial_dir"])
            if not trial.is_dir() or t["trial_dir"] in pages:
                continue
            page = directory / f"{trial.parent.name}--{trial.name}.html"
            title = f"experiment {e.id}: {t['task']} ({trial.name})"
            page.write_text(trajectory_view.render(trial, title))
            pages[t["trial_dir"]] = page
    return pages


# -- the page -------------------------------------------------------------------------


def render(run: Run, base: Path, pages: dict[str, Path] | None = None) -> str:
    sections = [f"<h1>AutoAgent run: {_e(run.root.name)}</h1>"]
    if run.scripted:
        sections.append("<p id=scripted class=alarm>Scripted models took part in this run: their replies "
                        "were replayed from files, so its figures show the machinery working, not how "
                        "good any model or harness is.</p>")  # fmt: skip
    sections.append(glance(run))
    if advice := cost_charts.saturated(run.experiments):
        sections.append(f"<p class=advice>{_e(advice)}</p>")
    sections += [
        "<h2>Progress</h2>" + progress_svg(run),
        "<h2>Score against cost per task</h2>" + cost_charts.score_cost_svg(run.experiments),
        "<h2>Cost per task over experiments</h2>" + cost_charts.cost_per_task_svg(run.experiments),
        "<h2>Cost over time, by role</h2>" + cost_svg(run),
    ]
    if any(e.held_out for e in run.experiments):
        sections.append("<h2>Held-out against search</h2>" + held_out_svg(run))
    sections += [
        "<h2>Tasks × experiments</h2><p class=note>Mean reward per task and experiment (over its "
        "attempts); blank: not run in that experiment.</p>" + heatmap_svg(run),
        "<h2>Lineage</h2>" + lineage_tree(run),
        "<h2>Experiments</h2>" + lineage_table(run),
        what_went_wrong(run),
        "<h2>Details</h2>" + "".join(details(run, e, base, pages or {}) for e in reversed(run.experiments)),
        "<p class=note>Each trial's page shows its steps and its verifier's output. To browse every "
        "trial in Harbor's viewer: <code>harbor view " + _e(str(run.root / ".autoagent" / "jobs"))
        + "</code></p>",
    ]
    return PAGE.format(title=_e(f"AutoAgent: {run.root.name}"), body="\n".join(sections))


def glance(run: Run) -> str:
    """What a person asks first: better? at what cost? what changed? what went wrong?"""
    baseline = next((e for e in run.experiments if e.status == "baseline"), None)
    best = _best(run.experiments)
    rows = []
    if baseline is None or baseline.passed is None:
        rows.append(("Did it get better?", "No baseline has been measured yet."))
    else:
        better = f"Baseline passed {baseline.passed}/{baseline.total} {_tasks_word(run)}; "
        if best is None or best.id == baseline.id:
            better += "nothing has beaten it yet."
        else:
            better += (f"the best, <a href='#e{best.id}'>experiment {best.id}</a>, passes {best.passed}/"
                       f"{best.total} ({(best.passed or 0) - baseline.passed:+d} tasks).")  # fmt: skip
        if baseline.noise_floor is not None:
            better += (f" Two runs of the baseline differ by about {baseline.noise_floor:.1f} tasks by "
                       "chance (the noise floor, the band in the chart).")  # fmt: skip
        else:
            better += " The noise floor was not measured (the baseline ran once)."
        if best and best.held_out:
            start = f"{baseline.held_out['passed']}/{baseline.held_out['total']} → " if baseline.held_out else ""
            better += f" Held-out tasks: {start}{best.held_out['passed']}/{best.held_out['total']}."
        rows.append(("Did it get better?", better))
    by_role = {role: sum(s["cost_usd"] or 0 for s in run.spend if s["role"] == role) for role in ("task", "meta")}
    unpriced = [s for s in run.spend if s.get("cost_usd") is None and not s.get("refused")]
    unknown = {s["role"] for s in unpriced}
    cost = (f"{_usd(by_role['task'] + by_role['meta'], bool(unknown))}: {_usd(by_role['task'], 'task' in unknown)} "
            f"on task runs, {_usd(by_role['meta'], 'meta' in unknown)} on the meta-agent")  # fmt: skip
    if unpriced:
        cost += (f" (unknown: {len(unpriced)} calls to models without a price; give their prices in "
                 "autoagent.toml as input_usd_per_mtok and output_usd_per_mtok)")  # fmt: skip
    if run.meta_failures:
        cost += (f". {len(run.meta_failures)} failed proposal{'s' * (len(run.meta_failures) != 1)} are "
                 "in the meta-agent's spend (each is charged to the experiment that followed it)")  # fmt: skip
    rows.append(("What did it cost?", cost + ". From .autoagent/spend.jsonl."))
    kept = [e for e in run.experiments if e.status == "keep"]
    if kept:
        changes = "<ol>" + "".join(
            f"<li><a href='#e{e.id}'>experiment {e.id}</a>{' (' + _e(e.verdict) + ')' if e.verdict != 'keep' else ''}: "
            + (f"<a href='#e{e.composed_from}'>experiment {e.composed_from}</a>'s change, composed onto the best: "
               if e.composed_from is not None else "")
            + f"{_e(e.description)}"
            + (f" <span class=note>Hypothesis: {_e(e.hypothesis)}</span>" if e.hypothesis else "")
            + f" <span class=note>Evidence: {_e(e.reason)}</span></li>"
            for e in kept
        ) + "</ol>"  # fmt: skip
    else:
        changes = "Nothing has been kept yet: the best is still the baseline."
    rows.append(("What changed?", changes))
    rows.append(("What went wrong?", _problems_line(run)))
    return ("<table id=glance>" + "".join(f"<tr><th>{q}</th><td>{a}</td></tr>" for q, a in rows) + "</table>")


def _tasks_word(run: Run) -> str:
    return "search tasks" if any(e.held_out for e in run.experiments) else "tasks"


def _problems(run: Run) -> dict[str, list]:
    errored = [e for e in run.experiments if e.trials and all(t.get("error") for t in e.trials)]
    return {
        "failed proposals": run.meta_failures,
        "crashes": [e for e in run.experiments if e.status == "crash"],
        "rejected candidates": [e for e in run.experiments if e.status == "rejected"],
        "evaluations where every trial errored": errored,
        "infrastructure errors": [t for e in run.experiments for t in e.trials if t.get("category") == "infra"],
    }


def _problems_line(run: Run) -> str:
    found = {what: items for what, items in _problems(run).items() if items}
    if not found:
        return "Nothing: no failed proposal, crash, rejection or errored evaluation."
    return ", ".join(f"<a href='#went-wrong'>{len(items)} × {what}</a>" for what, items in found.items()) + "."


def what_went_wrong(run: Run) -> str:
    problems = _problems(run)
    lines = ["<h2 id=went-wrong>What went wrong</h2>"]
    if not any(problems.values()):
        return "".join(lines) + "<p class=note>Nothing went wrong.</p>"
    if problems["failed proposals"]:
        lines.append("<h3 id=failed-proposals>Failed proposals</h3><p class=note>The meta-agent gave no "
                     "usable change; each still counts as an iteration.</p><ul>")  # fmt: skip
        for failure in problems["failed proposals"]:
            log = failure.get("log")
            lines.append(f"<li>before experiment {_e(failure.get('experiment'))}, {_e(failure.get('time', ''))}: "
                         f"{_e(failure.get('reason', ''))}"
                         + (f" · <a href='{_e(Path(log).as_uri())}'>the meta-agent's log</a>" if log else "")
                         + "</li>")  # fmt: skip
        lines.append("</ul>")
    for what in ("crashes", "rejected candidates", "evaluations where every trial errored"):
        if problems[what]:
            lines.append(f"<h3>{what.capitalize()}</h3><ul>" + "".join(
                f"<li><a href='#e{e.id}'>experiment {e.id}</a>: {_e(e.reason)}</li>" for e in problems[what]
            ) + "</ul>")  # fmt: skip
    if problems["infrastructure errors"]:
        kinds: dict[str, int] = {}
        for t in problems["infrastructure errors"]:
            kinds[t.get("error") or "?"] = kinds.get(t.get("error") or "?", 0) + 1
        lines.append("<h3>Infrastructure errors</h3><p class=note>Retried apart from the harness's own "
                     "failures; never blamed on a candidate.</p><ul>"
                     + "".join(f"<li>{n} × {_e(k)}</li>" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
                     + "</ul>")  # fmt: skip
    return "".join(lines)


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
.alarm {{ background: #fdecea; border-left: 4px solid #d1495b; padding: .5em .8em; }}
#glance th {{ width: 11em; white-space: nowrap; }} #glance td {{ font-size: 1.02em; }}
.scroll {{ overflow-x: auto; }}
#tree, #tree ul {{ list-style: none; margin: 0; padding-left: 1.1em; }} #tree {{ padding-left: 0; }}
#tree li {{ border-left: 1px solid #ddd; padding: 1px 0 1px .5em; white-space: nowrap; }}
#tree li.kept {{ border-left: 3px solid #2a9d4b; }} #tree li.kept > .node {{ font-weight: 700; }}
#tree li.superseded {{ border-left-style: dashed; }} #tree .composes {{ font-style: italic; }}
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


def _badge(status: str, label: str | None = None) -> str:
    return f"<span class=status style='background:{COLORS.get(status, '#888')}'>{_e(label or status)}</span>"


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
    """Share of search tasks passed per experiment; the kept ones joined as the running best,
    with the baseline's noise floor as a band around it."""
    pad = 50
    points = [(e, _score(e)) for e in run.experiments]
    n = max(len(points) - 1, 1)
    x = lambda i: pad + i * (width - pad - 20) / n  # noqa: E731
    y = lambda v: height - pad - min(max(v, 0), 1) * (height - pad - 30)  # noqa: E731
    parts = _axes(width, height, pad, f"{_tasks_word(run)} passed", "experiment")
    best_steps, best = [], None  # (x, best score) corners of the step line
    for i, (e, score) in enumerate(points):  # a step: the best holds until a keep raises it
        if best is not None:
            best_steps.append((x(i), best))
        if score is not None and e.status in ("baseline", "keep"):
            best = score
            best_steps.append((x(i), best))
    baseline = next((e for e in run.experiments if e.status == "baseline"), None)
    if best_steps and baseline and baseline.noise_floor and baseline.total:
        half = baseline.noise_floor / baseline.total
        upper = [f"{px:.1f},{y(v + half):.1f}" for px, v in best_steps]
        lower = [f"{px:.1f},{y(v - half):.1f}" for px, v in reversed(best_steps)]
        parts.append(f"<polygon points='{' '.join(upper + lower)}' fill='{COLORS['keep']}' fill-opacity=.12 "
                     "class=noise-band><title>the noise floor: chance drift of a rerun</title></polygon>")  # fmt: skip
    if best_steps:
        line = " ".join(f"{px:.1f},{y(v):.1f}" for px, v in best_steps)
        parts.append(f"<polyline points='{line}' fill=none stroke='{COLORS['keep']}' "
                     "stroke-width=2 class=running-best />")  # fmt: skip
    for i, (e, score) in enumerate(points):
        colour = COLORS.get(e.status, "#888")
        if score is None:  # a crash or a rejection: marked on the axis, it still happened
            parts.append(f"<text x={x(i):.1f} y={height - pad + 14} text-anchor=middle "
                         f"fill='{colour}' class='point {e.status}'>×<title>experiment "
                         f"{e.id}: {_e(e.status)} - {_e(e.reason)}</title></text>")  # fmt: skip
            continue
        kept = e.status in ("baseline", "keep")
        # White rims keep a discard visible where it sits on the running best.
        parts.append(
            f"<circle cx={x(i):.1f} cy={y(score):.1f} r={6 if kept else 5} fill='{colour}' stroke=#fff "
            f"stroke-width=1.5 class='point {e.status}'><title>experiment {e.id}: {_e(e.status)}, passed "
            f"{e.passed}/{e.total}{' - ' + _e(e.description) if e.description else ''}</title></circle>"
        )
    step = max(1, len(points) // 20)
    for i, (e, _) in enumerate(points):
        if i % step == 0:
            parts.append(f"<text x={x(i):.1f} y={height - pad + 26} text-anchor=middle>{e.id}</text>")
    shown = [s for s in ("baseline", "keep", "discard", "indecisive", "superseded", "crash", "rejected")
             if any(e.status == s for e in run.experiments)] or ["baseline"]  # fmt: skip
    legend = " ".join(f"<tspan fill='{COLORS[s]}' class=legend-{s}>{'×' if s in ('crash', 'rejected') else '●'} "
                      f"{s}</tspan>" for s in shown)  # fmt: skip
    legend += f" <tspan fill='{COLORS['keep']}'>— running best</tspan>"
    if baseline and baseline.noise_floor:
        legend += f" <tspan fill='{COLORS['keep']}' fill-opacity=.5>▬ noise floor (±{baseline.noise_floor:.1f} tasks)</tspan>"
    parts.append(f"<text x={pad} y=12 class=legend>{legend}</text>")
    return f"<svg id=progress width={width} height={height} viewBox='0 0 {width} {height}'>{''.join(parts)}</svg>"


def cost_svg(run: Run, width: int = 1000, height: int = 220) -> str:
    """Cumulative USD by role against time: one panel per role, each on its own scale, so a
    small task spend is not flattened by a large meta spend (or the other way round)."""
    entries = sorted((s for s in run.spend if s.get("cost_usd")), key=lambda s: s["time"])
    if not entries:
        return "<p class=note>No priced model spend recorded yet.</p>"
    start, end = entries[0]["time"], max(entries[-1]["time"], entries[0]["time"] + 1)
    panel = width // 2
    parts = []
    for index, (role, label, colour) in enumerate((("task", "task runs", "#4c72b0"), ("meta", "meta-agent", "#dd8452"))):
        left, pad, top = index * panel + 60, 40, 28
        right = index * panel + panel - 20
        mine = [s for s in entries if s["role"] == role]
        total = sum(s["cost_usd"] for s in mine)
        scale = total or 1.0
        px = lambda t: left + (t - start) / (end - start) * (right - left)  # noqa: E731, B023
        py = lambda v: height - pad - v / scale * (height - pad - top)  # noqa: E731, B023
        parts.append(f"<text x={left} y=16 fill={colour} font-weight=600 class=cost-label-{role}>"
                     f"{label}: {_usd(total)}</text>")  # fmt: skip
        parts.append(f"<line x1={left} y1={height - pad} x2={right} y2={height - pad} stroke=#999 />")
        parts.append(f"<line x1={left} y1={top} x2={left} y2={height - pad} stroke=#999 />")
        for fraction in (0, 0.5, 1):
            yy = py(fraction * scale)
            parts.append(f"<line x1={left - 4} y1={yy:.1f} x2={right} y2={yy:.1f} stroke=#eee class=y-tick />")
            parts.append(f"<text x={left - 6} y={yy + 4:.1f} text-anchor=end>{_usd(fraction * total, scale=total)}</text>")
        for fraction in (0, 0.5, 1):
            xx = left + fraction * (right - left)
            parts.append(f"<text x={xx:.1f} y={height - pad + 14} text-anchor=middle class=x-tick>"
                         f"{_elapsed(fraction * (end - start))}</text>")  # fmt: skip
        parts.append(f"<text x={(left + right) // 2} y={height - 6} text-anchor=middle>time since the first call</text>")
        running, points = 0.0, [f"{left},{height - pad}"]
        for s in mine:
            running += s["cost_usd"]
            points.append(f"{px(s['time']):.1f},{py(running):.1f}")
        parts.append(f"<polyline points='{' '.join(points)}' fill=none stroke={colour} stroke-width=2 "
                     f"class=cost-{role} />")  # fmt: skip
    return f"<svg id=cost width={width} height={height}>{''.join(parts)}</svg>"


def _usd(value: float, unknown: bool = False, scale: float | None = None) -> str:
    """Dollars with enough digits to tell small amounts apart ($0.0042, not $0.00)."""
    wide = (scale if scale is not None else value) >= 0.1 or value == 0
    return money(value, unknown, 2 if wide else 4)


def _elapsed(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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


HEATMAP_VALUES = 3000  # cells up to which each shows its value as text


def heatmap_svg(run: Run) -> str:
    """One row per task, one column per experiment, colour by mean reward, with a key."""
    if not run.tasks or not run.experiments:
        return "<p class=note>No trials yet.</p>"
    cell, left, top = 26, 190, 54
    values = len(run.tasks) * len(run.experiments) <= HEATMAP_VALUES
    width = left + max(cell * len(run.experiments), 420) + 10  # room for the key
    height = top + cell * len(run.tasks) + 10
    parts = [f"<text x={left} y=12>mean reward:</text>"]
    for k, score in enumerate((0, 0.25, 0.5, 0.75, 1)):  # the colour key
        parts.append(f"<rect x={left + 80 + k * 40} y=2 width=38 height=14 fill='{_shade(score)}' class=key />"
                     f"<text x={left + 99 + k * 40} y=28 text-anchor=middle>{score:g}</text>")  # fmt: skip
    parts.append(f"<text x={left + 290} y=12>blank: not run</text>")
    for j, e in enumerate(run.experiments):
        if j % max(1, len(run.experiments) // 40) == 0:
            parts.append(f"<text x={left + j * cell + cell / 2:.0f} y={top - 6} text-anchor=middle>{e.id}</text>")
    for i, task in enumerate(run.tasks):
        name = task if len(task) <= 30 else task[:29] + "…"
        parts.append(f"<text x={left - 6} y={top + i * cell + cell / 2 + 4:.0f} text-anchor=end>{_e(name)}"
                     f"<title>{_e(task)}</title></text>")  # fmt: skip
        for j, e in enumerate(run.experiments):
            score = e.task_scores.get(task)
            if score is None:
                continue
            parts.append(f"<rect x={left + j * cell} y={top + i * cell} width={cell - 2} height={cell - 2} "
                         f"fill='{_shade(score)}'><title>{_e(task)}, experiment {e.id}: {score:.2f}</title></rect>")  # fmt: skip
            if values:
                parts.append(f"<text x={left + j * cell + cell / 2 - 1:.0f} y={top + i * cell + cell / 2 + 3:.0f} "
                             f"text-anchor=middle class=value style='fill:#fff'>{score:.1f}</text>")  # fmt: skip
    return (f"<div class=scroll><svg id=heatmap width={width} height={height}>{''.join(parts)}</svg></div>")


def _shade(score: float) -> str:
    return f"hsl({int(120 * score)},55%,{38 + 8 * (1 - score):.0f}%)"


# -- tables and details -------------------------------------------------------------------


def lineage_tree(run: Run) -> str:
    """Every experiment under the one it was proposed from, as nested lists: the kept chain
    (the branch's history) in bold on a green rule, a composition under the best it was
    composed onto, linked both ways with the superseded candidate it composes."""
    if not run.experiments:
        return "<p class=note>No experiments yet.</p>"
    below = lineage.children(run.experiments)
    chain = {e.id for e in lineage.kept_chain(run.experiments)}
    composed = lineage.compositions(run.experiments)

    def node(e: Experiment) -> str:
        kinds = " ".join(k for k, yes in (("kept", e.id in chain), ("composition", e.composed_from is not None),
                                          ("superseded", e.status == "superseded")) if yes)  # fmt: skip
        passed = "" if e.passed is None else f" {e.passed}/{e.total}"
        text = f"<a href='#e{e.id}'>{e.id}</a> {_badge(e.status, e.verdict)}<span class=score>{passed}</span>"
        if e.composed_from is not None:
            text += f" <span class=composes>composes <a href='#t{e.composed_from}'>{e.composed_from}</a></span>"
        text += f" {_e(_short(e.description or e.reason))}"
        if e.status == "superseded":
            text += (f" <span class=note>→ composed as <a href='#t{composed[e.id].id}'>{composed[e.id].id}</a></span>"
                     if e.id in composed else f" <span class=note>({_e(_short(e.reason))})</span>")  # fmt: skip
        kids = sorted(below.get(e.id, []), key=lambda k: k.id in chain)  # the chain goes on below the rest
        nested = "<ul>" + "".join(node(k) for k in kids) + "</ul>" if kids else ""
        return f"<li id=t{e.id} class='{kinds}'><span class=node>{text}</span>{nested}</li>"

    note = ("<p class=note>Each experiment under the one it was proposed from. <b>Bold, on the green "
            "rule</b>: the kept chain, the branch's history. A composition merges a superseded "
            "candidate's change (one that won against a parent no longer the best) onto the best.</p>")  # fmt: skip
    roots = sorted(below.get(None, []), key=lambda k: k.id in chain)
    return note + "<div class=scroll><ul id=tree>" + "".join(node(e) for e in roots) + "</ul></div>"


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def lineage_table(run: Run) -> str:
    held_out = any(e.held_out for e in run.experiments)
    rows = ["<table id=lineage><tr><th>#</th><th>parent</th><th>status</th><th>passed</th>"
            + ("<th title='scored for each candidate that won on the search tasks; the meta-agent never "
               "sees these tasks'>held-out</th>" if held_out else "")
            + "<th>hit rate</th><th>cost</th><th>description</th></tr>"]  # fmt: skip
    for e in run.experiments:
        held = f"{e.held_out['passed']}/{e.held_out['total']}" if e.held_out else "–"
        hits = "" if e.hit_rate is None else f"{e.hit_rate:.0%}"
        passed = "" if e.passed is None else f"{e.passed}/{e.total}"
        parent = "–" if e.parent_id is None else f"<a href='#e{e.parent_id}'>{e.parent_id}</a>"
        if e.composed_from is not None:
            parent += f" + <a href='#e{e.composed_from}'>{e.composed_from}</a>'s change"
        rows.append(f"<tr><td><a href='#e{e.id}'>{e.id}</a></td><td>{parent}</td><td>{_badge(e.status, e.verdict)}</td>"
                    f"<td>{passed}</td>" + (f"<td>{held}</td>" if held_out else "")
                    + f"<td>{hits}</td><td>{money(e.total_cost, bool(e.cost_unknown), 3)}</td>"
                    f"<td>{_e(e.description)}</td></tr>")  # fmt: skip
    note = ("<p class=note>held-out: scored only for candidates that won on the search tasks "
            "(–: not scored).</p>" if held_out else
            "<p class=note>No held-out split is set ([splits] in autoagent.toml), so every task is a "
            "search task: the meta-agent sees them all.</p>")  # fmt: skip
    return "".join(rows) + "</table>" + note


def details(run: Run, e: Experiment, base: Path, pages: dict[str, Path]) -> str:
    fixed, broken = e.flips.get("fixed", []), e.flips.get("broken", [])
    errored = bool(e.trials) and all(t.get("error") for t in e.trials)
    lines = [f"<details id=e{e.id}{' open' if errored else ''}><summary>experiment {e.id} "
             f"{_badge(e.status, e.verdict)} {_e(e.description)}</summary>"]  # fmt: skip
    if errored:
        kinds = sorted({t["error"] for t in e.trials})
        lines.append(f"<p class=alarm>Every one of its {len(e.trials)} trials errored: {_e('; '.join(kinds[:3]))}</p>")
    if e.hypothesis:
        lines.append(f"<p><b>Hypothesis.</b> {_e(e.hypothesis)}</p>")
    if e.overfitting:
        lines.append(f"<p><b>If this exact task disappeared?</b> {_e(e.overfitting)}</p>")
    lines.append(f"<p><b>Decision.</b> {_e(e.reason)}</p>")
    if cost_charts.effort_note(e):
        lines.append(f"<p class=effort>{_e(cost_charts.effort_note(e))}</p>")
    if e.expected_flips or fixed or broken:
        lines.append(f"<p><b>Expected to flip:</b> {_e(', '.join(e.expected_flips) or 'nothing')} · "
                     f"<b>fixed:</b> {_e(', '.join(fixed) or 'none')} · <b>broke:</b> {_e(', '.join(broken) or 'none')}</p>")  # fmt: skip
    if e.commit:
        parent = "the first of the run" if e.parent_id is None else f"parent experiment {e.parent_id}"
        if e.composed_from is not None:
            parent += f", composing experiment {e.composed_from}'s change onto it"
        lines.append(f"<p class=note>commit {e.commit[:10]}, {parent}, "
                     f"{sum(e.timings.values()):.0f} s, cost {money(e.total_cost, bool(e.cost_unknown))} "
                     f"(task {money(e.cost_usd.get('task', 0), 'task' in e.cost_unknown)}, "
                     f"meta {money(e.cost_usd.get('meta', 0), 'meta' in e.cost_unknown)})</p>")  # fmt: skip
    diff = run.diffs.get(e.id)
    if diff:
        lines.append("<pre class=diff>" + _colour_diff(diff[:DIFF_LIMIT]) + "</pre>")
    if e.trials:
        links = ["<tr><th>task</th><th>stage</th><th>reward</th><th>trial</th><th>error</th></tr>"]
        for t in e.trials:
            trial = Path(t["trial_dir"])
            mark = "✓" if t["reward"] >= 1 else "✗"
            page = pages.get(t["trial_dir"])
            steps = (f"<a href='{_e(_link(page, base))}'>steps and verifier</a>" if page else
                     f"<a href='{_e(_link(trial / 'agent' / 'trajectory.json', base))}'>trajectory.json</a> · "
                     f"<a href='{_e(_link(trial / 'verifier' / 'test-stdout.txt', base))}'>verifier output</a>")  # fmt: skip
            links.append(f"<tr><td>{_e(t['task'])}</td><td>{_e(t.get('label', ''))}</td><td>{mark} {t['reward']:g}</td>"
                         f"<td>{steps}</td><td>{_e(t.get('error') or '')}</td></tr>")  # fmt: skip
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
    labelled: set[str] = set()
    for e in run.experiments:
        score = _score(e)
        label = None if e.status in labelled else e.status
        labelled.add(e.status)
        if score is None:  # a crash or a rejection: on the axis, it still happened
            axes.scatter(e.id, 0, marker="x", color=COLORS.get(e.status, "#888"), zorder=3, label=label)
        else:
            axes.scatter(e.id, score, s=44 if e.status in ("baseline", "keep") else 30, edgecolors="white",
                         color=COLORS.get(e.status, "#888"), zorder=3, label=label)  # fmt: skip
    best, best_x, best_y = None, [], []
    for e in run.experiments:
        score = _score(e)
        if score is not None and e.status in ("baseline", "keep"):
            best = score
        if best is not None:
            best_x.append(e.id)
            best_y.append(best)
    axes.step(best_x, best_y, where="post", color=COLORS["keep"], linewidth=2, label="running best")
    baseline = next((e for e in run.experiments if e.status == "baseline"), None)
    if best_x and baseline and baseline.noise_floor and baseline.total:
        half = baseline.noise_floor / baseline.total
        axes.fill_between(best_x, [v - half for v in best_y], [v + half for v in best_y], step="post",
                          color=COLORS["keep"], alpha=0.12, label="noise floor")  # fmt: skip
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_xlabel("experiment")
    axes.set_ylabel(f"{_tasks_word(run)} passed")
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes.set_title(f"AutoAgent: {run.root.name} ({datetime.now():%Y-%m-%d})", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
