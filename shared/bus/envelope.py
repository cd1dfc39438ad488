"""Event envelopes: every event is a protobuf payload wrapped with its id, type, time,
producer, schema version, request id and principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message
from qudao.common.v1 import envelope_pb2

from shared import tracing
from shared.context import current_principal, current_request_id

SCHEMA_VERSION = 1


def stream_name(producer: str) -> str:
    return f"QUDAO_{producer.upper()}"


def new_event_id() -> str:
    return str(uuid.uuid4())


def build_envelope(
    producer: str, payload: Message, aggregate_id: str, event_id: str | None = None
) -> envelope_pb2.EventEnvelope:
    envelope = envelope_pb2.EventEnvelope(
        event_id=event_id or new_event_id(),
        event_type=payload.DESCRIPTOR.full_name,
        producer=producer,
        schema_version=SCHEMA_VERSION,
        request_id=current_request_id(),
        principal=current_principal().subject,
        aggregate_id=aggregate_id,
        traceparent=tracing.current_traceparent(),
    )
    envelope.occurred_at.FromDatetime(datetime.now(UTC))
    envelope.payload.Pack(payload)
    return envelope


@dataclass(frozen=True)
class Event:
    """A received event: its envelope, its subject and its decoded payload."""

    subject: str
    envelope: envelope_pb2.EventEnvelope
    payload: Message

    @property
    def event_id(self) -> str:
        return self.envelope.event_id


class UndecodableEvent(ValueError):
    """The bytes are not an envelope, or its payload type is unknown here."""


def decode_envelope(subject: str, data: bytes) -> Event:
    envelope = envelope_pb2.EventEnvelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableEvent(f"not an event envelope: {exc}") from exc
    if not envelope.event_id:
        raise UndecodableEvent("envelope has no event_id")
    type_name = envelope.payload.TypeName()
    try:
        message_class = symbol_database.Default().GetSymbol(type_name)
    except KeyError as exc:
        raise UndecodableEvent(f"unknown payload type {type_name!r}") from exc
    payload = message_class()
    if not envelope.payload.Unpack(payload):
        raise UndecodableEvent(f"payload does not unpack as {type_name}")
    return Event(subject=subject, envelope=envelope, payload=payload)
