"""``qudao erp push FILE``: the ERP's side of the order service, as a tool and as the
reference of how an ERP integrates. It covers every ERP operation of order's gRPC API:

=================  ===============================  ===================================
kind               RPC                              one document is
=================  ===============================  ===================================
products           UpsertProducts                   a product
price_lists        UpsertPriceList (one per list)   a price list with its items
shipments          StreamShipments                  a shipment with its lines
invoices           RecordInvoices                   an invoice with its lines
credit_notes       RecordInvoices (kind credit_     a credit note (for a return)
                   note)
payments           RecordPayments                   a payment with its allocations
return_receipts    ConfirmReturnReceived (one per   the goods of a return arrived back
                   return)
=================  ===============================  ===================================

The file is JSON — an object with any of the kinds above as keys, each a list of the
order.v1 messages in protobuf JSON (field names as in order.proto), and an optional
``mode`` (``all_or_nothing``, the default, or ``keep_valid``) — or a CSV/XLSX table of one
kind (``--kind``, or the file's name: ``shipments.csv``). In a table each row is one line
of a document: the document's columns (``shipment_id``, ``dealer_id``, …) repeat on each of
its rows, a line's columns are named after the repeated field (``lines.batch``,
``items.product_code``, ``allocations.invoice_id``), money is ``<field>_minor`` in fen
(``amount_minor``, ``lines.amount_minor``, ``list_price_minor``) with an optional
``currency`` column, several serial numbers are separated by ``;``, enums by their short
name (``tier`` = ``one``). Rows of one document sit together under the same id.

``--dry-run`` reads and checks the whole file and reports what would be sent; nothing is
sent. Otherwise the report (printed, and written to ``--report FILE``) gives each kind's
accepted/duplicate/rejected counts and lists every problem. The credential is a service
account with the ``service_erp`` role: ``--token`` (or QUDAO_ERP_TOKEN), or
``--username``/``--password`` (QUDAO_ERP_USERNAME / QUDAO_ERP_PASSWORD). Exit status: 0
when nothing was rejected, 2 when something was, 1 on a usage, file or connection error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from qudao.identity.v1 import identity_pb2, identity_pb2_grpc
from qudao.order.v1 import order_pb2, order_pb2_grpc

from shared.errors import DomainError
from shared.settings import DEFAULT_GRPC_PORTS
from shared.tabular import read_table

MODES = {"all_or_nothing": order_pb2.INGEST_MODE_ALL_OR_NOTHING,
         "keep_valid": order_pb2.INGEST_MODE_KEEP_VALID}


@dataclass(frozen=True)
class Kind:
    message: type
    # The columns that name one document (its rows share them).
    key: tuple[str, ...]


KINDS = {
    "products": Kind(order_pb2.Product, ("code",)),
    "price_lists": Kind(order_pb2.PriceList, ("id", "tier", "selling_company", "valid_from")),
    "shipments": Kind(order_pb2.Shipment, ("shipment_id",)),
    "invoices": Kind(order_pb2.Invoice, ("invoice_id",)),
    "credit_notes": Kind(order_pb2.Invoice, ("invoice_id",)),
    "payments": Kind(order_pb2.Payment, ("payment_id",)),
    "return_receipts": Kind(order_pb2.ConfirmReturnReceivedRequest, ("return_id",)),
}


class FileError(ValueError):
    """The file cannot be read as documents; names the row and column."""


def add_arguments(parser) -> None:
    parser.add_argument("file", type=Path,
                        help="JSON with any of the kinds, or a CSV/XLSX table of one kind")
    parser.add_argument("--kind", choices=sorted(KINDS), default="",
                        help="what a CSV/XLSX table holds (default: from the file's name)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read and check the file, report what would be sent, send nothing")
    parser.add_argument("--report", type=Path, default=None,
                        help="also write the JSON report to this file")
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


# ------------------------------------------------------------------------- reading
def load(path: Path, kind: str = "") -> dict:
    """The file as {kind: [message, ...], "mode": name}."""
    if path.suffix.lower() == ".json":
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    kind = kind or path.stem.lower().replace("-", "_")
    if kind not in KINDS:
        raise FileError(f"say what the table holds with --kind ({', '.join(sorted(KINDS))}); "
                        f"{path.name!r} does not name a kind")
    try:
        table = read_table(path.read_bytes(), path.name)
    except DomainError as exc:
        raise FileError(exc.message) from exc
    return {kind: documents_from_rows(kind, table.rows)}


def _from_json(document) -> dict:
    if not isinstance(document, dict):
        raise FileError("the file must hold a JSON object")
    unknown = set(document) - {"mode", *KINDS}
    if unknown:
        raise FileError(f"unknown keys {sorted(unknown)}; known: {sorted(KINDS)}")
    if document.get("mode", "all_or_nothing") not in MODES:
        raise FileError(f"mode must be one of {sorted(MODES)}")
    loaded: dict = {"mode": document.get("mode", "")}
    for kind, items in document.items():
        if kind == "mode":
            continue
        if not isinstance(items, list):
            raise FileError(f"{kind}: must be a list")
        messages = []
        for index, item in enumerate(items):
            try:
                messages.append(json_format.ParseDict(item, KINDS[kind].message()))
            except json_format.ParseError as exc:
                raise FileError(f"{kind}[{index}]: {exc}") from exc
        loaded[kind] = messages
    return loaded


def _cell(field: FieldDescriptor, text: str, where: str):
    """A table cell as the JSON value ParseDict takes for ``field``."""
    try:
        if field.type == FieldDescriptor.TYPE_BOOL:
            lowered = text.lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0", "是", "否"):
                raise ValueError("yes or no")
            return lowered in ("true", "yes", "1", "是")
        if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
            return int(text)
        if field.type == FieldDescriptor.TYPE_ENUM:
            prefix = "".join(("_" + c if c.isupper() and i else c)
                             for i, c in enumerate(field.enum_type.name)).upper() + "_"
            name = prefix + text.upper()
            if name not in field.enum_type.values_by_name:
                raise ValueError("one of " + ", ".join(
                    v.name.removeprefix(prefix).lower() for v in field.enum_type.values
                    if v.number))
            return name
    except ValueError as exc:
        raise FileError(f"{where}: {text!r} is not valid ({exc})") from None
    if field.is_repeated:
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _values(descriptor, cells: dict[str, str], currency: str, where: str) -> dict:
    """The JSON of one message from its cells: ``name`` for scalars, ``name_minor`` for
    Money."""
    values: dict = {}
    for name, text in cells.items():
        if text == "":
            continue
        field = descriptor.fields_by_name.get(name)
        money = descriptor.fields_by_name.get(name.removesuffix("_minor"))
        if name.endswith("_minor") and money is not None and \
                money.message_type.full_name == "qudao.common.v1.Money":
            try:
                values[money.name] = {"amount_minor": int(text), "currency": currency}
            except ValueError:
                raise FileError(f"{where}, column {name}: {text!r} is not a whole number of "
                                "fen") from None
        elif field is not None and field.type != FieldDescriptor.TYPE_MESSAGE:
            values[name] = _cell(field, text, f"{where}, column {name}")
        else:
            raise FileError(f"{where}: unknown column {name!r} for {descriptor.name}")
    return values


def documents_from_rows(kind: str, rows: list[tuple[int, dict[str, str]]]) -> list:
    """One message per document from a table whose rows are lines (module doc)."""
    spec = KINDS[kind]
    descriptor = spec.message.DESCRIPTOR
    documents: dict[tuple, dict] = {}
    for number, row in rows:
        where = f"row {number}"
        currency = row.get("currency", "") or "CNY"
        own = {k: v for k, v in row.items() if "." not in k and k != "currency"}
        key = tuple(own.get(column, "") for column in spec.key)
        if not any(key):
            raise FileError(f"{where}: {' or '.join(spec.key)} is required")
        values = _values(descriptor, own, currency, where)
        document = documents.setdefault(key, {**values, "_row": number})
        if any(document.get(k) != v for k, v in values.items()):
            raise FileError(f"{where}: differs from row {document['_row']} of the same "
                            f"{spec.key[0]} in its document columns")
        nested: dict[str, dict[str, str]] = {}
        for column, text in row.items():
            if "." in column:
                repeated, _, name = column.partition(".")
                nested.setdefault(repeated, {})[name] = text
        for repeated, cells in nested.items():
            field = descriptor.fields_by_name.get(repeated)
            if field is None or not field.is_repeated or field.message_type is None:
                raise FileError(f"{where}: unknown column group {repeated!r} for "
                                f"{descriptor.name}")
            item = _values(field.message_type, cells, currency, where)
            if item:
                document.setdefault(repeated, []).append(item)
    messages = []
    for document in documents.values():
        number = document.pop("_row")
        try:
            messages.append(json_format.ParseDict(document, spec.message()))
        except json_format.ParseError as exc:
            raise FileError(f"row {number}: {exc}") from exc
    return messages


# ------------------------------------------------------------------------- sending
async def login(addr: str, username: str, password: str) -> str:
    async with grpc.aio.insecure_channel(addr) as channel:
        response = await identity_pb2_grpc.IdentityServiceStub(channel).Login(
            identity_pb2.LoginRequest(username=username, password=password), timeout=10)
    return response.access_token


def dry_run_report(loaded: dict) -> dict:
    report: dict = {"dry_run": True}
    for kind in KINDS:
        if loaded.get(kind):
            report[kind] = {"documents": len(loaded[kind]), "lines": sum(
                len(getattr(m, "lines", ())) + len(getattr(m, "items", ()))
                + len(getattr(m, "allocations", ())) for m in loaded[kind])}
    report["problems"] = []
    return report


def _dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


async def push(loaded: dict, addr: str, token: str, mode_name: str = "",
               batch: int = 100) -> dict:
    mode = MODES[mode_name or loaded.get("mode") or "all_or_nothing"]
    metadata = (("authorization", f"Bearer {token}"),)
    report: dict = {}
    problems: list[dict] = []

    def collect(kind: str, summary, results) -> None:
        report[kind] = _dict(summary)
        for result in results:
            if result.outcome in (order_pb2.INGEST_OUTCOME_REJECTED,
                                  order_pb2.INGEST_OUTCOME_NOT_APPLIED):
                problems.append({"kind": kind, **json_format.MessageToDict(
                    result, preserving_proto_field_name=True)})

    async def one_by_one(kind: str, items, send, name_of) -> None:
        """RPCs that take one document: each answered on its own, failures reported."""
        done = 0
        for item in items:
            try:
                await send(item)
                done += 1
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
                    raise
                problems.append({"kind": kind, "id": name_of(item),
                                 "code": exc.code().name, "message": exc.details()})
        report[kind] = {"accepted": done, "rejected": len(items) - done}

    async with grpc.aio.insecure_channel(addr, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        if loaded.get("products"):
            response = await stub.UpsertProducts(order_pb2.UpsertProductsRequest(
                products=loaded["products"]), metadata=metadata)
            report["products"] = {"created": response.created, "updated": response.updated,
                                  "unchanged": response.unchanged}
        if loaded.get("price_lists"):
            await one_by_one(
                "price_lists", loaded["price_lists"],
                lambda price_list: stub.UpsertPriceList(order_pb2.UpsertPriceListRequest(
                    price_list=price_list), metadata=metadata),
                lambda price_list: price_list.id or f"{price_list.valid_from}")
        if loaded.get("shipments"):
            shipments = loaded["shipments"]

            async def messages():
                for start in range(0, len(shipments), max(batch, 1)):
                    yield order_pb2.StreamShipmentsRequest(
                        shipments=shipments[start:start + batch], mode=mode)

            response = await stub.StreamShipments(messages(), metadata=metadata)
            collect("shipments", response.summary, response.problems)
            report["shipments"]["messages_committed"] = response.messages_committed
        for kind, invoice_kind in (("invoices", 0),
                                   ("credit_notes", order_pb2.INVOICE_KIND_CREDIT_NOTE)):
            if loaded.get(kind):
                for invoice in loaded[kind]:
                    invoice.kind = invoice_kind or invoice.kind
                response = await stub.RecordInvoices(order_pb2.RecordInvoicesRequest(
                    invoices=loaded[kind], mode=mode), metadata=metadata)
                collect(kind, response.summary, response.results)
        if loaded.get("payments"):
            response = await stub.RecordPayments(order_pb2.RecordPaymentsRequest(
                payments=loaded["payments"], mode=mode), metadata=metadata)
            collect("payments", response.summary, response.results)
        if loaded.get("return_receipts"):
            await one_by_one(
                "return_receipts", loaded["return_receipts"],
                lambda receipt: stub.ConfirmReturnReceived(receipt, metadata=metadata),
                lambda receipt: receipt.return_id)
    report["problems"] = problems
    return report


async def run(args) -> int:
    try:
        loaded = load(args.file, args.kind)
    except (OSError, ValueError) as exc:
        print(f"qudao erp push: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        report = dry_run_report(loaded)
    else:
        token = args.token
        try:
            if not token:
                if not (args.username and args.password):
                    print("qudao erp push: give --token (QUDAO_ERP_TOKEN) or --username and "
                          "--password (QUDAO_ERP_USERNAME / QUDAO_ERP_PASSWORD)",
                          file=sys.stderr)
                    return 1
                token = await login(args.identity_addr, args.username, args.password)
            report = await push(loaded, args.addr, token, args.mode, args.batch)
        except grpc.aio.AioRpcError as exc:
            print(f"qudao erp push: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 2 if report["problems"] else 0


def main(args) -> None:
    sys.exit(asyncio.run(run(args)))
