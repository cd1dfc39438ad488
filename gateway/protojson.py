"""Protobuf messages to the REST API's JSON: int64 stay numbers (proto3 JSON would make
them strings), enums become short lower-case names, timestamps RFC 3339 strings."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def enum_prefix(enum_descriptor) -> str:
    name = enum_descriptor.name
    prefix = "".join(("_" + c if c.isupper() and i else c) for i, c in enumerate(name)).upper()
    return prefix + "_"


def enum_name(enum_descriptor, number: int) -> str:
    value = enum_descriptor.values_by_number.get(number)
    if value is None:
        return str(number)
    prefix = enum_prefix(enum_descriptor)
    name = value.name.removeprefix(prefix)
    return name.lower()


def enum_number(enum_descriptor, name: str) -> int | None:
    candidate = enum_prefix(enum_descriptor) + name.upper()
    value = enum_descriptor.values_by_name.get(candidate)
    return None if value is None or value.number == 0 else value.number


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full_name = field.message_type.full_name
        if full_name == "google.protobuf.Timestamp":
            return value.ToJsonString() if (value.seconds or value.nanos) else None
        return to_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_name(field.enum_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return None
    return value


def to_json(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            result[field.name] = dict(value)
        elif field.is_repeated:
            result[field.name] = [_value(field, item) for item in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not message.HasField(field.name):
            result[field.name] = None
        else:
            result[field.name] = _value(field, value)
    return result
