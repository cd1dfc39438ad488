"""Kubernetes NetworkPolicy semantics, enough to decide whether one pod may open a TCP or
UDP connection to another on a port: a pod selected by no policy of a direction allows
everything in that direction; once selected, only what some rule allows. A connection
needs both the source's egress and the destination's ingress."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict = field(hash=False)
    name: str = ""
    external: bool = False  # an address outside the cluster (a managed PostgreSQL)


def _selects(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], \
            expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


NAMESPACE_LABELS = {"kubernetes.io/metadata.name"}


def _peer_matches(peer: dict, policy_namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return pod.external
    if pod.external:
        return False
    namespace_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    if namespace_selector is not None:
        namespace_ok = _selects(namespace_selector,
                                {"kubernetes.io/metadata.name": pod.namespace})
    else:
        namespace_ok = pod.namespace == policy_namespace
    pod_ok = True if pod_selector is None else _selects(pod_selector, pod.labels)
    return namespace_ok and pod_ok


def _port_matches(ports: list | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        start, end = entry["port"], entry.get("endPort", entry["port"])
        if isinstance(start, int) and start <= port <= end:
            return True
    return False


def _allowed(policies, pod: Pod, direction: str, peer: Pod, port: int, protocol: str) -> bool:
    applying = [p for p in policies if p["metadata"].get("namespace") == pod.namespace
                and _selects(p["spec"]["podSelector"] or {"matchLabels": {}}, pod.labels)
                and direction in p["spec"].get("policyTypes", ["Ingress"])]
    if not applying:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in applying:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = peers is None or any(
                _peer_matches(candidate, pod.namespace, peer) for candidate in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connection_allowed(policies, source: Pod, destination: Pod, port: int,
                       protocol: str = "TCP") -> bool:
    egress = source.external or _allowed(policies, source, "Egress", destination, port,
                                         protocol)
    ingress = destination.external or _allowed(policies, destination, "Ingress", source,
                                               port, protocol)
    return egress and ingress
