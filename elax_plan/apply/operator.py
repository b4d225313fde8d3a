"""Who ran this apply, where, and from what: the summary's operator header.

Owns reading those facts once per run from the process's surroundings: the user and
host, the CI job when there is one (GitHub Actions, GitLab CI, Buildkite, Jenkins, or
any CI that sets ``CI``), elax-plan's version, and the git commit of the repository the
plan file lives in (with whether the plan file differs from it). Every read is best
effort: a missing git or a plan outside a repository gives ``None``, never an error.
Nothing secret is read (no tokens, only names, ids and URLs CI systems print anyway).
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 5.0


def operator_facts(plan_file: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The operator header's facts for a run of ``plan_file``."""
    env = os.environ if env is None else env
    return {
        "user": _user(),
        "host": socket.gethostname(),
        "ci": ci_job(env),
        "elax_plan_version": _version(),
        "git": _git(plan_file),
    }


def ci_job(env: Mapping[str, str]) -> dict[str, str] | None:
    """The CI job this process runs in (system, job and a URL when the system gives one)."""
    if env.get("GITHUB_ACTIONS") == "true":
        repo, run = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return {
            "system": "GitHub Actions",
            "job": f"{env.get('GITHUB_WORKFLOW', '')} / {env.get('GITHUB_JOB', '')}".strip(" /"),
            "url": f"{server}/{repo}/actions/runs/{run}" if repo and run else "",
        }
    if env.get("GITLAB_CI") == "true":
        return {
            "system": "GitLab CI",
            "job": env.get("CI_JOB_NAME", ""),
            "url": env.get("CI_JOB_URL", ""),
        }
    if env.get("BUILDKITE") == "true":
        return {
            "system": "Buildkite",
            "job": env.get("BUILDKITE_LABEL", ""),
            "url": env.get("BUILDKITE_BUILD_URL", ""),
        }
    if env.get("JENKINS_URL"):
        return {
            "system": "Jenkins",
            "job": env.get("JOB_NAME", ""),
            "url": env.get("BUILD_URL", ""),
        }
    if env.get("CI", "").lower() in ("true", "1"):
        return {"system": "CI", "job": "", "url": ""}
    return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no USER in a bare container
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _version() -> str:
    try:
        return importlib.metadata.version("elax-plan")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _git(plan_file: Path) -> dict[str, Any] | None:
    """The commit checked out where the plan file is, and whether the file differs from it."""
    folder = plan_file.parent
    commit = _run_git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _run_git(folder, "status", "--porcelain", "--", plan_file.name)
    return {"commit": commit, "plan_file_modified": bool(status)}


def git(folder: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``git -C folder ARGS``, output captured, no input; raises ``OSError`` (no git) and
    ``subprocess.TimeoutExpired``: callers decide whether that is an error or no answer."""
    return subprocess.run(
        ["git", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _run_git(folder: Path, *args: str) -> str | None:
    try:
        done = git(folder, *args, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
