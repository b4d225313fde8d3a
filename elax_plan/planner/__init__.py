"""The planner: (PlanSpec, LiveState) → ExecutionPlan, with no I/O, clock or randomness.

Owns the diff between what the plan wants ("this namespace holds this source
dataset, verified") and what is there: per source file ``+`` new, ``~`` changed,
``>`` partly written, ``=`` done, ``-`` gone; the preconditions judged on live
values; the post-steps (wait for the index, parts and epoch, smoke queries,
recall, WAL trim); and the estimates. Everything it knows arrives in
``LiveState``, including the one clock reading (``observed_at``), so the same
inputs always give the same plan — the golden cases in ``tests/cases`` rely on it.
Its input types are ``live.state_view``'s and ``live.model``'s (with the WAL
trim rule, ``eligible_wal_objects``, which ``apply.trim`` shares); it must not
call a reader or define a concept of its own input.
"""

from elax_plan.planner.build import build_plan, plan_inputs, spec_digest
from elax_plan.planner.post_steps import check_steps, smoke_seed

__all__ = ["build_plan", "check_steps", "plan_inputs", "smoke_seed", "spec_digest"]
