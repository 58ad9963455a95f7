"""The report's cost figures: score against cost per experiment, and cost per task over time.

Inline SVG like the rest of report.html. The cost is the gate's measure (effort.py):
the one the latest kept experiment was judged in, or tokens; an experiment with no
value in it (a crash, a price unknown) is left out of the figure, never drawn at 0.
"""

from __future__ import annotations

import html

from autoagent.evaluate import effort
from autoagent.ledger import Experiment

KEPT = ("baseline", "keep")
COLORS = {"baseline": "#4c72b0", "keep": "#2a9d4b", "discard": "#999999", "indecisive": "#c9a227",
          "superseded": "#6aaed6"}  # the statuses of evaluated experiments; report.py adds the rest


def measure_of(experiments: list[Experiment]) -> str:
    """The measure to draw: the latest kept experiment's, else tokens."""
    kept = [e for e in experiments if e.status in KEPT and e.effort.get("measure")]
    return kept[-1].effort["measure"] if kept else "tokens"


def _points(experiments: list[Experiment], measure: str) -> list[tuple[Experiment, float, float]]:
    """(experiment, cost per task, share passed) for each experiment with both."""
    return [(e, e.effort[measure], e.passed / e.total) for e in experiments
            if e.effort.get(measure) is not None and e.passed is not None and e.total]  # fmt: skip


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _dot(x: float, y: float, e: Experiment, measure: str, value: float) -> str:
    color = COLORS.get(e.status, "#888")
    return (f"<circle cx={x:.1f} cy={y:.1f} r={5 if e.status in KEPT else 3.5} fill='{color}' "
            f"class='point {e.status}'><title>experiment {e.id}: {_e(e.verdict)}, passed {e.passed}/{e.total}, "
            f"{_e(effort.fmt(measure, value))} per task</title></circle>")  # fmt: skip


PAD = 60
NOTHING = "<p class=note>No cost per task recorded yet.</p>"


def _frame(experiments: list[Experiment]) -> tuple[str, list, float]:
    """The cost measure, each experiment's (experiment, cost per task, share passed), and the
    top of the cost axis."""
    measure = measure_of(experiments)
    points = _points(experiments, measure)
    return measure, points, (max(v for _, v, _ in points) * 1.1 or 1.0) if points else 1.0


def _axes(width: int, height: int) -> list[str]:
    return [f"<line x1={PAD} y1={height - PAD} x2={width - 10} y2={height - PAD} stroke=#999 />",
            f"<line x1={PAD} y1=30 x2={PAD} y2={height - PAD} stroke=#999 />"]


def score_cost_svg(experiments: list[Experiment], width: int = 1000, height: int = 320) -> str:
    """Each experiment a point (cost per task, share passed); the kept ones joined in order."""
    measure, points, top = _frame(experiments)
    if not points:
        return NOTHING
    pad = PAD
    x = lambda v: pad + v / top * (width - pad - 20)  # noqa: E731
    y = lambda s: height - pad - s * (height - pad - 30)  # noqa: E731
    parts = [*_axes(width, height), f"<text x={width // 2} y={height - 10} text-anchor=middle>{_e(measure)} per task (mean); "
             "better is up and to the left</text>",
             f"<text x={pad} y={height - pad + 16} text-anchor=middle>0</text>",
             f"<text x={pad - 6} y=34 text-anchor=end>100%</text><text x={pad - 6} y={height - pad} "
             "text-anchor=end>0%</text>",
             f"<text x={width - 12} y={height - pad + 16} text-anchor=end>{_e(effort.fmt(measure, top))}</text>"]  # fmt: skip
    kept = [(x(v), y(s)) for e, v, s in points if e.status in KEPT]
    if len(kept) > 1:
        parts.append(f"<polyline points='{' '.join(f'{a:.1f},{b:.1f}' for a, b in kept)}' fill=none "
                     f"stroke='{COLORS['keep']}' stroke-width=2 class=kept-frontier />")  # fmt: skip
    parts += [_dot(x(v), y(s), e, measure, v) for e, v, s in points]
    parts.append(f"<text x={pad} y=14><tspan fill='{COLORS['keep']}'>— kept, in order</tspan></text>")
    return f"<svg id=score-cost width={width} height={height}>{''.join(parts)}</svg>"


def cost_per_task_svg(experiments: list[Experiment], width: int = 1000, height: int = 240) -> str:
    """Cost per task of each experiment, the running best's joined as a step."""
    measure, points, top = _frame(experiments)
    if not points:
        return NOTHING
    pad = PAD
    ids = {e.id: i for i, e in enumerate(experiments)}
    n = max(len(experiments) - 1, 1)
    x = lambda e: pad + ids[e.id] * (width - pad - 20) / n  # noqa: E731
    y = lambda v: height - pad - v / top * (height - pad - 30)  # noqa: E731
    parts = [*_axes(width, height), f"<text x={pad - 6} y={height - pad} text-anchor=end>0</text>",
             f"<text x={width // 2} y={height - 10} text-anchor=middle>experiment</text>",
             f"<text x={pad - 6} y=34 text-anchor=end>{_e(effort.fmt(measure, top))}</text>"]  # fmt: skip
    step, best = [], None
    for e, v, _ in points:
        if best is not None:
            step.append(f"{x(e):.1f},{y(best):.1f}")
        if e.status in KEPT:
            best = v
            step.append(f"{x(e):.1f},{y(best):.1f}")
    if step:
        parts.append(f"<polyline points='{' '.join(step)}' fill=none stroke='{COLORS['keep']}' stroke-width=2 "
                     "class=running-best-cost />")  # fmt: skip
    parts += [_dot(x(e), y(v), e, measure, v) for e, v, _ in points]
    for e, _, _ in points:
        parts.append(f"<text x={x(e):.1f} y={height - pad + 16} text-anchor=middle>{e.id}</text>")
    return f"<svg id=cost-per-task width={width} height={height}>{''.join(parts)}</svg>"


def effort_note(e: Experiment) -> str:
    """One line for an experiment's details: its cost per task, and the change against its parent."""
    measure = e.effort.get("measure")
    if not measure or e.effort.get(measure) is None:
        return ""
    change = e.effort.get("change")
    against = "" if change is None else f", {change:+.0%} against its parent"
    return f"Cost per task ({measure}): {effort.fmt(measure, e.effort[measure])}{against}."


def saturated(experiments: list[Experiment]) -> str | None:
    """The advice when the best passes every search task."""
    kept = [e for e in experiments if e.status in KEPT]
    best = kept[-1] if kept else None
    if best is None or not best.total or best.passed != best.total:
        return None
    return (f"Every search task passes ({best.passed}/{best.total}): the score cannot rise, only the "
            "cost can fall. Add harder tasks to keep improving the agent.")  # fmt: skip
