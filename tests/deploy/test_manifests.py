"""The deployable artefact, tested like code: every overlay and every combination of the
base with the optional components renders, passes the Kubernetes schemas in strict mode
(unknown fields are errors), and obeys the platform's rules: probes that do not turn a
blip into an outage, limits, non-root and read-only pods, pinned images, no secret in a
manifest, a database per service, replicated streams, migrations that cannot race, and
network policies that allow exactly the flows the code needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest

from shared.bus.permissions import USERS
from shared.settings import SERVICES
from suite.natsauth import AUTH_CONF, kubernetes_auth_conf
from tests.deploy.netpol import Pod, connection_allowed
from tests.deploy.render import (
    OVERLAYS,
    base_with,
    combinations,
    named,
    of_kind,
    overlay,
    pod_templates,
)

# The oldest Kubernetes the manifests support (gRPC probes GA in 1.27) and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# Kinds of the Prometheus Operator: no schema in Kubernetes; checked by the rules below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
NAMESPACE = "qudao"
PROCESSES = (*SERVICES, "gateway")
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY$")
# A release (x.y or x.y.z, with a variant such as -alpine) and/or a digest; never a bare
# major version or a moving name.
PINNED = re.compile(r"^[^:@]+(:\d+\.\d+(\.\d+)?([-.][\w.]+)?)?(@sha256:[0-9a-f]{64})?$")
GENERATED = re.compile(r"-[a-z0-9]{10}$")  # kustomize's content hash on generated names


_VALID: set[tuple[str, str]] = set()


def _validate(docs, label: str) -> None:
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            key = (json.dumps(doc, sort_keys=True), version)
            if key in _VALID:  # the same document in another combination
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(f"{label}: {doc['kind']}/{doc['metadata']['name']} "
                                     f"is invalid for Kubernetes {version}: {error}") from None
            _VALID.add(key)


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_renders_and_passes_strict_schemas(name):
    _validate(overlay(name), f"overlay {name}")


@pytest.mark.parametrize("components", combinations(), ids=lambda c: "+".join(c) or "base")
def test_every_component_combination_renders_and_passes_strict_schemas(components):
    _validate(base_with(components), "base+" + "+".join(components))


def _containers(pod: dict) -> list[dict]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


@pytest.mark.parametrize("name", OVERLAYS)
def test_pods_are_locked_down_and_bounded(name):
    for workload, pod in pod_templates(overlay(name)):
        where = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
        spec = pod["spec"]
        assert spec.get("automountServiceAccountToken") is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in _containers(pod):
            at = f"{where} container {container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, at
            assert security["allowPrivilegeEscalation"] is False, at
            assert security["runAsNonRoot"] is True, at
            assert security["capabilities"]["drop"] == ["ALL"], at
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), at
            image = container["image"]
            assert not image.endswith(":latest") and ":" in image, f"{at}: {image}"
            assert PINNED.match(image), f"{at}: {image} is not a release (x.y.z) or digest"


@pytest.mark.parametrize("name", OVERLAYS)
def test_probes_never_restart_a_pod_for_a_dependency(name):
    docs = overlay(name)
    for service in SERVICES:
        container = _main(named(docs, "Deployment", service))
        assert container["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
        assert "service" not in container["readinessProbe"]["grpc"], \
            f"{service}: readiness follows the database and NATS (the overall status)"
        assert container["startupProbe"]
    gateway = _main(named(docs, "Deployment", "gateway"))
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz/local", \
        "the gateway's readiness is its own, not every service's"
    for statefulset in of_kind(docs, "StatefulSet"):
        for container in statefulset["spec"]["template"]["spec"]["containers"]:
            assert container.get("livenessProbe") and container.get("readinessProbe")


def _main(deployment: dict) -> dict:
    name = deployment["metadata"]["name"]
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == name)


def _env(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


@pytest.mark.parametrize("name", OVERLAYS)
def test_no_secret_is_written_in_a_manifest(name):
    docs = overlay(name)
    for workload, pod in pod_templates(docs):
        for container in _containers(pod):
            for variable, entry in _env(container).items():
                if SECRETISH.search(variable) and not variable.endswith("_FILE"):
                    assert "value" not in entry, \
                        f"{workload['metadata']['name']}: {variable} is written in the manifest"
    for config in of_kind(docs, "ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRETISH.search(key.upper()), f"{config['metadata']['name']}: {key}"
    secrets = {doc["metadata"]["name"].rsplit("-", 1)[0] for doc in of_kind(docs, "Secret")}
    if name == "prod":
        assert secrets == set(), "production Secrets are made outside the manifests"
    else:
        # Dev only: the in-cluster PostgreSQL component's fixed dev credentials.
        assert secrets <= {"postgres-credentials", "qudao-db"}


@pytest.mark.parametrize("name", OVERLAYS)
def test_each_service_has_its_own_database_and_nats_user(name):
    docs = overlay(name)
    keys = set()
    for service in SERVICES:
        deployment = named(docs, "Deployment", service)
        for container in _containers(deployment["spec"]["template"]):
            env = _env(container)
            reference = dict(
                env[f"QUDAO_{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"])
            reference["name"] = GENERATED.sub("", reference["name"])
            assert reference == {"name": "qudao-db", "key": f"{service}-database-url"}
            keys.add(reference["key"])
        main = _env(_main(deployment))
        assert main[f"QUDAO_{service.upper()}_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] \
            == {"name": "qudao-nats", "key": f"{service}-password"}
        others = [v for v in main if v.endswith("_DATABASE_URL") and service.upper() not in v]
        assert others == [], f"{service} sees another service's database: {others}"
    assert len(keys) == len(SERVICES)
    for secret in of_kind(docs, "Secret"):
        if secret["metadata"]["name"].startswith("qudao-db"):
            import base64

            urls = {base64.b64decode(v).decode() for v in secret["data"].values()}
            assert len({url.rsplit("/", 1)[1] for url in urls}) == len(SERVICES)


@pytest.mark.parametrize("name", OVERLAYS)
def test_streams_are_replicated_on_a_three_node_cluster(name):
    docs = overlay(name)
    config = next(c for c in of_kind(docs, "ConfigMap")
                  if c["metadata"]["name"].startswith("qudao-config"))
    assert config["data"]["QUDAO_NATS_STREAM_REPLICAS"] == "3"
    nats = named(docs, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    env = _env(nats["spec"]["template"]["spec"]["containers"][0])
    for user in USERS:
        assert env[f"QUDAO_{user.upper()}_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "qudao-nats", "key": f"{user}-password"}
    nats_config = next(c for c in of_kind(docs, "ConfigMap")
                       if c["metadata"]["name"].startswith("nats-config"))
    assert nats_config["data"]["auth.conf"] == kubernetes_auth_conf()
    assert "include ./auth.conf" in nats_config["data"]["nats.conf"]


def test_the_nats_permissions_file_is_current():
    assert Path(AUTH_CONF).read_text() == kubernetes_auth_conf(), \
        "regenerate with: python -m suite.natsauth"


@pytest.mark.parametrize("name", OVERLAYS)
def test_migrations_run_before_serving_under_a_lock(name):
    docs = overlay(name)
    for service in SERVICES:
        spec = named(docs, "Deployment", service)["spec"]["template"]["spec"]
        init = [c["command"] for c in spec.get("initContainers", [])]
        assert init == [["qudao", "migrate", service]], service
        # The service itself does not migrate again; concurrent migrators take turns on
        # PostgreSQL's advisory lock (tests/production/test_migration_lock.py).
        assert _env(_main(named(docs, "Deployment", service)))[
            f"QUDAO_{service.upper()}_OPTION_SKIP_MIGRATIONS"]["value"] == "1"


def test_alerts_watch_metrics_the_code_exports():
    docs = overlay("prod")
    rules = named(docs, "PrometheusRule", "qudao")
    source = "\n".join(p.read_text() for p in Path("shared").rglob("*.py")) + "\n".join(
        p.read_text() for p in Path("gateway").rglob("*.py"))
    metrics = set()
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook"].startswith("deploy/README.md#")
            anchor = rule["annotations"]["runbook"].split("#")[1]
            assert anchor == rule["alert"].lower()
            metrics |= set(re.findall(r"\b(qudao_[a-z_]+?)(?:_count|_sum|_bucket)?\b",
                                      rule["expr"]))
    for metric in metrics:
        assert f'"{metric}"' in source, f"alert on {metric}, which no code exports"
    runbook = Path("deploy/README.md").read_text().lower()
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            assert f"### {rule['alert'].lower()}" in runbook, f"runbook lacks {rule['alert']}"


# --- network policies ------------------------------------------------------------------

def _pods(docs) -> dict[str, Pod]:
    pods = {}
    for workload, pod in pod_templates(docs):
        pods[workload["metadata"]["name"]] = Pod(NAMESPACE, pod["metadata"]["labels"],
                                                 workload["metadata"]["name"])
    pods["ingress-nginx"] = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    pods["prometheus"] = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    pods["dns"] = Pod("kube-system", {"k8s-app": "kube-dns"})
    pods["stranger"] = Pod("default", {"app": "curious"})
    pods["external-postgres"] = Pod("", {}, "external-postgres", external=True)
    pods["internet"] = Pod("", {}, "internet", external=True)
    return pods


def _policies(docs) -> list[dict]:
    return [{**p, "metadata": {**p["metadata"], "namespace": NAMESPACE}}
            for p in of_kind(docs, "NetworkPolicy")]


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policies_allow_what_the_code_needs(name):
    docs = overlay(name)
    policies, pods = _policies(docs), _pods(docs)
    database = pods["postgres"] if "postgres" in pods else pods["external-postgres"]
    needed = [("ingress-nginx", "gateway", 8080), ("gateway", "nats", 4222),
              ("qudao-ops", "nats", 4222)]
    for service in SERVICES:
        needed += [("gateway", service, 50051), (service, "identity", 50051),
                   (service, "nats", 4222), ("prometheus", service, 9100)]
    needed += [("prometheus", "gateway", 9100), ("prometheus", "nats", 8222)]
    needed += [(member, "nats", 6222) for member in ("nats",)]
    for source, destination, port in needed:
        assert connection_allowed(policies, pods[source], pods[destination], port), \
            f"{name}: {source} → {destination}:{port} is needed and denied"
    for process in [*SERVICES, "gateway"]:
        assert connection_allowed(policies, pods[process], pods["dns"], 53, "UDP"), process
    for service in SERVICES:
        assert connection_allowed(policies, pods[service], database, 5432), service


@pytest.mark.parametrize("name", OVERLAYS)
def test_network_policies_deny_everything_else(name):
    docs = overlay(name)
    policies, pods = _policies(docs), _pods(docs)
    database = pods["postgres"] if "postgres" in pods else pods["external-postgres"]
    denied = [("gateway", database.name, 5432), ("gateway", "nats", 6222),
              ("stranger", "gateway", 8080), ("ingress-nginx", "order", 50051),
              ("nats", "order", 50051), ("order", "gateway", 8080),
              ("stranger", "nats", 4222), ("prometheus", "order", 50051),
              ("gateway", "internet", 443), ("order", "internet", 443),
              ("qudao-ops", "order", 50051), ("qudao-ops", "internet", 443)]
    for service in SERVICES:
        denied += [("stranger", service, 50051), (service, "gateway", 8080)]
    all_pods = {**pods, database.name: database}
    for source, destination, port in denied:
        if source not in all_pods or destination not in all_pods:
            continue
        assert not connection_allowed(policies, all_pods[source], all_pods[destination],
                                      port), f"{name}: {source} → {destination}:{port}"
    if "postgres" in pods:
        assert not connection_allowed(policies, pods["gateway"], pods["postgres"], 5432)
        assert not connection_allowed(policies, pods["stranger"], pods["postgres"], 5432)
