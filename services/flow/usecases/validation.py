"""The row checks applied column by column (polars), so a million-row file costs a few
seconds. The rules themselves are the domain's (value parsers, UDI parser, hospital
resolver, stock bookkeeping); this module applies each of them once per *distinct*
cell value and joins the answers back onto the rows.

A file goes through in chunks: ``prepare`` (format, UDI, hospital: no stored facts
needed), ``facts_needed`` (the serials and foreign batches to look up), ``check``
(batch, serial, date, authorization, duplicates against accepted flow), then
``finish`` (in-file duplicates and the cumulative quantity check, which need every
row). Errors come out as one frame: row, check, code, column, value, detail,
candidates."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from services.flow.domain import udi as udis
from services.flow.domain.checks import Check, check_of
from services.flow.domain.columns import FlowColumn as C
from services.flow.domain.hospitals import HospitalResolver
from services.flow.domain.model import (
    Authorization,
    Dealer,
    Movement,
    Period,
    Product,
    SerialMove,
    ShippedSerial,
    StockEntry,
)
from services.flow.domain.rules import available, first_reached
from services.flow.domain.values import ValueProblem, parse_amount, parse_date, parse_quantity

MAX_CELL_CHARS = 1000
ERROR_SCHEMA = {"row": pl.Int64, "check": pl.Int8, "code": pl.Utf8, "column": pl.Utf8,
                "value": pl.Utf8, "detail": pl.Utf8, "candidates": pl.Utf8}
# What is kept of every row after its chunk, for the checks over the whole file and
# the accepted rows.
KEPT = ["row", "sold_on", "customer_id", "customer_name", "transfer_to", "department",
        "product_code", "product_line", "gtin", "batch", "expiry", "serial", "quantity",
        "amount", "raw_hash", "sound"]


@dataclass
class Context:
    """What the checks of one upload need to know, loaded before they run."""

    dealer: Dealer
    period: Period
    latest_sale_day: date
    reference_year: int
    closed_through: date | None
    products_by_gtin: dict[str, Product]
    products_by_code: dict[str, Product]
    resolver: HospitalResolver
    # This dealer's accepted movements, by (gtin, batch).
    movements: dict[tuple[str, str], Movement]
    # Product lines whose sales need an authorization (None: every line).
    authorization_lines: frozenset[str] | None
    authorizations: list[Authorization]
    # file header text of each mapped column
    headers: dict[C, str]
    xlsx: bool = False
    # What reached this dealer from the ERP, by (gtin, batch): filled chunk by chunk with
    # the batches the file names (``Validator.absorb``), never the dealer's whole stock.
    stock: dict[tuple[str, str], StockEntry] = field(default_factory=dict)


@dataclass
class Facts:
    """What ``check`` needs from storage for one chunk (the use case looks it up)."""

    shipped_serials: dict[tuple[str, str], ShippedSerial] = field(default_factory=dict)
    serial_moves: dict[tuple[str, str], list[SerialMove]] = field(default_factory=dict)
    # Every dealer's stock of the chunk's batches not looked up before: (gtin, batch) →
    # entries (this dealer's, and others' for diversions).
    stock: dict[tuple[str, str], list[StockEntry]] = field(default_factory=dict)
    # Keys of accepted flow rows: (sold_on, customer or transfer dealer, department,
    # gtin, batch).
    accepted_keys: set[tuple] = field(default_factory=set)


@dataclass(frozen=True)
class Needed:
    serials: list[tuple[str, str]]
    batches: list[tuple[str, str]]
    sold_from: date | None
    sold_to: date | None


@dataclass
class DiversionHit:
    gtin: str
    batch: str
    shipped_dealer_id: str
    shipment_id: str
    ship_date: date | None
    row_number: int
    quantity: int
    serials: list[str]
    customer_id: str
    customer_name: str
    sold_on: date | None
    product_code: str


def _lookup(frame: pl.DataFrame, column: str, parse: Callable[[str], dict],
            schema: dict[str, pl.DataType], cache: dict) -> pl.DataFrame:
    """Join ``parse(value)`` (a dict of ``schema``'s fields) onto every row, computing
    it once per distinct value (and once per file, through ``cache``)."""
    values = frame.get_column(column).drop_nulls().unique().to_list()
    fresh = [value for value in values if value not in cache]
    for value in fresh:
        cache[value] = parse(value)
    records = {name: [cache[v].get(name) for v in values] for name in schema}
    table = pl.DataFrame({column: values, **records},
                         schema={column: pl.Utf8, **schema})
    return frame.join(table, on=column, how="left", coalesce=True)


def _errors(frame: pl.DataFrame, mask: pl.Expr, code: str, column: str = "",
            value: pl.Expr | None = None, detail: pl.Expr | None = None,
            candidates: pl.Expr | None = None) -> pl.DataFrame:
    picked = frame.filter(mask)
    if picked.height == 0:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    return picked.select(
        pl.col("row").cast(pl.Int64),
        pl.lit(int(check_of(code)), dtype=pl.Int8).alias("check"),
        pl.lit(code).alias("code"),
        pl.lit(column).alias("column"),
        (value if value is not None else pl.lit("")).cast(pl.Utf8).str.slice(0, 200)
        .fill_null("").alias("value"),
        (detail if detail is not None else pl.lit("")).cast(pl.Utf8).fill_null("")
        .alias("detail"),
        (candidates if candidates is not None else pl.lit("")).cast(pl.Utf8).fill_null("")
        .alias("candidates"),
    )


def _parsed(parse: Callable[[str], object], key: str) -> Callable[[str], dict]:
    def run(text: str) -> dict:
        try:
            return {key: parse(text), f"{key}_problem": None}
        except ValueProblem as problem:
            return {key: None, f"{key}_problem": problem.message}
    return run


def _gtin14(text: str) -> dict:
    digits = text.strip()
    if digits.isdigit() and len(digits) in (8, 12, 13, 14):
        digits = digits.zfill(14)
        from stdnum import ean
        if ean.is_valid(digits):
            return {"col_gtin": digits, "col_gtin_problem": None}
        return {"col_gtin": None, "col_gtin_problem": f"GTIN {text} has a wrong check digit"}
    return {"col_gtin": None, "col_gtin_problem": f"{text!r} is not a GTIN"}


class Validator:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.kept: list[pl.DataFrame] = []
        self.errors: list[pl.DataFrame] = []
        self.diversions: list[DiversionHit] = []
        self._caches: dict[str, dict] = defaultdict(dict)
        self._looked_up: set[tuple[str, str]] = set()
        # Other dealers' first shipment of a batch this dealer never got.
        self._foreign: dict[tuple[str, str], StockEntry] = {}

    def _reached(self, key: tuple[str, str]) -> bool:
        movement = self.context.movements.get(key)
        return key in self.context.stock or bool(movement and movement.transferred_in)

    def absorb(self, facts: Facts) -> None:
        """Take in the stock looked up for a chunk."""
        dealer_id = self.context.dealer.id
        for key, entries in facts.stock.items():
            for entry in entries:
                if entry.dealer_id == dealer_id:
                    self.context.stock[key] = entry
            others = [e for e in entries if e.dealer_id != dealer_id]
            if others:
                self._foreign[key] = min(others, key=lambda e: e.first_reached_on)

    # ---- per chunk -----------------------------------------------------------------

    def _header(self, column: C) -> str:
        return self.context.headers.get(column, column.value)

    def _has(self, frame: pl.DataFrame, column: C) -> bool:
        return column.value in frame.columns

    def prepare(self, chunk: pl.DataFrame) -> pl.DataFrame:
        """Format, UDI and hospital checks. ``chunk`` has ``row`` and one Utf8 column
        per mapped FlowColumn (by its value)."""
        ctx = self.context
        errors: list[pl.DataFrame] = []
        mapped = [c for c in C if c.value in chunk.columns]
        frame = chunk.with_columns(
            [pl.col(c.value).str.strip_chars().replace("", None) for c in mapped])
        for column in mapped:
            name = column.value
            errors.append(_errors(frame, pl.col(name).str.len_chars() > MAX_CELL_CHARS,
                                  "CELL_TOO_LONG", self._header(column), pl.col(name),
                                  pl.format("{} > {}", pl.col(name).str.len_chars(),
                                            pl.lit(MAX_CELL_CHARS))))
            if ctx.xlsx:
                errors.append(_errors(frame, pl.col(name).str.starts_with("="), "FORMULA",
                                      self._header(column), pl.col(name)))
        frame = frame.with_columns(
            [pl.when(pl.col(c.value).str.len_chars() > MAX_CELL_CHARS).then(None)
             .otherwise(pl.col(c.value)).alias(c.value) for c in mapped])
        frame = frame.with_columns(raw_hash=pl.concat_str(
            [pl.col(c.value).fill_null("") for c in mapped], separator="\x1f").hash(7))
        for column in (C.SOLD_ON, C.CUSTOMER_NAME, C.QUANTITY):
            errors.append(_errors(frame, pl.col(column.value).is_null(), "REQUIRED",
                                  self._header(column)))
        for column in (C.DEPARTMENT, C.PRODUCT_CODE, C.BATCH, C.SERIAL, C.UDI, C.GTIN,
                       C.EXPIRY_DATE, C.AMOUNT, C.UNIT_PRICE, C.CUSTOMER_NAME):
            if not self._has(frame, column):
                frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(column.value))
        # Values: each distinct text parsed once.
        frame = _lookup(frame, "sold_on", _parsed(parse_date, "sold"),
                        {"sold": pl.Date, "sold_problem": pl.Utf8}, self._caches["date"])
        frame = _lookup(frame, "expiry_date", _parsed(parse_date, "exp"),
                        {"exp": pl.Date, "exp_problem": pl.Utf8}, self._caches["date2"])
        frame = _lookup(frame, "quantity", _parsed(parse_quantity, "qty"),
                        {"qty": pl.Int64, "qty_problem": pl.Utf8}, self._caches["qty"])
        frame = _lookup(frame, "amount", _parsed(parse_amount, "amt"),
                        {"amt": pl.Int64, "amt_problem": pl.Utf8}, self._caches["amt"])
        frame = _lookup(frame, "unit_price", _parsed(parse_amount, "price"),
                        {"price": pl.Int64, "price_problem": pl.Utf8}, self._caches["amt"])
        for source, problem, code, column in (
                ("sold_on", "sold_problem", "BAD_DATE", C.SOLD_ON),
                ("expiry_date", "exp_problem", "BAD_DATE", C.EXPIRY_DATE),
                ("quantity", "qty_problem", "BAD_QUANTITY", C.QUANTITY),
                ("amount", "amt_problem", "BAD_AMOUNT", C.AMOUNT),
                ("unit_price", "price_problem", "BAD_AMOUNT", C.UNIT_PRICE)):
            errors.append(_errors(frame, pl.col(problem).is_not_null(), code,
                                  self._header(column), pl.col(source), pl.col(problem)))
        frame = frame.with_columns(amount_fen=pl.coalesce(
            pl.col("amt"), pl.col("price") * pl.col("qty")).fill_null(0))
        frame, udi_errors = self._products(frame)
        errors += udi_errors
        frame, hospital_errors = self._hospitals(frame)
        errors += hospital_errors
        self.errors += [e for e in errors if e.height]
        return frame

    def _products(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        ctx = self.context
        year = ctx.reference_year
        header = self._header(C.UDI)

        def parse(text: str) -> dict:
            try:
                parsed = udis.parse_udi(text, year)
            except udis.UdiError as error:
                return {"u_code": error.code, "u_problem": error.message}
            return {"u_issuer": parsed.issuer.value, "u_gtin": parsed.gtin or None,
                    "u_batch": parsed.batch or None, "u_serial": parsed.serial or None,
                    "u_expiry": parsed.expiry, "u_pi": parsed.pi}

        frame = _lookup(frame, "udi", parse, {
            "u_issuer": pl.Utf8, "u_gtin": pl.Utf8, "u_batch": pl.Utf8, "u_serial": pl.Utf8,
            "u_expiry": pl.Date, "u_pi": pl.Utf8, "u_code": pl.Utf8, "u_problem": pl.Utf8},
            self._caches["udi"])
        frame = _lookup(frame, "gtin", _gtin14, {"col_gtin": pl.Utf8,
                                                  "col_gtin_problem": pl.Utf8},
                        self._caches["gtin"])
        code_gtin = {code: p.gtin for code, p in ctx.products_by_code.items()}
        frame = frame.with_columns(
            code_gtin=pl.col("product_code").replace_strict(code_gtin, default=None,
                                                            return_dtype=pl.Utf8))
        errors = []
        for code in (udis.UDI_UNPARSEABLE, udis.UDI_CHECK_DIGIT, udis.UDI_NO_GTIN):
            errors.append(_errors(frame, pl.col("u_code") == code, code, header, pl.col("udi"),
                                  pl.col("u_problem")))
        errors.append(_errors(frame, pl.col("col_gtin_problem").is_not_null(),
                              "UDI_CHECK_DIGIT", self._header(C.GTIN), pl.col("gtin"),
                              pl.col("col_gtin_problem")))
        frame = frame.with_columns(
            gtin_key=pl.coalesce("u_gtin", "col_gtin", "code_gtin"))
        disagree = pl.lit(False)
        for a, b in (("u_gtin", "col_gtin"), ("u_gtin", "code_gtin"), ("col_gtin", "code_gtin")):
            disagree = disagree | (pl.col(a).is_not_null() & pl.col(b).is_not_null()
                                   & (pl.col(a) != pl.col(b)))
        errors.append(_errors(frame, disagree, "PRODUCT_MISMATCH", header,
                              pl.coalesce("udi", "gtin", "product_code"),
                              pl.format("UDI/GTIN {} / 产品编码 {}",
                                        pl.coalesce("u_gtin", "col_gtin").fill_null("-"),
                                        pl.col("product_code").fill_null("-"))))
        known = list(ctx.products_by_gtin)
        unknown = (pl.col("gtin_key").is_not_null() & ~pl.col("gtin_key").is_in(known)) | (
            pl.col("gtin_key").is_null() & pl.col("product_code").is_not_null())
        errors.append(_errors(frame, unknown & pl.col("u_code").is_null(), "UNKNOWN_PRODUCT",
                              self._header(C.PRODUCT_CODE),
                              pl.coalesce("gtin_key", "product_code")))
        lines = {g: p.product_line for g, p in ctx.products_by_gtin.items()}
        codes = {g: p.code for g, p in ctx.products_by_gtin.items()}
        frame = frame.with_columns(
            product_line=pl.col("gtin_key").replace_strict(lines, default=None,
                                                           return_dtype=pl.Utf8),
            product_code_key=pl.col("gtin_key").replace_strict(codes, default=None,
                                                               return_dtype=pl.Utf8))
        # Batch, expiry and serial: the UDI's and the columns' must agree.
        gs1 = pl.col("u_issuer") == "GS1"
        for column, mine, code in ((C.BATCH, "u_batch", "UDI_BATCH_MISMATCH"),
                                   (C.SERIAL, "u_serial", "UDI_SERIAL_MISMATCH")):
            errors.append(_errors(
                frame, pl.col(column.value).is_not_null() & pl.col(mine).is_not_null()
                & (pl.col(column.value) != pl.col(mine)), code, self._header(column),
                pl.col(column.value), pl.format("UDI {}", pl.col(mine))))
        errors.append(_errors(
            frame, gs1 & pl.col("exp").is_not_null() & pl.col("u_expiry").is_not_null()
            & (pl.col("exp") != pl.col("u_expiry")), "UDI_EXPIRY_MISMATCH",
            self._header(C.EXPIRY_DATE), pl.col("expiry_date"),
            pl.format("UDI {}", pl.col("u_expiry").cast(pl.Utf8))))
        other = pl.col("u_issuer").is_in(["MA", "AHM"])
        errors.append(_errors(
            frame, other & pl.col("batch").is_not_null() & pl.col("u_batch").is_null()
            & ~pl.col("u_pi").fill_null("").str.contains(pl.col("batch"), literal=True),
            "UDI_BATCH_MISMATCH", self._header(C.BATCH), pl.col("batch"),
            pl.format("PI {}", pl.col("u_pi"))))
        frame = frame.with_columns(
            batch_key=pl.coalesce("batch", "u_batch"),
            serial_key=pl.coalesce("serial", "u_serial"),
            expiry_key=pl.coalesce("exp", "u_expiry"))
        errors.append(_errors(frame, pl.col("batch_key").is_null(), "REQUIRED",
                              self._header(C.BATCH)))
        errors.append(_errors(frame, pl.col("serial_key").is_not_null()
                              & pl.col("qty").is_not_null() & (pl.col("qty") != 1),
                              "SERIAL_QUANTITY", self._header(C.QUANTITY), pl.col("quantity")))
        return frame, errors

    def _hospitals(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        resolver = self.context.resolver

        def resolve(name: str) -> dict:
            found = resolver.resolve(name)
            return {"customer_id": found.customer_id or None,
                    "transfer_to": found.transfer_to_dealer_id or None,
                    "h_code": found.code or None,
                    "h_candidates": json.dumps([c.__dict__ for c in found.candidates],
                                               ensure_ascii=False) if found.candidates else None,
                    "h_detail": "; ".join(f"{c.name} ({c.score_bps / 100:.0f}%)"
                                          for c in found.candidates) or None}

        frame = _lookup(frame, "customer_name", resolve, {
            "customer_id": pl.Utf8, "transfer_to": pl.Utf8, "h_code": pl.Utf8,
            "h_candidates": pl.Utf8, "h_detail": pl.Utf8}, self._caches["hospital"])
        header = self._header(C.CUSTOMER_NAME)
        errors = [_errors(frame, pl.col("h_code") == code, code, header, pl.col("customer_name"),
                          pl.col("h_detail"), pl.col("h_candidates"))
                  for code in ("UNKNOWN_HOSPITAL", "AMBIGUOUS_HOSPITAL")]
        return frame, errors

    def facts_needed(self, frame: pl.DataFrame) -> Needed:
        keyed = frame.filter(pl.col("gtin_key").is_not_null() & pl.col("batch_key").is_not_null())
        serials = keyed.filter(pl.col("serial_key").is_not_null()).select(
            "gtin_key", "serial_key").unique().rows()
        pairs = [pair for pair in keyed.select("gtin_key", "batch_key").unique().rows()
                 if pair not in self._looked_up]
        self._looked_up.update(pairs)
        days = frame.get_column("sold").drop_nulls()
        return Needed(serials, pairs, days.min() if len(days) else None,
                      days.max() if len(days) else None)

    def check(self, frame: pl.DataFrame, facts: Facts) -> None:
        """Batch, serial, date, authorization and accepted-duplicate checks of one
        prepared chunk; keeps what ``finish`` needs."""
        ctx = self.context
        dealer_id = ctx.dealer.id
        self.absorb(facts)
        errors: list[pl.DataFrame] = []
        # Stock facts per (gtin, batch) of this dealer.
        reach_rows = []
        for key in set(frame.select("gtin_key", "batch_key").unique().rows()):
            stock, movement = ctx.stock.get(key), ctx.movements.get(key)
            if self._reached(key):
                reach_rows.append((*key, first_reached(stock, movement),
                                   stock.expiry if stock else None))
        reach = pl.DataFrame(reach_rows, schema={"gtin_key": pl.Utf8, "batch_key": pl.Utf8,
                                                 "reached_on": pl.Date,
                                                 "stock_expiry": pl.Date}, orient="row")
        frame = frame.join(reach, on=["gtin_key", "batch_key"], how="left", coalesce=True)
        keyed = pl.col("gtin_key").is_not_null() & pl.col("batch_key").is_not_null()
        product_ok = pl.col("gtin_key").is_in(list(ctx.products_by_gtin))
        serial_row = pl.col("serial_key").is_not_null()
        # Serials: shipped to whom, moved already?
        serial_rows = []
        for gtin, serial in frame.filter(keyed & serial_row).select(
                "gtin_key", "serial_key").unique().rows():
            shipped = facts.shipped_serials.get((gtin, serial))
            moves = facts.serial_moves.get((gtin, serial), [])
            reached = (shipped is not None and shipped.dealer_id == dealer_id) or any(
                m.transfer_to_dealer_id == dealer_id for m in moves)
            gone = any(m.dealer_id == dealer_id or not m.transfer_to_dealer_id for m in moves)
            serial_rows.append((gtin, serial, reached, gone,
                                shipped.dealer_id if shipped else None,
                                shipped.batch if shipped else None,
                                shipped.shipment_id if shipped else None,
                                shipped.ship_date if shipped else None))
        serial_table = pl.DataFrame(serial_rows, orient="row", schema={
            "gtin_key": pl.Utf8, "serial_key": pl.Utf8, "s_reached": pl.Boolean,
            "s_gone": pl.Boolean, "s_dealer": pl.Utf8, "s_batch": pl.Utf8,
            "s_shipment": pl.Utf8, "s_date": pl.Date})
        frame = frame.join(serial_table, on=["gtin_key", "serial_key"], how="left",
                           coalesce=True)
        batch_header = self._header(C.BATCH)
        serial_header = self._header(C.SERIAL)
        unreached_batch = keyed & product_ok & pl.col("reached_on").is_null()
        foreign_rows = [(*key, first.dealer_id, first.first_shipment_id, first.first_reached_on)
                        for key in frame.select("gtin_key", "batch_key").unique().rows()
                        if not self._reached(key) and (first := self._foreign.get(key))]
        foreign = pl.DataFrame(foreign_rows, orient="row", schema={
            "gtin_key": pl.Utf8, "batch_key": pl.Utf8, "f_dealer": pl.Utf8,
            "f_shipment": pl.Utf8, "f_date": pl.Date})
        frame = frame.join(foreign, on=["gtin_key", "batch_key"], how="left", coalesce=True)
        platform = ctx.dealer.platform_dealer_id
        upstream = pl.col("f_dealer") == platform if platform else pl.lit(False)
        diverted = unreached_batch & pl.col("f_dealer").is_not_null() & ~upstream
        errors.append(_errors(frame, diverted, "DIVERTED", batch_header, pl.col("batch_key"),
                              pl.format("发货单 {}", pl.col("f_shipment"))))
        errors.append(_errors(
            frame, unreached_batch & ~diverted, "BATCH_NOT_RECEIVED", batch_header,
            pl.col("batch_key"),
            pl.when(upstream).then(pl.lit("发给了平台商但未调拨给本经销商 / shipped to the "
                                          "platform dealer, never transferred to this dealer"))))
        serial_checked = keyed & serial_row & product_ok
        serial_diverted = (serial_checked & ~pl.col("s_reached") & pl.col("s_dealer").is_not_null()
                           & (pl.col("s_dealer") != (platform or "")))
        errors.append(_errors(frame, serial_diverted & ~diverted, "DIVERTED", serial_header,
                              pl.col("serial_key"),
                              pl.format("发货单 {}", pl.col("s_shipment"))))
        errors.append(_errors(frame, serial_checked & ~pl.col("s_reached") & ~serial_diverted,
                              "SERIAL_NOT_RECEIVED", serial_header, pl.col("serial_key")))
        errors.append(_errors(frame, serial_checked & pl.col("s_gone"), "SERIAL_ALREADY_SOLD",
                              serial_header, pl.col("serial_key")))
        errors.append(_errors(frame, serial_checked & pl.col("s_batch").is_not_null()
                              & (pl.col("s_batch") != pl.col("batch_key")),
                              "SERIAL_BATCH_MISMATCH", serial_header, pl.col("serial_key"),
                              pl.format("发货批号 {}", pl.col("s_batch"))))
        errors.append(_errors(frame, pl.col("expiry_key").is_not_null()
                              & pl.col("stock_expiry").is_not_null()
                              & (pl.col("expiry_key") != pl.col("stock_expiry")),
                              "EXPIRY_MISMATCH", self._header(C.EXPIRY_DATE),
                              pl.col("expiry_key").cast(pl.Utf8),
                              pl.format("发货效期 {}", pl.col("stock_expiry").cast(pl.Utf8))))
        self._diversions(frame.filter(diverted | serial_diverted))
        # Dates.
        sold = pl.col("sold")
        date_header = self._header(C.SOLD_ON)
        errors.append(_errors(frame, sold > ctx.latest_sale_day, "SOLD_IN_FUTURE", date_header,
                              pl.col("sold_on")))
        period = ctx.period
        outside = pl.lit(False)
        if period.start:
            outside = outside | (sold < period.start)
        if period.end:
            outside = outside | (sold > period.end)
        errors.append(_errors(frame, outside, "OUTSIDE_PERIOD", date_header, pl.col("sold_on"),
                              pl.lit(f"{period.start or '…'} – {period.end or '…'}")))
        if ctx.closed_through:
            errors.append(_errors(frame, sold <= ctx.closed_through, "PERIOD_CLOSED",
                                  date_header, pl.col("sold_on"),
                                  pl.lit(f"关账至 closed through {ctx.closed_through}")))
        reached_on = pl.coalesce(pl.when(serial_row & pl.col("s_reached") & pl.col(
            "s_dealer").eq(dealer_id)).then(pl.col("s_date")), pl.col("reached_on"))
        errors.append(_errors(frame, sold < reached_on, "BEFORE_RECEIPT", date_header,
                              pl.col("sold_on"), pl.format("到货 {}",
                                                           reached_on.cast(pl.Utf8))))
        errors += self._authorizations(frame)
        # Already reported in an accepted upload (same day, customer, department, batch).
        if facts.accepted_keys:
            accepted = pl.DataFrame(list(facts.accepted_keys), orient="row", schema={
                "sold": pl.Date, "party": pl.Utf8, "department": pl.Utf8, "gtin_key": pl.Utf8,
                "batch_key": pl.Utf8}).with_columns(accepted=pl.lit(True))
            probe = frame.with_columns(party=pl.coalesce("customer_id", "transfer_to"),
                                       department=pl.col("department").fill_null(""))
            probe = probe.join(accepted, on=["sold", "party", "department", "gtin_key",
                                             "batch_key"], how="left")
            errors.append(_errors(probe, pl.col("accepted").fill_null(False) & ~serial_row,
                                  "ALREADY_ACCEPTED", date_header, pl.col("sold_on")))
        self.errors += [e for e in errors if e.height]
        self.kept.append(frame.select(
            "row", pl.col("sold").alias("sold_on"), "customer_id", "customer_name",
            "transfer_to", pl.col("department").fill_null(""),
            pl.coalesce("product_code_key", "product_code").alias("product_code"),
            pl.col("product_line").fill_null(""), pl.col("gtin_key").alias("gtin"),
            pl.col("batch_key").alias("batch"), pl.col("expiry_key").alias("expiry"),
            pl.col("serial_key").alias("serial"), pl.col("qty").alias("quantity"),
            pl.col("amount_fen").alias("amount"), "raw_hash",
            (keyed & product_ok & pl.col("qty").is_not_null()).alias("sound")))

    def _authorizations(self, frame: pl.DataFrame) -> list[pl.DataFrame]:
        ctx = self.context
        lines = ctx.authorization_lines
        if lines is not None and not lines:
            return []
        grants = ctx.authorizations
        subject = frame.filter(pl.col("customer_id").is_not_null() & pl.col("sold").is_not_null()
                               & pl.col("gtin_key").is_not_null())
        if lines is not None:
            subject = subject.filter(pl.col("product_line").is_in(list(lines)))
        if subject.height == 0:
            return []
        combos = subject.select("product_line", "product_code_key", "customer_id",
                                pl.col("department").fill_null(""), "sold").unique().rows()
        refused = [(line, code, customer, department, day)
                   for line, code, customer, department, day in combos
                   if not any(g.covers(line or "", code or "", customer, department, day)
                              for g in grants)]
        if not refused:
            return []
        table = pl.DataFrame(refused, orient="row", schema={
            "product_line": pl.Utf8, "product_code_key": pl.Utf8, "customer_id": pl.Utf8,
            "department": pl.Utf8, "sold": pl.Date}).with_columns(refused=pl.lit(True))
        probe = subject.with_columns(pl.col("department").fill_null("")).join(
            table, on=["product_line", "product_code_key", "customer_id", "department", "sold"],
            how="left", nulls_equal=True)
        return [_errors(probe, pl.col("refused").fill_null(False), "NOT_AUTHORIZED",
                        self._header(C.CUSTOMER_NAME), pl.col("customer_name"),
                        pl.format("{} / {}", pl.col("product_line"), pl.col("sold_on")))]

    def _diversions(self, rows: pl.DataFrame) -> None:
        if rows.height == 0:
            return
        rows = rows.with_columns(
            shipped_dealer=pl.coalesce("f_dealer", "s_dealer"),
            shipment=pl.coalesce("f_shipment", "s_shipment"),
            ship_date=pl.coalesce("f_date", "s_date"))
        grouped = rows.group_by("gtin_key", "batch_key", "shipped_dealer").agg(
            pl.col("row").min(), pl.col("qty").fill_null(0).sum(),
            pl.col("serial_key").drop_nulls(), pl.col("shipment").first(),
            pl.col("ship_date").first(), pl.col("customer_id").first(),
            pl.col("customer_name").first(), pl.col("sold").first(),
            pl.col("product_code_key").first())
        for record in grouped.iter_rows(named=True):
            self.diversions.append(DiversionHit(
                record["gtin_key"], record["batch_key"], record["shipped_dealer"],
                record["shipment"] or "", record["ship_date"], record["row"], record["qty"],
                list(record["serial_key"]), record["customer_id"] or "",
                record["customer_name"] or "", record["sold"], record["product_code_key"] or ""))

    # ---- whole file ----------------------------------------------------------------

    def finish(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The in-file duplicate and cumulative quantity checks; returns every error
        (sorted by row) and every row kept."""
        ctx = self.context
        rows = pl.concat(self.kept) if self.kept else pl.DataFrame(
            schema={name: pl.Utf8 for name in KEPT})
        errors = list(self.errors)
        if rows.height:
            first = rows.group_by("raw_hash").agg(pl.col("row").min().alias("first_row"))
            probe = rows.join(first, on="raw_hash", how="left")
            repeated = pl.col("row") != pl.col("first_row")
            errors.append(_errors(probe, repeated, "DUPLICATE_ROW", "", pl.lit(""),
                                  pl.format("第 {} 行", pl.col("first_row"))))
            duplicates = set(probe.filter(repeated).get_column("row").to_list())
            serials = rows.filter(pl.col("serial").is_not_null() & pl.col("gtin").is_not_null())
            first = serials.group_by("gtin", "serial").agg(pl.col("row").min().alias("first_row"))
            probe = serials.join(first, on=["gtin", "serial"], how="left")
            errors.append(_errors(probe, repeated, "DUPLICATE_SERIAL", self._header(C.SERIAL),
                                  pl.col("serial"), pl.format("第 {} 行", pl.col("first_row"))))
            duplicates |= set(probe.filter(repeated).get_column("row").to_list())
            # A repeated row is reported as such; counting its units again would blame
            # the rows after it for exceeding the stock.
            errors.append(self._quantities(rows.filter(~pl.col("row").is_in(list(duplicates)))))
        frame = pl.concat([e for e in errors if e.height] or [pl.DataFrame(schema=ERROR_SCHEMA)])
        frame = frame.unique(subset=["row", "code", "column"], keep="first",
                             maintain_order=True).sort("row", "check", maintain_order=True)
        del ctx
        return frame, rows

    def _quantities(self, rows: pl.DataFrame) -> pl.DataFrame:
        ctx = self.context
        sound = rows.filter(pl.col("sound"))
        if sound.height == 0:
            return pl.DataFrame(schema=ERROR_SCHEMA)
        keys = sound.select("gtin", "batch").unique().rows()
        limits = pl.DataFrame(
            [(g, b, available(ctx.stock.get((g, b)), ctx.movements.get((g, b))))
             for g, b in keys], orient="row",
            schema={"gtin": pl.Utf8, "batch": pl.Utf8, "available": pl.Int64})
        ordered = sound.sort("sold_on", "row", nulls_last=True).with_columns(
            cumulative=pl.col("quantity").cum_sum().over("gtin", "batch")).join(
            limits, on=["gtin", "batch"], how="left")
        return _errors(ordered, pl.col("cumulative") > pl.col("available"), "EXCEEDS_STOCK",
                       self._header(C.QUANTITY), pl.col("quantity").cast(pl.Utf8),
                       pl.format("可售 {}，累计 {}",
                                 pl.col("available"), pl.col("cumulative")))


def failed_checks(errors: pl.DataFrame) -> dict[Check, int]:
    """Failing rows per check (a row counted once per check)."""
    if errors.height == 0:
        return {}
    counted = errors.group_by("check").agg(pl.col("row").n_unique().alias("rows"))
    return {Check(check): rows for check, rows in counted.rows()}
