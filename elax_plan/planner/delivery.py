"""How this plan proves its writes landed, as the plan shows it and apply carries it out.

An acknowledgement is not proof on a real node: another writer or a compaction can
overwrite an acknowledged ``WAL-<seq>`` (CONTRACT H1/H2). ``verify.delivery`` says how
many acknowledged writes are read back from ``target.store`` and matched to what was
sent (``live.delivery``); this module turns it into the document's ``delivery`` section
— the mode, how many writes one read-back stands for, and one sentence for reviewers.
"""

from __future__ import annotations

from typing import Any

from elax_plan.live.delivery import sample_every
from elax_plan.spec import PlanSpec


def delivery_facts(spec: PlanSpec) -> dict[str, Any]:
    """The ``delivery`` section of the execution plan."""
    mode = spec.verify.delivery
    every = sample_every(mode)
    if every is None:
        detail = (
            "acknowledged writes are not read back; a write another writer or a "
            "compaction overwrites (CONTRACT H1/H2) is lost unless two answers share a "
            "wal_sequence"
        )
    else:
        which = (
            "every acknowledged WAL-<seq>"
            if every == 1
            else f"about one acknowledged WAL-<seq> in {every} (every one is checked "
            "against wal_highwater and the WAL listing)"
        )
        detail = (
            f"{which} is read back from target.store and matched to what was sent, before "
            "writing, during the writes and after them; lost rows are re-sent in this run"
        )
    return {"mode": mode, "sample_every": every, "detail": detail}


def delivery_warning(spec: PlanSpec) -> str | None:
    """The plan's warning when writes are not proven at all."""
    if spec.verify.delivery != "off":
        return None
    return (
        "verify.delivery off: acknowledged writes are not read back, so rows another writer "
        "or a compaction overwrites on the node (CONTRACT H1/H2) can be lost without notice."
    )
