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


def _proto_values(descriptor, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as json_format.ParseDict takes them: enums written as this API writes
    them (short lower-case names) become their full names, nulls are left out."""
    fields = {**descriptor.fields_by_name, **{f.json_name: f for f in descriptor.fields}}
    result: dict[str, Any] = {}
    for name, value in values.items():
        field = fields.get(name)
        if value is None or field is None:
            if value is not None:
                result[name] = value  # unknown: let ParseDict name it
            continue

        def convert(item, field=field):
            if field.type == FieldDescriptor.TYPE_ENUM and isinstance(item, str):
                full = enum_prefix(field.enum_type) + item.upper()
                return full if full in field.enum_type.values_by_name else item
            if (field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(item, dict)
                    and field.message_type.full_name != "google.protobuf.Timestamp"):
                return _proto_values(field.message_type, item)
            return item

        result[name] = ([convert(item) for item in value] if isinstance(value, list)
                        else convert(value))
    for oneof in descriptor.oneofs:
        # to_json writes every member of a oneof; only the one set carries a value.
        given = [name for name in result if fields[name].containing_oneof is oneof]
        if len(given) > 1:
            for name in given:
                if _unset(fields[name], result[name]):
                    del result[name]
    return result


def _unset(field: FieldDescriptor, value: Any) -> bool:
    """A default value, as to_json writes a oneof member that is not set."""
    if field.type == FieldDescriptor.TYPE_ENUM:
        return value in (0, field.enum_type.values_by_number[0].name)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return isinstance(value, dict) and all(
            _unset(field.message_type.fields_by_name[k], v) if k in
            field.message_type.fields_by_name else v in (None, 0, "", False, [], {})
            for k, v in value.items())
    return value in (0, "", False)


def from_json(message_type, values: dict[str, Any]) -> Message:
    """A request message from this API's JSON (``to_json``'s form: field names as in the
    proto, enums by short or full name); a field that does not parse is a 400 naming
    it."""
    from google.protobuf import json_format

    from shared.errors import InvalidArgument

    try:
        return json_format.ParseDict(_proto_values(message_type.DESCRIPTOR, values),
                                     message_type())
    except json_format.ParseError as exc:
        raise InvalidArgument.field("body", str(exc)) from exc
