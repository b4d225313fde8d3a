"""Workload and comparison rules: what ``verify.workload``, ``verify.compare`` and
``verify.recall.queries`` must hold beyond their schema, checked on defaulted data.

Owns the cross-key rules only: a comparison and a workload-fed recall gate need a workload;
a baseline is either another elacsym (``url`` and ``namespace``) or a ``results`` file, never
both; the baseline's ``ann_params`` go with a ``url``. The workload's lines themselves are read
and checked by ``live.workload`` (``validate`` and ``plan`` both), not here: this module does no
I/O.
"""

from __future__ import annotations

from typing import Any

from elax_plan.spec.validate.checker import Checker, value_at
from elax_plan.spec.yaml_loader import NodePath


def compare_checks(checker: Checker, d: dict[str, Any]) -> None:
    """Every rule on ``verify.workload``, ``verify.compare`` and ``verify.recall.queries``."""
    workload = value_at(d, ("verify", "workload"))
    recall = value_at(d, ("verify", "recall"))
    if isinstance(recall, dict) and recall.get("queries") == "workload" and not workload:
        checker.add(
            ("verify", "recall", "queries"),
            "recall.queries: workload takes the recall sample from verify.workload's vector "
            "queries, but verify.workload is not set; add verify.workload: queries.ndjson or "
            "remove recall.queries",
        )
    compare = value_at(d, ("verify", "compare"))
    if not isinstance(compare, dict):
        return
    if not workload:
        checker.add(
            ("verify", "compare"),
            "verify.compare runs verify.workload's queries against the baseline, but "
            "verify.workload is not set; add verify.workload: queries.ndjson (one query a line)",
            at_key=True,
        )
    baseline = compare.get("baseline")
    if isinstance(baseline, dict):
        _baseline_checks(checker, baseline)


def _baseline_checks(checker: Checker, baseline: dict[str, Any]) -> None:
    path: NodePath = ("verify", "compare", "baseline")
    has_url = baseline.get("url") is not None
    has_results = baseline.get("results") is not None
    if has_url and has_results:
        checker.add(
            (*path, "results"),
            "the baseline is either another elacsym (url, namespace) or a results file, not "
            "both; remove url or results",
            at_key=True,
        )
    elif not has_url and not has_results:
        checker.add(
            path,
            "the baseline needs url and namespace (another elacsym) or results (a file of "
            "expected results); add one of them",
            at_key=True,
        )
    elif has_url and not baseline.get("namespace"):
        checker.add(
            (*path, "url"),
            "the baseline elacsym needs a namespace too; add baseline.namespace",
            at_key=True,
        )
    if has_results and not has_url:
        for key in ("namespace", "api_key", "ann_params"):
            if baseline.get(key) not in (None, {}):
                checker.add(
                    (*path, key),
                    f"baseline.{key} applies to a baseline elacsym (url), not to a results "
                    f"file; remove {key}",
                    at_key=True,
                )
