"""The OpenAPI document's response schemas, generated from the protos: each route that
answers ``to_json`` of an RPC's response (or of one field of it) gets the JSON Schema
of exactly what ``gateway/protojson.py`` writes for that message. The message is read
from the handler itself (the RPC it calls, the field it picks), so a route cannot
document one thing and answer another; a route answering something else declares its
schema in ``responses=``, and a test fails for a JSON route with neither."""

from __future__ import annotations

import ast
import inspect
import textwrap

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from qudao.flow.v1 import flow_pb2
from qudao.identity.v1 import identity_pb2
from qudao.incentive.v1 import incentive_pb2
from qudao.order.v1 import order_pb2
from qudao.registration.v1 import registration_pb2

from gateway.protojson import enum_name

# The services as gateway/clients.py names its stubs (services.order.…).
SERVICES = {
    "identity": identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    "order": order_pb2.DESCRIPTOR.services_by_name["OrderService"],
    "incentive": incentive_pb2.DESCRIPTOR.services_by_name["IncentiveService"],
    "registration": registration_pb2.DESCRIPTOR.services_by_name["RegistrationService"],
    "flow": flow_pb2.DESCRIPTOR.services_by_name["FlowService"],
}

SCALARS = {
    FieldDescriptor.CPPTYPE_INT32: {"type": "integer"},
    FieldDescriptor.CPPTYPE_INT64: {"type": "integer"},
    FieldDescriptor.CPPTYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldDescriptor.CPPTYPE_UINT64: {"type": "integer", "minimum": 0},
    FieldDescriptor.CPPTYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.CPPTYPE_FLOAT: {"type": "number"},
    FieldDescriptor.CPPTYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.CPPTYPE_STRING: {"type": "string"},
}
TIMESTAMP = "google.protobuf.Timestamp"
# Examples a client generator shows (a price, a day, an id).
EXAMPLES = {"amount_minor": 128050, "currency": "CNY", "dealer_id":
            "0b7c6c1e-8a47-4d8e-9a8f-2f3c9d5e1a10", "next_page_token": "bzo1MA",
            "total_size": 120}


def component_name(descriptor: Descriptor) -> str:
    return descriptor.full_name


def _ref(descriptor: Descriptor) -> dict:
    return {"$ref": f"#/components/schemas/{component_name(descriptor)}"}


def _value(field: FieldDescriptor, components: dict) -> dict:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == TIMESTAMP:
            return {"type": ["string", "null"], "format": "date-time"}
        add_message(field.message_type, components)
        return _ref(field.message_type)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": [enum_name(field.enum_type, v.number)
                                           for v in field.enum_type.values]}
    if field.type == FieldDescriptor.TYPE_BYTES:
        return {"type": "null"}
    return dict(SCALARS[field.cpp_type])


def _field(field: FieldDescriptor, components: dict) -> dict:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _value(value, components)}
    if field.is_repeated:
        return {"type": "array", "items": _value(field, components)}
    schema = _value(field, components)
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name != TIMESTAMP:
        # An unset message field is written as null.
        schema = {"anyOf": [schema, {"type": "null"}]}
    if field.name in EXAMPLES:
        schema["examples"] = [EXAMPLES[field.name]]
    return schema


def add_message(descriptor: Descriptor, components: dict) -> dict:
    """Add ``descriptor`` (and every message it holds) to ``components``; its $ref."""
    name = component_name(descriptor)
    if name not in components:
        components[name] = {}  # placeholder: recursive messages refer to themselves
        components[name] = {
            "title": descriptor.name, "type": "object",
            # to_json writes every field, so every field is there.
            "properties": {f.name: _field(f, components) for f in descriptor.fields},
            "required": [f.name for f in descriptor.fields],
        }
    return _ref(descriptor)


def _rpc_output(service_attr: str, method_name: str) -> Descriptor | None:
    service = SERVICES.get(service_attr)
    if service is None:
        return None
    method = service.methods_by_name.get(method_name)
    return method.output_type if method is not None else None


def _rpc_call(node, calls: dict[str, Descriptor]) -> Descriptor | None:
    """The output message of ``await call(services.<svc>.<Rpc>, …)`` or of a name bound
    to one."""
    if isinstance(node, ast.Name):
        return calls.get(node.id)
    if isinstance(node, ast.Await):
        node = node.value
    if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "call" and node.args
            and isinstance(node.args[0], ast.Attribute)
            and isinstance(node.args[0].value, ast.Attribute)):
        return _rpc_output(node.args[0].value.attr, node.args[0].attr)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and getattr(node.func.value.value, "id", "") == "services"):
        # A streaming RPC called on the stub itself: services.<svc>.<Rpc>(…).
        return _rpc_output(node.func.value.attr, node.func.attr)
    return None


def answered_message(endpoint) -> Descriptor | None:
    """The message the handler answers as JSON: the first ``to_json(<rpc response>)`` or
    ``to_json(<rpc response>.<field>)`` in it, where the response is ``await call(
    services.<svc>.<Rpc>, …)`` or a name bound to one; None when it has none."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    except (OSError, TypeError, SyntaxError):
        return None
    calls: dict[str, Descriptor] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            output = _rpc_call(node.value, calls)
            if output is not None:
                calls[node.targets[0].id] = output
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "to_json"
                and node.args):
            continue
        argument, field = node.args[0], None
        if isinstance(argument, ast.Attribute):
            field, argument = argument.attr, argument.value
        output = _rpc_call(argument, calls)
        if output is None:
            continue
        if field is None:
            return output
        held = output.fields_by_name.get(field)
        if held is not None and held.message_type is not None:
            return held.message_type
    # An import answers what its RPC answers (or 202 with the job, when it became one):
    # run_import(…, lambda timeout: call(services.<svc>.<Rpc>, …)).
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_import"
                and node.args and isinstance(node.args[-1], ast.Lambda)):
            output = _rpc_call(node.args[-1].body, calls)
            if output is not None:
                return output
    return None


PROBLEM = {
    "title": "Problem", "type": "object",
    "description": "RFC 9457 problem details; every error of this API.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "reason": {"type": "string", "examples": ["VALIDATION_FAILED"]},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string", "examples": ["lines[0].quantity"]},
                           "message": {"type": "string"}}}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["type", "title", "status", "detail", "instance", "request_id"],
}
PROBLEM_RESPONSE = {"description": "an error, as problem+json", "content": {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


ETAG_HEADER = {
    "description": "the resource's version (its ``version`` field), for ``If-Match``",
    "schema": {"type": "string", "examples": ['"3"']}}


def _tags_its_answer(endpoint) -> bool:
    """The handler answers through ``tagged`` (gateway/routes/common.py): an ETag."""
    try:
        return "tagged(response," in inspect.getsource(endpoint)
    except (OSError, TypeError):
        return False


def typed_openapi(routers, document: dict) -> dict:
    """``document`` with a response schema for every route of ``routers`` answering a
    proto message, and the problem+json schema for every error."""
    from fastapi.routing import APIRoute

    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        message = answered_message(route.endpoint)
        for method in route.methods:
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's own shape; ours is the problem below
            responses["4XX"] = PROBLEM_RESPONSE
            responses["5XX"] = PROBLEM_RESPONSE
            for answer in responses.values():
                content_types = answer.get("content", {})
                if len(content_types) > 1 and not content_types.get(
                        "application/json", {"schema": 1}).get("schema"):
                    # A file route: FastAPI's default JSON entry does not apply.
                    del content_types["application/json"]
                for media_type, content in content_types.items():
                    if not content.get("schema") and media_type != "application/json":
                        # A file or a stream: its bytes.
                        content["schema"] = ({"type": "string"} if media_type.startswith(
                            "text/") else {"type": "string", "format": "binary"})
            if message is None:
                continue
            ok = responses.setdefault(str(route.status_code or 200), {"description": "OK"})
            content = ok.setdefault("content", {})
            json_content = content.setdefault("application/json", {})
            # FastAPI's own schema of a ``-> dict`` handler says nothing: replace it.
            if "$ref" not in json_content.get("schema", {}):
                json_content["schema"] = add_message(message, components)
            if _tags_its_answer(route.endpoint):
                ok.setdefault("headers", {})["ETag"] = ETAG_HEADER
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return document
