"""``qudao erp push FILE``: how an ERP integrates with the order service, and a demo tool.

The file is JSON with any of ``products``, ``shipments``, ``invoices``, ``payments``
(lists of the order.v1 messages in protobuf JSON, field names as in order.proto) and an
optional ``mode`` (``all_or_nothing``, the default, or ``keep_valid``)::

    {"mode": "keep_valid",
     "shipments": [{"shipment_id": "S-1", "dealer_id": "…", "ship_date": "2026-11-02",
                    "lines": [{"line_no": 1, "order_id": "…", "order_line_no": 1,
                               "product_code": "A-001", "batch": "B1",
                               "expiry_date": "2028-12-31", "quantity": 6}]}],
     "payments": [{"payment_id": "P-1", "dealer_id": "…", "received_on": "2026-11-15",
                   "amount": {"amount_minor": 50000, "currency": "CNY"}}]}

Products go through UpsertProducts, shipments through the client-streaming
StreamShipments (``--batch`` shipments per stream message, each message committed on its
own, so a broken connection loses at most the message in flight and a re-run is safe),
invoices and payments through RecordInvoices / RecordPayments. The credential is a
service account with the ``erp`` role: ``--token`` (or QUDAO_ERP_TOKEN), or
``--username``/``--password`` (or QUDAO_ERP_USERNAME / QUDAO_ERP_PASSWORD) to log in
through identity. Prints a JSON summary; the exit status is 0 when nothing was rejected,
2 when something was (every problem is listed), 1 on a usage or connection error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import grpc
from google.protobuf import json_format
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from shared.settings import DEFAULT_GRPC_PORTS

MODES = {"all_or_nothing": order_pb2.INGEST_MODE_ALL_OR_NOTHING,
         "keep_valid": order_pb2.INGEST_MODE_KEEP_VALID}


def add_arguments(parser) -> None:
    parser.add_argument("file", type=Path, help="JSON file with shipments, invoices, payments")
    parser.add_argument("--addr", default=os.environ.get(
        "QUDAO_ERP_ORDER_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS['order']}"),
        help="order service gRPC address")
    parser.add_argument("--identity-addr", default=os.environ.get(
        "QUDAO_IDENTITY_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS['identity']}"))
    parser.add_argument("--token", default=os.environ.get("QUDAO_ERP_TOKEN", ""))
    parser.add_argument("--username", default=os.environ.get("QUDAO_ERP_USERNAME", ""))
    parser.add_argument("--password", default=os.environ.get("QUDAO_ERP_PASSWORD", ""))
    parser.add_argument("--mode", choices=sorted(MODES), default="",
                        help="overrides the file's mode")
    parser.add_argument("--batch", type=int, default=100,
                        help="shipments per stream message")


def load(path: Path) -> dict:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError("the file must hold a JSON object")
    unknown = set(document) - {"mode", "products", "shipments", "invoices", "payments"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    return document


def parse(items: list, message_type) -> list:
    return [json_format.ParseDict(item, message_type(), ignore_unknown_fields=False)
            for item in items]


async def login(addr: str, username: str, password: str) -> str:
    async with grpc.aio.insecure_channel(addr) as channel:
        response = await identity_pb2_grpc.IdentityServiceStub(channel).Login(
            identity_pb2.LoginRequest(username=username, password=password), timeout=10)
    return response.access_token


async def push(document: dict, addr: str, token: str, mode_name: str = "",
               batch: int = 100) -> dict:
    mode = MODES[mode_name or document.get("mode", "all_or_nothing")]
    metadata = (("authorization", f"Bearer {token}"),)
    report: dict = {}
    problems: list[dict] = []

    def collect(kind: str, summary, results) -> None:
        report[kind] = json_format.MessageToDict(summary, preserving_proto_field_name=True,
                                                 always_print_fields_with_no_presence=True)
        for result in results:
            if result.outcome in (order_pb2.INGEST_OUTCOME_REJECTED,
                                  order_pb2.INGEST_OUTCOME_NOT_APPLIED):
                problems.append({"kind": kind, **json_format.MessageToDict(
                    result, preserving_proto_field_name=True)})

    async with grpc.aio.insecure_channel(addr, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        if document.get("products"):
            response = await stub.UpsertProducts(order_pb2.UpsertProductsRequest(
                products=parse(document["products"], order_pb2.Product)), metadata=metadata)
            report["products"] = {"created": response.created, "updated": response.updated,
                                  "unchanged": response.unchanged}
        if document.get("shipments"):
            shipments = parse(document["shipments"], order_pb2.Shipment)

            async def messages():
                for start in range(0, len(shipments), max(batch, 1)):
                    yield order_pb2.StreamShipmentsRequest(
                        shipments=shipments[start:start + batch], mode=mode)

            response = await stub.StreamShipments(messages(), metadata=metadata)
            collect("shipments", response.summary, response.problems)
            report["shipments"]["messages_committed"] = response.messages_committed
        if document.get("invoices"):
            response = await stub.RecordInvoices(order_pb2.RecordInvoicesRequest(
                invoices=parse(document["invoices"], order_pb2.Invoice), mode=mode),
                metadata=metadata)
            collect("invoices", response.summary, response.results)
        if document.get("payments"):
            response = await stub.RecordPayments(order_pb2.RecordPaymentsRequest(
                payments=parse(document["payments"], order_pb2.Payment), mode=mode),
                metadata=metadata)
            collect("payments", response.summary, response.results)
    report["problems"] = problems
    return report


async def run(args) -> int:
    try:
        document = load(args.file)
    except (OSError, ValueError) as exc:
        print(f"qudao erp push: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    token = args.token
    try:
        if not token:
            if not (args.username and args.password):
                print("qudao erp push: give --token (QUDAO_ERP_TOKEN) or --username and "
                      "--password (QUDAO_ERP_USERNAME / QUDAO_ERP_PASSWORD)", file=sys.stderr)
                return 1
            token = await login(args.identity_addr, args.username, args.password)
        report = await push(document, args.addr, token, args.mode, args.batch)
    except json_format.ParseError as exc:
        print(f"qudao erp push: {args.file}: {exc}", file=sys.stderr)
        return 1
    except grpc.aio.AioRpcError as exc:
        print(f"qudao erp push: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 2 if report["problems"] else 0


def main(args) -> None:
    sys.exit(asyncio.run(run(args)))
