"""The event catalog is the one declaration of every event: it matches the protos, each
subscription names an event its producer really records, and docs/events.md shows it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared.events import all_events
from shared.settings import SERVICES
from suite import catalog

ROOT = Path(__file__).resolve().parents[2]


def proto_events() -> dict[str, tuple[str, str]]:
    """Subject → (producer, message name) for every "Published on" message."""
    found = {}
    for producer in SERVICES:
        text = (ROOT / f"protos/qudao/{producer}/v1/events.proto").read_text(encoding="utf-8")
        for subject, name in re.findall(r"// Published on (\S+)\n(?://.*\n)*message (\w+)",
                                        text):
            found[subject] = (producer, name)
    return found


def test_every_published_message_is_declared_once_and_nothing_else_is():
    declared = {event.subject: (event.producer, event.name) for event in all_events()}
    assert declared == proto_events()


def recorded_by(producer: str) -> set[str]:
    """Names imported from shared.events.<producer> and used by the producer's code
    outside its consumers."""
    used: set[str] = set()
    for path in (ROOT / "services" / producer).rglob("*.py"):
        if "consumers" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.asname or alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom)
                    and node.module == f"shared.events.{producer}" for alias in node.names}
        used |= {node.id for node in ast.walk(tree)
                 if isinstance(node, ast.Name) and node.id in imported}
    return used


@pytest.mark.parametrize("service", SERVICES)
def test_every_subscription_names_an_event_its_producer_records(service):
    for subscription in catalog.subscriptions()[service]:
        assert subscription.durable.startswith(f"{service}-"), subscription.durable
        for event in subscription.events:
            constant = next(name for name, value in vars(
                __import__(f"shared.events.{event.producer}", fromlist=["_"])).items()
                if value is event)
            assert constant in recorded_by(event.producer), (
                f"{subscription.durable} waits for {event.subject}, which "
                f"{event.producer} never records")


def test_durable_names_are_unique():
    names = [s.durable for subscribed in catalog.subscriptions().values() for s in subscribed]
    assert len(names) == len(set(names))


def test_the_catalog_document_is_up_to_date():
    assert catalog.DOC.read_text(encoding="utf-8") == catalog.render(), (
        "docs/events.md is out of date: run `python -m suite.catalog`")
