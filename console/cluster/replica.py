"""A worker's replica of its group's facts: what the head holds for the group, replayed into a scratch run folder.

The head owns the run's store. A worker runs the local runner against a *replica*: a run folder in a scratch
directory on its own node, seeded with the head's fact events for the group's cells (the run's frozen meta, the
cells' registration and every state change, speed, item, stage result and verdict so far, `group_facts` on the
head) applied through the replica's own sink, and with the head's decisions for them. So an interrupted phase
resumes there exactly as it would locally: committed items are skipped, a measured speed is not redone, a
consumed approval is found. The replayed events keep their `eid`, so nothing the worker re-ships of them
changes the head (its sink ignores an `eid` it has).
"""

from __future__ import annotations

import json
from typing import Any

from console.events import from_dict
from console.run.operator_decisions import DecisionConflict
from console.run.sink import APPLY, EventSink
from console.run.store import Store

FACT_KINDS = frozenset(cls.kind for cls in APPLY)
"""Events that change a table (console/run/sink.py APPLY): what a replica needs; progress and live statistics
are left out."""


def group_facts(store: Store, cell_ids: list[str]) -> dict[str, Any]:
    """What the head holds for these cells, as plain data a Ray task takes: the fact events of the run (no cell)
    and of these cells, in the order the head applied them, and every decision for them (consumed or not)."""
    wanted = set(cell_ids)
    events = []
    for kind, line in store.db.execute("SELECT kind, line FROM events ORDER BY seq"):
        if kind in FACT_KINDS:
            d = json.loads(line)
            if d.get("cell_id") is None or d["cell_id"] in wanted:
                events.append(d)
    return {"events": events, "decisions": [vars(d) for d in store.decisions() if d.cell_id in wanted]}


def seed_replica(sink: EventSink, facts: dict[str, Any]) -> None:
    """Apply the head's facts to a fresh replica: the events through its sink, the decisions as recorded (a
    consumed one consumed here too)."""
    for d in facts["events"]:
        sink.apply(from_dict(d))
    for d in facts["decisions"]:
        decision_id = insert_decision(sink.store, d)
        if decision_id is not None and d.get("consumed") is not None:
            sink.store.consume(decision_id)


def insert_decision(store: Store, d: dict[str, Any]) -> int | None:
    """A decision the head recorded (and checked there) into the replica, pending, for the worker's runner to
    take; None when the replica already holds it or an earlier one settles it."""
    try:
        return store.decide(d["cell_id"], d["action"], d["who"], bench_id=d["bench_id"], reason=d["reason"],
                            estimate=d["estimate"])
    except DecisionConflict:
        return None
