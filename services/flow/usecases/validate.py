"""Validating a stored upload, in the background, on whichever replica claims it: read
the file, map its headers, check every row (usecases/validation.py), then accept it
whole or reject it whole. A validator that stops reporting (its process died) loses
its claim after the lease and another replica starts the upload again."""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from datetime import timedelta

import polars as pl
from qudao.flow.v1 import events_pb2

from services.flow.domain.checks import Check
from services.flow.domain.columns import ColumnChoice, FlowColumn, header_key, map_headers
from services.flow.domain.hospitals import HospitalResolver, territory_cities
from services.flow.domain.model import Diversion, DiversionStatus, FlowRow, SerialMove, Upload
from services.flow.domain.model import UploadStatus as S
from services.flow.domain.rules import latest_sale_day, replacement_problem
from services.flow.messages import diversion_to_proto, flow_row_to_proto, upload_to_proto
from services.flow.usecases.ports import Deps, FlowUnitOfWork, SourceTable
from services.flow.usecases.uploads import ERRORS, REPORT
from services.flow.usecases.validation import Context, Facts, Validator, failed_checks
from shared.convert import money_to_proto, to_timestamp
from shared.events.flow import (
    DIVERSION_DETECTED,
    FLOW_UPLOAD_ACCEPTED,
    FLOW_UPLOAD_REJECTED,
    FLOW_UPLOAD_SUPERSEDED,
)
from shared.logging import get_logger
from shared.money import Money
from shared.text import normalize_name

log = get_logger(__name__)


class FileProblem(Exception):
    """The file cannot be read at all; the message says why, for the dealer."""


class LostClaim(Exception):
    """Another worker took the upload over (this one was presumed dead)."""


async def validate_next(deps: Deps) -> bool:
    """Claim one upload and validate it; False when there was nothing to do."""
    now = deps.clock.now()
    stale = now - timedelta(seconds=deps.options.lease_seconds)
    uow = deps.uow()
    async with uow:
        upload = await uow.uploads.claim(deps.options.worker_id, now, stale)
        await uow.commit()
    if upload is None:
        return False
    try:
        await validate_upload(upload, deps)
    except LostClaim:
        log.warning("flow_validation_taken_over", upload_id=upload.id)
    except Exception as exc:
        log.exception("flow_validation_crashed", upload_id=upload.id)
        await _finish_failed(upload, deps, f"internal error while validating: {exc!r}")
    return True


async def _finish_failed(upload: Upload, deps: Deps, message: str) -> None:
    uow = deps.uow()
    async with uow:
        current = await uow.uploads.get(upload.id)
        if current is None or current.status.finished:
            return
        failed = current.evolve(status=S.FAILED, failure_message=message[:2000],
                                finished_at=deps.clock.now(), worker="")
        await uow.uploads.save(failed)
        uow.events.record(FLOW_UPLOAD_REJECTED,
                          events_pb2.FlowUploadRejected(upload=upload_to_proto(failed)),
                          failed.id)
        await uow.commit()


async def _progress(upload: Upload, deps: Deps, processed: int, total: int,
                    counts: dict[Check, int] | None = None) -> None:
    uow = deps.uow()
    async with uow:
        alive = await uow.uploads.heartbeat(upload.id, deps.options.worker_id,
                                            deps.clock.now(), processed, total)
        if alive and counts is not None:
            current = await uow.uploads.get(upload.id)
            await uow.uploads.save(current.evolve(error_counts=counts))
        await uow.commit()
    if not alive:
        raise LostClaim(upload.id)


def _mapping(table: SourceTable, upload: Upload, saved: dict[str, FlowColumn]):
    explicit = [ColumnChoice(entry.column, entry.header, entry.position)
                for entry in upload.mapping]
    return map_headers(table.header, explicit, saved)


async def validate_upload(upload: Upload, deps: Deps) -> None:
    options = deps.options
    try:
        table = await deps.reader.read(upload)
    except FileProblem as problem:
        await _finish_failed(upload, deps, str(problem))
        return
    uow = deps.uow()
    async with uow.read():
        saved = await uow.mappings.get(upload.dealer_id)
        dealer = await uow.projections.dealer(upload.dealer_id)
    mapping = _mapping(table, upload, saved)
    if not mapping.ok:
        unknown = (" (headers not understood: " + ", ".join(mapping.unknown_headers[:20]) + ")"
                   if mapping.unknown_headers else "")
        await _finish_failed(upload, deps, "; ".join(mapping.problems) + unknown)
        return
    total = table.frame.height
    if total == 0:
        await _finish_failed(upload, deps, "the file has a header row but no data rows")
        return
    if total > options.max_rows:
        await _finish_failed(upload, deps, f"the file has {total} data rows; at most "
                                           f"{options.max_rows} per upload")
        return
    if dealer is None:
        await _finish_failed(upload, deps, f"dealer {upload.dealer_id} is not known to the "
                                           "flow service yet; try again in a moment")
        return
    async with uow:
        current = await uow.uploads.get(upload.id)
        if upload.mapping and current is not None:
            learned = {header_key(e.header): e.column for e in upload.mapping if e.header}
            await uow.mappings.save(upload.dealer_id, {**saved, **learned}, deps.clock.now())
        await uow.uploads.save(current.evolve(
            total_rows=total, encoding=table.encoding, processed_rows=0,
            unknown_headers=tuple(mapping.unknown_headers), mapping=upload.mapping or tuple(
                _entries(mapping))))
        await uow.commit()
    frame = table.frame.select(
        "row", *[pl.col(f"c{position}").alias(column.value)
                 for column, position in mapping.positions.items()])
    # Blank lines carry no sale.
    frame = frame.filter(pl.any_horizontal(
        [pl.col(c.value).is_not_null() & (pl.col(c.value).str.strip_chars() != "")
         for c in mapping.positions]))
    spreadsheet = table.spreadsheet
    del table
    context, version = await _context(upload, dealer, mapping.headers, spreadsheet, deps)
    validator = Validator(context)
    processed = 0
    for start in range(0, frame.height, options.chunk_rows):
        chunk = frame.slice(start, options.chunk_rows)
        prepared = await asyncio.to_thread(validator.prepare, chunk)
        needed = validator.facts_needed(prepared)
        facts = await _facts(upload, needed, deps)
        await asyncio.to_thread(validator.check, prepared, facts)
        processed += chunk.height
        counts = failed_checks(pl.concat(validator.errors)) if validator.errors else {}
        await _progress(upload, deps, processed, frame.height, counts)
    errors, rows = await asyncio.to_thread(validator.finish)
    if errors.height:
        await _reject(upload, errors, validator.diversions, deps)
        return
    accepted = await asyncio.to_thread(aggregate, upload, rows, context.stock,
                                       context.movements)
    if not await _accept(upload, accepted, rows, version, deps):
        # What the dealer holds changed while this upload was checked: check it again.
        async with uow:
            current = await uow.uploads.get(upload.id)
            await uow.uploads.save(current.evolve(status=S.QUEUED, worker="",
                                                  heartbeat_at=None))
            await uow.commit()
        deps.wake()


def _entries(mapping):
    from services.flow.domain.model import MappingEntry

    return [MappingEntry(column, mapping.headers.get(column, ""), position + 1)
            for column, position in mapping.positions.items()]


async def _context(upload: Upload, dealer, headers, spreadsheet: bool,
                   deps: Deps) -> tuple[Context, int]:
    now = deps.clock.now()
    uow = deps.uow()
    async with uow.read():
        products = await uow.projections.products()
        movements = await uow.flow_rows.movements(upload.dealer_id, upload.replaces_upload_id)
        grants = await uow.projections.authorizations(upload.dealer_id)
        subs = (await uow.projections.sub_dealers(dealer.id)) if dealer.is_platform else []
        closed = await uow.periods.closed_through()
        version = await uow.ledgers.version(upload.dealer_id)
    await deps.directory.refresh()
    resolver = HospitalResolver(
        deps.directory, territory=territory_cities(dealer.division_codes,
                                                   deps.directory.cities()),
        sub_dealers={normalize_name(sub.name): sub.id for sub in subs if sub.active},
        threshold_bps=deps.options.fuzzy_threshold_bps)
    context = Context(
        dealer=dealer, period=upload.period, latest_sale_day=latest_sale_day(now),
        reference_year=now.year, closed_through=closed,
        products_by_gtin={p.gtin: p for p in products},
        products_by_code={p.code: p for p in products}, resolver=resolver,
        movements=movements, authorization_lines=deps.options.authorization_lines,
        authorizations=grants, headers=headers, xlsx=spreadsheet)
    return context, version


async def _facts(upload: Upload, needed, deps: Deps) -> Facts:
    uow = deps.uow()
    async with uow.read():
        facts = Facts(
            shipped_serials=await uow.projections.shipped_serials(needed.serials),
            serial_moves=await uow.flow_rows.serial_moves(needed.serials,
                                                          upload.replaces_upload_id),
            stock=await uow.projections.stock_of_batches(needed.batches))
        if needed.sold_from and needed.sold_to:
            facts.accepted_keys = await uow.flow_rows.accepted_keys(
                upload.dealer_id, needed.sold_from, needed.sold_to, upload.replaces_upload_id)
    return facts


def aggregate(upload: Upload, rows: pl.DataFrame, stock, movements) -> list[FlowRow]:
    """Accepted rows per dealer × product × batch × customer (or transfer dealer) ×
    department × day, as the event carries them."""
    grouped = rows.group_by("gtin", "batch", "customer_id", "transfer_to", "department",
                            "sold_on").agg(
        pl.col("row").min().alias("row_number"), pl.len().alias("row_count"),
        pl.col("quantity").sum(), pl.col("amount").sum(), pl.col("serial").drop_nulls(),
        pl.col("product_code").first(), pl.col("product_line").first(),
        pl.col("expiry").first(), pl.col("customer_name").first()).sort("row_number")
    result = []
    for r in grouped.iter_rows(named=True):
        key = (r["gtin"], r["batch"])
        entry, movement = stock.get(key), movements.get(key)
        shipment = entry.first_shipment_id if entry else (
            movement.transfer_shipment_id if movement else "")
        result.append(FlowRow(
            upload_id=upload.id, dealer_id=upload.dealer_id, row_number=r["row_number"],
            row_count=r["row_count"], customer_id=r["customer_id"] or "",
            customer_name=r["customer_name"] or "", transfer_to_dealer_id=r["transfer_to"] or "",
            department=r["department"] or "", product_code=r["product_code"] or "",
            gtin=r["gtin"], product_line=r["product_line"] or "", batch=r["batch"],
            expiry=r["expiry"], serials=tuple(r["serial"]), quantity=r["quantity"],
            amount=Money(r["amount"] or 0), sold_on=r["sold_on"], shipment_id=shipment))
    return result


async def _reject(upload: Upload, errors: pl.DataFrame, hits, deps: Deps) -> None:
    counts = failed_checks(errors)
    buffer = io.BytesIO()
    errors.write_parquet(buffer, compression="zstd")
    data = buffer.getvalue()
    now = deps.clock.now()
    uow = deps.uow()
    async with uow:
        current = await uow.uploads.get(upload.id)
        if current is None or current.worker != deps.options.worker_id or current.status.finished:
            raise LostClaim(upload.id)
        await uow.blobs.delete(upload.id, ERRORS)
        await uow.blobs.delete(upload.id, REPORT)
        for seq, start in enumerate(range(0, len(data), 1024 * 1024)):
            await uow.blobs.put_chunk(upload.id, ERRORS, seq, data[start:start + 1024 * 1024])
        for hit in hits:
            if await uow.diversions.open_for(upload.dealer_id, hit.gtin, hit.batch,
                                             hit.shipped_dealer_id):
                continue
            diversion = Diversion(
                id=deps.ids.new_id(), upload_id=upload.id, row_number=hit.row_number,
                selling_dealer_id=upload.dealer_id, shipped_dealer_id=hit.shipped_dealer_id,
                product_code=hit.product_code, gtin=hit.gtin, batch=hit.batch,
                serials=tuple(hit.serials), quantity=hit.quantity, customer_id=hit.customer_id,
                customer_name=hit.customer_name, sold_on=hit.sold_on,
                shipment_id=hit.shipment_id, ship_date=hit.ship_date,
                status=DiversionStatus.OPEN, detected_at=now)
            await uow.diversions.add(diversion)
            uow.events.record(DIVERSION_DETECTED, events_pb2.DiversionDetected(
                diversion=diversion_to_proto(diversion)), diversion.id)
        rejected = current.evolve(
            status=S.REJECTED, processed_rows=current.total_rows,
            failed_rows=errors.get_column("row").n_unique(), error_counts=counts,
            finished_at=now, worker="")
        await uow.uploads.save(rejected)
        uow.events.record(FLOW_UPLOAD_REJECTED,
                          events_pb2.FlowUploadRejected(upload=upload_to_proto(rejected)),
                          upload.id)
        await uow.commit()


async def _accept(upload: Upload, accepted: list[FlowRow], rows: pl.DataFrame, version: int,
                  deps: Deps) -> bool:
    """Store the rows and publish them, all in one transaction; False (nothing done)
    when the dealer's ledger moved since validation read it."""
    now = deps.clock.now()
    uow = deps.uow()
    async with uow:
        current = await uow.uploads.get(upload.id)
        if current is None or current.worker != deps.options.worker_id or current.status.finished:
            raise LostClaim(upload.id)
        if not await uow.ledgers.advance(upload.dealer_id, version):
            return False
        previous = None
        if upload.replaces_upload_id:
            previous = await uow.uploads.get(upload.replaces_upload_id)
            problem = replacement_problem(previous, upload.dealer_id,
                                          await uow.periods.closed_through())
            if problem:
                failed = current.evolve(status=S.FAILED, finished_at=now, worker="",
                                        failure_message=f"upload {upload.replaces_upload_id} "
                                                        f"can no longer be replaced: {problem}")
                await uow.uploads.save(failed)
                uow.events.record(FLOW_UPLOAD_REJECTED, events_pb2.FlowUploadRejected(
                    upload=upload_to_proto(failed)), upload.id)
                await uow.commit()
                return True
            affected = {r.transfer_to_dealer_id for r in await uow.flow_rows.of_upload(
                previous.id) if r.transfer_to_dealer_id}
            await uow.flow_rows.deactivate(previous.id)
            await uow.flow_rows.delete_serial_moves(previous.id)
            await uow.ledgers.bump(affected)
            await uow.uploads.save(previous.evolve(status=S.SUPERSEDED,
                                                   superseded_by_upload_id=upload.id))
            uow.events.record(FLOW_UPLOAD_SUPERSEDED, events_pb2.FlowUploadSuperseded(
                upload_id=previous.id, dealer_id=previous.dealer_id,
                superseded_by_upload_id=upload.id,
                period_start=_iso(previous.period.start), period_end=_iso(previous.period.end),
                superseded_at=to_timestamp(now)), previous.id)
        await uow.flow_rows.add(accepted, "CNY")
        moves = [SerialMove(row.gtin, serial, upload.dealer_id, row.transfer_to_dealer_id,
                            upload.id) for row in accepted for serial in row.serials]
        await uow.flow_rows.add_serial_moves(moves)
        await uow.ledgers.bump({r.transfer_to_dealer_id for r in accepted
                                if r.transfer_to_dealer_id})
        total_quantity = sum(r.quantity for r in accepted)
        total_amount = Money(sum(r.amount.amount_minor for r in accepted))
        done = current.evolve(
            status=S.ACCEPTED, processed_rows=current.total_rows, failed_rows=0,
            error_counts={}, total_quantity=total_quantity, total_amount=total_amount,
            transfer_rows=rows.filter(pl.col("transfer_to").is_not_null()).height,
            finished_at=now, worker="")
        await uow.uploads.save(done)
        parts = _parts(accepted, deps.options.event_rows_per_part)
        for index, part in enumerate(parts):
            uow.events.record(FLOW_UPLOAD_ACCEPTED, events_pb2.FlowUploadAccepted(
                upload_id=upload.id, dealer_id=upload.dealer_id, accepted_at=to_timestamp(now),
                part_index=index, part_count=len(parts),
                rows=[flow_row_to_proto(r) for r in part], total_rows=current.total_rows,
                total_quantity=total_quantity, total_amount=money_to_proto(total_amount),
                period_start=_iso(upload.period.start), period_end=_iso(upload.period.end),
                replaces_upload_id=upload.replaces_upload_id), upload.id)
        await uow.commit()
    return True


def _parts(rows: list[FlowRow], size: int) -> list[list[FlowRow]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]


def _iso(day) -> str:
    return day.isoformat() if day else ""


async def error_counts_by_row(uow: FlowUnitOfWork, upload_id: str) -> pl.DataFrame:
    """The stored error list of a rejected upload (empty when there is none)."""
    chunks = [chunk async for chunk in uow.blobs.chunks(upload_id, ERRORS)]
    if not chunks:
        from services.flow.usecases.validation import ERROR_SCHEMA
        return pl.DataFrame(schema=ERROR_SCHEMA)
    return pl.read_parquet(io.BytesIO(b"".join(chunks)))


def rows_with_reasons(errors: pl.DataFrame) -> dict[int, str]:
    """Row number → every reason of that row, Chinese and English, for a report."""
    from services.flow.domain.checks import CODES

    reasons: dict[int, list[str]] = defaultdict(list)
    for row, code, column, detail in errors.select("row", "code", "column",
                                                   "detail").iter_rows():
        spec = CODES[code]
        where = f"[{column}] " if column else ""
        text = f"{where}{spec.zh} / {spec.en}"
        reasons[row].append(f"{text}（{detail}）" if detail else text)
    return {row: "；".join(items) for row, items in reasons.items()}
