#!/usr/bin/env bash
# The GitHub Action's run step (action.yml): `plan` writes the markdown report (and comments
# it on the pull request), `apply` applies the plans one by one with a summary each (and
# comments the summaries on the merged pull request).
#
# Every elax-plan command line the action runs is one function below (elax_*), so a renamed
# flag is a one-line fix; tests/test_deploy_files.py runs this script with a stand-in
# elax-plan that records them.
#
# Inputs (environment): ELAX_COMMAND (plan|apply), ELAX_PLANS (paths, directories or globs,
# separated by spaces or newlines; elax-plan expands the globs itself), ELAX_CHANGED_FROM (a
# git ref, optional), ELAX_PR and ELAX_REPO (optional), ELAX_OUT_DIR (where the report and
# summaries go), ELAX_PLAN (the elax-plan command) and ELAX_PYTHON (its interpreter).
# Outputs ($GITHUB_OUTPUT): exit-code, has-changes, report, summaries-dir.
# Exit code: 0 when plan succeeded (changes or not) or every apply did; otherwise the worst
# of elax-plan's (1 error, 3 verification failed, 130 interrupted), after commenting.
set -uo pipefail
set -f # no globbing: a glob in ELAX_PLANS reaches elax-plan as written

elax=${ELAX_PLAN:-elax-plan}
python=${ELAX_PYTHON:-python3}
changed_from=${ELAX_CHANGED_FROM:-}
pr=${ELAX_PR:-}
repo=${ELAX_REPO:-}
out=${ELAX_OUT_DIR:?ELAX_OUT_DIR is not set}
# shellcheck disable=SC2206 # split on whitespace on purpose (no globbing: set -f)
plans=(${ELAX_PLANS:-plans/})
mkdir -p "$out/summaries"
report="$out/report.md"

# --- the elax-plan command lines ------------------------------------------------------------

# The review: one markdown report for all the plans (those changed since the ref, if given);
# exit 0 no changes, 2 changes, 1 error.
elax_plan_report() {
  local since=()
  [[ -n $changed_from ]] && since=(--changed-from "$changed_from")
  "$elax" plan "$@" "${since[@]}" --format markdown --detailed-exitcode
}

# Whether one plan is among those changed since the ref and has changes: exit 2 if so, 0
# if it is unchanged or has nothing to do, 1 on error.
elax_plan_pending() {
  "$elax" --quiet plan "$1" --changed-from "$changed_from" --detailed-exitcode >/dev/null
}

# Apply one plan, unattended, its summary written to $2.
elax_apply() {
  "$elax" apply "$1" --auto-approve --no-progress --summary-out "$2"
}

# Post the markdown file $1 on the pull request, or update the comment posted before.
elax_comment() {
  local to=()
  [[ -n $repo ]] && to=(--repo "$repo")
  "$elax" comment --pr "$pr" "${to[@]}" --body-file "$1"
}

# The plan files the arguments name, one a line: elax-plan's own resolution (directories:
# every *.yaml with `version: 1`; globs, ** included).
elax_plan_files() {
  "$python" -c 'import sys
from elax_plan.cli._plan_set import resolve_plan_args
for path in resolve_plan_args(sys.argv[1:]):
    print(path)' "$@"
}

# --------------------------------------------------------------------------------------------

output() { [[ -n ${GITHUB_OUTPUT:-} ]] && echo "$1=$2" >>"$GITHUB_OUTPUT"; return 0; }

# The worst of two exit codes, as elax-plan combines several plans': 130, then 1, then 3.
worst() {
  local code
  for code in 130 1 3; do
    if [[ $1 == "$code" || $2 == "$code" ]]; then echo "$code"; return; fi
  done
  if ((${1} != 0)); then echo "$1"; else echo "$2"; fi
}

# Cut the markdown file $1 to GitHub's comment limit (65,536 characters), saying so.
fit_comment() {
  "$python" - "$1" <<'PY'
import pathlib, sys
path = pathlib.Path(sys.argv[1])
text = path.read_text(encoding="utf-8")
LIMIT = 65536 - 400
if len(text) > LIMIT:
    note = ("\n\n… cut here: the comment limit is 65,536 characters. The full summaries are "
            "in the workflow run's artifacts.\n")
    path.write_text(text[:LIMIT] + note, encoding="utf-8")
PY
}

comment_rc=0
post() {
  [[ -z $pr ]] && return 0
  if [[ ! -s $1 ]]; then
    echo "elax-plan action: nothing to comment on #$pr."
    return 0
  fi
  elax_comment "$1" || comment_rc=1
}

case ${ELAX_COMMAND:-} in
plan)
  elax_plan_report "${plans[@]}" >"$report"
  rc=$?
  output exit-code "$rc"
  output has-changes "$([[ $rc == 2 ]] && echo true || echo false)"
  output report "$report"
  output summaries-dir "$out/summaries"
  cat "$report"
  [[ -n ${GITHUB_STEP_SUMMARY:-} ]] && cat "$report" >>"$GITHUB_STEP_SUMMARY"
  post "$report"
  if [[ $rc == 0 || $rc == 2 ]]; then rc=0; fi
  ;;
apply)
  rc=0
  applied=0
  files=$(elax_plan_files "${plans[@]}") || {
    output exit-code 1
    exit 1
  }
  : >"$report"
  while IFS= read -r file; do
    [[ -z $file ]] && continue
    if [[ -n $changed_from ]]; then
      elax_plan_pending "$file"
      pending=$?
      if [[ $pending == 0 ]]; then
        echo "elax-plan action: $file: unchanged since $changed_from or nothing to do; not applied."
        continue
      elif [[ $pending != 2 ]]; then
        echo "::error file=$file::elax-plan plan failed (exit $pending); not applied."
        rc=$(worst "$rc" "$pending")
        continue
      fi
    fi
    summary="$out/summaries/$(echo "${file#./}" | tr '/' '_' | sed 's/\.ya\?ml$//').md"
    echo "::group::elax-plan apply $file"
    elax_apply "$file" "$summary"
    code=$?
    echo "::endgroup::"
    applied=$((applied + 1))
    if [[ $code != 0 ]]; then
      echo "::error file=$file::elax-plan apply failed (exit $code)."
    fi
    rc=$(worst "$rc" "$code")
    if [[ -s $summary ]]; then
      { cat "$summary"; printf '\n\n'; } >>"$report"
    fi
    [[ $code == 130 ]] && break
  done <<<"$files"
  output exit-code "$rc"
  output has-changes "$([[ $applied -gt 0 ]] && echo true || echo false)"
  output report "$report"
  output summaries-dir "$out/summaries"
  if [[ -s $report ]]; then
    [[ -n ${GITHUB_STEP_SUMMARY:-} ]] && cat "$report" >>"$GITHUB_STEP_SUMMARY"
    fit_comment "$report"
  fi
  post "$report"
  ;;
*)
  echo "::error::elax-plan action: command must be plan or apply, not '${ELAX_COMMAND:-}'."
  output exit-code 1
  exit 1
  ;;
esac

if [[ $rc == 0 && $comment_rc != 0 ]]; then rc=1; fi
exit "$rc"
