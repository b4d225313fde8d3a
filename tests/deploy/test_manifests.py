"""The deployment files validate offline: action.yml and the example workflow against the
GitHub schemas check-jsonschema ships (vendor.github-actions, vendor.github-workflows), the
Kubernetes manifests against kubernetes-validate's schemas in strict mode, and the plans in
the example ConfigMap are plans `elax-plan validate` accepts."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from elax_plan.spec import load_plan

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S = REPO / "examples" / "kubernetes"
WORKFLOW = REPO / "examples" / "github" / "elax-plan.yml"
# A Kubernetes version kubernetes-validate ships schemas for, with every field the examples
# use (Job podFailurePolicy, CronJob timeZone: GA in 1.27–1.31).
KUBERNETES_VERSION = "1.33.0"
# Belt and braces for "offline": the checks run in a network namespace of their own (no
# interface but loopback) where `unshare` can make one, as root can here; and any HTTP(S)
# request goes to a closed loopback port.
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


@functools.cache
def no_network() -> list[str]:
    """``unshare -rn`` when it works here (a new user and network namespace), else nothing."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    return ["unshare", "-rn"] if probe.returncode == 0 else []


def offline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*no_network(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **OFFLINE},
        stdin=subprocess.DEVNULL,
    )


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return offline(BIN / "check-jsonschema", "--builtin-schema", schema, *files)


def test_action_validates_against_the_github_action_schema() -> None:
    done = check_jsonschema("vendor.github-actions", REPO / "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_workflow_validates_against_the_github_workflows_schema() -> None:
    done = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_fails_on_a_broken_action(tmp_path: Path) -> None:
    """The check is real: an action whose composite step lacks `shell` is refused."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    del action["runs"]["steps"][1]["shell"]
    broken = tmp_path / "action.yml"
    broken.write_text(yaml.safe_dump(action))
    assert check_jsonschema("vendor.github-actions", broken).returncode == 1


def test_example_workflow_has_the_documented_shape() -> None:
    """Minimal permissions; plan on pull requests that touch plans, apply on push in a
    protected environment with the summaries uploaded and commented."""
    flow = yaml.safe_load(WORKFLOW.read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as true
    assert on["pull_request"]["paths"] == ["plans/**"] and "push" in on
    assert flow["permissions"] == {"contents": "read", "pull-requests": "write"}
    plan, apply = flow["jobs"]["plan"], flow["jobs"]["apply"]
    assert plan["steps"][0]["with"]["fetch-depth"] == 0
    assert plan["steps"][1]["with"]["changed-from"] == "origin/${{ github.base_ref }}"
    assert apply["environment"] == "production"
    uses = [step.get("uses", "") for step in apply["steps"]]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    action_steps = [s for s in apply["steps"] if s.get("uses", "").startswith("OWNER/elax-plan@")]
    assert action_steps[0]["with"]["command"] == "apply"
    assert action_steps[0]["with"]["pr"] == "${{ steps.pr.outputs.number }}"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_offline_in_strict_mode() -> None:
    """kubernetes-validate's own schemas for one version, strict: no field they do not name."""
    files = sorted(K8S.glob("*.yaml"))
    done = offline(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, *files)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(_documents()) == 4, done.stdout
    assert {doc["kind"] for _, doc in _documents()} == {"ConfigMap", "CronJob", "Job", "Secret"}


def test_kubernetes_validation_is_strict() -> None:
    """A misspelt field is refused: strict mode rejects what the schemas do not name."""
    import kubernetes_validate

    job = next(d for _, d in _documents() if d["kind"] == "Job")
    bad = {**job, "spec": {**job["spec"], "paralelism": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_the_workers_are_a_queue_of_non_root_indexed_pods() -> None:
    docs = {d["kind"]: d for _, d in _documents()}
    job = docs["Job"]["spec"]
    cron = docs["CronJob"]["spec"]["jobTemplate"]["spec"]
    for spec in (job, cron):
        assert spec["completionMode"] == "Indexed" and spec["parallelism"] > 1
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["args"][-4:] == ["apply", "--queue", "/plans", "--auto-approve"]
        assert container["envFrom"] == [{"secretRef": {"name": docs["Secret"]["metadata"]["name"]}}]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["plans"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert set(docs["Secret"]["stringData"].values()) == {"REPLACE_ME"}


def test_the_configmap_plans_are_valid_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the workers find in /plans: plans `elax-plan validate` accepts, two of them on
    one namespace (the README's example of the namespace lease)."""
    monkeypatch.setenv("ELACSYM_URL", "http://elacsym-query:8080")
    monkeypatch.setenv("ELACSYM_DATA_ROOT", "s3://elacsym-data/prod")
    configmap = next(d for _, d in _documents() if d["kind"] == "ConfigMap")
    namespaces = []
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
        spec = load_plan(str(tmp_path / name), {})
        namespaces.append(spec.target.namespace)
    assert sorted(namespaces) == ["products", "products", "support-docs"]
