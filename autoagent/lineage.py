"""The experiments as a tree: each under the experiment it was proposed from (`parent_id`).

A composition (a winning candidate's change merged onto a newer best) sits under the best
it was composed onto and names the candidate it composes (`composed_from`); that candidate
is `superseded`. The kept chain is the branch's history: from the best back, parent by
parent, to the baseline. The report draws the tree and `autoagent status` the chain.
"""

from __future__ import annotations

from autoagent.ledger import Experiment


def children(experiments: list[Experiment]) -> dict[int | None, list[Experiment]]:
    """Experiments by the id they hang under, in id order; None: the roots (the baseline, and
    any experiment whose parent is not among `experiments`)."""
    ids = {e.id for e in experiments}
    found: dict[int | None, list[Experiment]] = {}
    for e in sorted(experiments, key=lambda e: e.id):
        found.setdefault(e.parent_id if e.parent_id in ids else None, []).append(e)
    return found


def kept_chain(experiments: list[Experiment]) -> list[Experiment]:
    """The best's ancestry, baseline first: the harnesses the branch went through."""
    by_id = {e.id: e for e in experiments}
    kept = [e for e in experiments if e.status in ("baseline", "keep")]
    chain, current = [], kept[-1] if kept else None
    while current is not None and current.id not in {e.id for e in chain}:  # (no cycle can be; none hangs)
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return chain[::-1]


def compositions(experiments: list[Experiment]) -> dict[int, Experiment]:
    """The composition of each superseded candidate that got one, by the candidate's id."""
    return {e.composed_from: e for e in experiments if e.composed_from is not None}


def landed(experiments: list[Experiment]) -> list[Experiment]:
    """The meta-agent's proposals whose change was kept: kept themselves, or composed onto the
    best by a composition that was kept."""
    composed = compositions(experiments)
    return [e for e in proposals(experiments)
            if e.status == "keep" or (e.id in composed and composed[e.id].status == "keep")]  # fmt: skip


def proposals(experiments: list[Experiment]) -> list[Experiment]:
    """What the meta-agent proposed: neither the baseline nor a composition (the loop makes those)."""
    return [e for e in experiments if e.status != "baseline" and e.composed_from is None]


def chain_line(experiments: list[Experiment]) -> str:
    """The kept chain in one line: `0 → 3 → 9 (composes 7)`."""
    return " → ".join(f"{e.id}" + (f" (composes {e.composed_from})" if e.composed_from is not None else "")
                      for e in kept_chain(experiments))  # fmt: skip
