"""The event catalog: every event of the suite declared once, with its subject, payload
type, producer and meaning. A producer records an event by its declaration and a
consumer subscribes to the same declaration, so a subject cannot be misspelled on one
side only. ``docs/events.md`` is generated from this catalog and the subscriptions
(``python -m suite.catalog``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

P = TypeVar("P", bound=Message)

_BY_SUBJECT: dict[str, EventType] = {}
_BY_PAYLOAD: dict[type[Message], EventType] = {}


@dataclass(frozen=True)
class EventType(Generic[P]):
    """One kind of event: published on ``qudao.<producer>.<entity>.<verb>`` with a
    payload of type ``payload``, on the producer's stream."""

    producer: str
    entity: str
    verb: str
    payload: type[P]
    meaning: str

    @property
    def subject(self) -> str:
        return f"qudao.{self.producer}.{self.entity}.{self.verb}"

    @property
    def name(self) -> str:
        return self.payload.DESCRIPTOR.name

    def __repr__(self) -> str:
        return f"EventType({self.subject})"


def declare(producer: str, entity: str, verb: str, payload: type[P],
            meaning: str) -> EventType[P]:
    event = EventType(producer, entity, verb, payload, meaning)
    if event.subject in _BY_SUBJECT:
        raise ValueError(f"event {event.subject} is declared twice")
    if payload in _BY_PAYLOAD:
        raise ValueError(f"payload {event.name} already belongs to {_BY_PAYLOAD[payload]}")
    _BY_SUBJECT[event.subject] = event
    _BY_PAYLOAD[payload] = event
    return event


def all_events() -> list[EventType]:
    """Every declared event, ordered by subject."""
    from shared.events import (  # noqa: F401
        engagement,
        flow,
        identity,
        incentive,
        order,
        registration,
    )

    return sorted(_BY_SUBJECT.values(), key=lambda event: event.subject)


def by_subject(subject: str) -> EventType | None:
    all_events()
    return _BY_SUBJECT.get(subject)
