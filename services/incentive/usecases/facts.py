"""Facts from other services' events, each stored idempotently and followed by the
recomputation of the accruals that depend on it: accepted and replaced flow uploads,
diversions, orders (approved, rejected, cancelled, closed short), returns, shipments and
products, registrations and HQ lead assignments. The consumers call these."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from services.incentive.domain.accruals import Accrual, UnitType
from services.incentive.domain.facts import (
    Diversion,
    LeadEvent,
    Order,
    Registration,
    Return,
    Sale,
    ShippedLine,
    UploadPart,
)
from services.incentive.usecases.engine import Booking
from services.incentive.usecases.ports import IncentiveUnitOfWork, Policy
from shared.clock import Clock
from shared.ids import IdSource


def _booking(uow, clock, ids, policy, cause: str, cause_id: str) -> Booking:
    return Booking(uow, clock, ids, policy, cause, cause_id)


async def _rebates_for_sales(booking: Booking, rows: list[Sale]) -> None:
    by_dealer: dict[str, set] = {}
    for row in rows:
        by_dealer.setdefault(row.dealer_id, set()).add(
            (row.product_line, row.product_code, row.sold_on))
    for dealer_id, touched in sorted(by_dealer.items()):
        await booking.recompute_dealer_rebates(dealer_id, sorted(touched))


async def _rows_of_upload(uow: IncentiveUnitOfWork, upload_id: str) -> tuple[list, list[Sale]]:
    parts = await uow.sales.parts_of(upload_id)
    rows: list[Sale] = []
    for part in parts:
        rows += await uow.sales.rows_of(part.upload_id, part.part_index)
    return parts, rows


async def _supersede(booking: Booking, upload_id: str, by_upload_id: str) -> None:
    if not await booking.uow.sales.supersede(upload_id, by_upload_id):
        return
    parts, rows = await _rows_of_upload(booking.uow, upload_id)
    await booking.recompute_parts((p.upload_id, p.part_index) for p in parts)
    await _rebates_for_sales(booking, rows)


async def accept_flow_part(part: UploadPart, rows: list[Sale], *, uow: IncentiveUnitOfWork,
                           clock: Clock, ids: IdSource, policy: Policy) -> list[Accrual]:
    """An accepted upload part: its rows are stored once (the unit of work is the
    part), then its commission and the dealers' rebates follow."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "flow.upload.accepted",
                           f"{part.upload_id}#{part.part_index}")
        if part.replaces_upload_id:
            await _supersede(booking, part.replaces_upload_id, part.upload_id)
        if await uow.sales.add_part(part, rows):
            await booking.recompute_parts([(part.upload_id, part.part_index)])
            await _rebates_for_sales(booking, rows)
        await uow.commit()
    return booking.booked


async def supersede_upload(upload_id: str, by_upload_id: str, *, uow: IncentiveUnitOfWork,
                           clock: Clock, ids: IdSource, policy: Policy) -> list[Accrual]:
    """A replaced upload no longer counts: what its rows earned is reversed (in the next
    settlement, when its period is already closed). If its rows have not arrived yet,
    they are stored as replaced when they do."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "flow.upload.superseded", upload_id)
        await _supersede(booking, upload_id, by_upload_id)
        await uow.commit()
    return booking.booked


async def record_diversion(diversion: Diversion, *, uow: IncentiveUnitOfWork, clock: Clock,
                           ids: IdSource, policy: Policy) -> list[Accrual]:
    """Diverted goods never count; a dismissed diversion counts again. A resolution is
    final: a late "detected" never reopens it. The selling dealer's accepted sales of the
    batch are recomputed, whatever upload they came in."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "flow.diversion", diversion.id)
        known = await uow.sales.diversion(diversion.id)
        if known is not None and known.status != "open" and diversion.status == "open":
            diversion = known
        if known != diversion:
            await uow.sales.put_diversion(diversion)
            parts = await uow.sales.parts_with_batch(diversion.dealer_id, diversion.batch)
            await booking.recompute_parts(parts)
            rows = []
            for upload_id, part_index in parts:
                rows += [r for r in await uow.sales.rows_of(upload_id, part_index)
                         if diversion.matches(r)]
            await _rebates_for_sales(booking, rows)
        await uow.commit()
    return booking.booked


async def _touched_by_returns(booking: Booking, returns: list[Return]) -> set:
    """(product line, product code, day) of what returns take off purchases."""
    touched = set()
    for returned in returns:
        for priced in await booking.price_return(returned):
            touched.add((priced.product_line, priced.line.product_code, returned.received_on))
    return touched


def _merge_order(known: Order | None, seen: Order) -> Order:
    if known is None:
        return seen
    lines = {line.line_no: line for line in known.lines}
    for line in seen.lines:
        held = lines.get(line.line_no)
        lines[line.line_no] = line if held is None else replace(
            line, quantity_closed=max(held.quantity_closed, line.quantity_closed))
    approved = [d for d in (known.approved_on, seen.approved_on) if d is not None]
    return Order(known.order_id, known.dealer_id or seen.dealer_id,
                 known.selling_company or seen.selling_company,
                 tuple(lines[n] for n in sorted(lines)), min(approved) if approved else None,
                 known.voided or seen.voided, known.currency or seen.currency)


async def record_order(seen: Order, cause: str, *, uow: IncentiveUnitOfWork, clock: Clock,
                       ids: IdSource, policy: Policy) -> list[Accrual]:
    """An order event: approved (fully), rejected, cancelled or a line closed short.
    Whatever order they arrive in, an order counts only once approved and never once
    voided, so commission is never kept for a rejected or cancelled order."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, cause, seen.order_id)
        known = await uow.orders.get(seen.order_id)
        merged = _merge_order(known, seen)
        if merged != known:
            await uow.orders.put(merged)
            await booking.recompute_units([(UnitType.ORDER, merged.order_id)])
            returns = await uow.orders.returns(frozenset({merged.dealer_id}), date.min, date.max)
            await booking.recompute_units((UnitType.RETURN, r.return_id) for r in returns)
            day = merged.approved_on or (known.approved_on if known else None)
            if day is not None:
                touched = {(line.product_line, line.product_code, day) for line in merged.lines}
                touched |= await _touched_by_returns(booking, returns)
                await booking.recompute_dealer_rebates(merged.dealer_id, sorted(touched),
                                                       purchases=True)
        await uow.commit()
    return booking.booked


async def record_return(returned: Return, *, uow: IncentiveUnitOfWork, clock: Clock,
                        ids: IdSource, policy: Policy) -> list[Accrual]:
    """Goods back from the dealer: commission on approved orders and purchases shrink by
    their value."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "order.return.received",
                           returned.return_id)
        if await uow.orders.get_return(returned.return_id) is None:
            await uow.orders.put_return(returned)
            await booking.recompute_units([(UnitType.RETURN, returned.return_id)])
            await booking.recompute_dealer_rebates(
                returned.dealer_id, sorted(await _touched_by_returns(booking, [returned])),
                purchases=True)
        await uow.commit()
    return booking.booked


async def link_shipment(dealer_id: str, lines: list[ShippedLine], *,
                        uow: IncentiveUnitOfWork, clock: Clock, ids: IdSource,
                        policy: Policy) -> list[Accrual]:
    """Which order lines a shipment's goods were shipped against, to value returns at
    the price paid (a return received before its shipment is known is revalued)."""
    async with uow:
        shipment_id = lines[0].shipment_id if lines else ""
        booking = _booking(uow, clock, ids, policy, "order.shipment.recorded", shipment_id)
        linked = [line for line in lines if line.order_id]
        if linked:
            await uow.orders.link_shipment(linked)
            returns = [r for r in await uow.orders.returns(frozenset({dealer_id}), date.min,
                                                           date.max)
                       if any(line.shipment_id == shipment_id for line in r.lines)]
            await booking.recompute_units((UnitType.RETURN, r.return_id) for r in returns)
            await booking.recompute_dealer_rebates(
                dealer_id, sorted(await _touched_by_returns(booking, returns)), purchases=True)
        await uow.commit()
    return booking.booked


async def record_product(code: str, product_line: str, list_price_minor: int, *,
                         uow: IncentiveUnitOfWork) -> None:
    async with uow:
        await uow.orders.put_product(code, product_line, list_price_minor)
        await uow.commit()


async def _recompute_customer(booking: Booking, dealer_id: str, customer_id: str,
                              since: date) -> None:
    parts = await booking.uow.sales.parts_selling(dealer_id, customer_id, since)
    await booking.recompute_parts(parts)


async def record_registration(seen: Registration, cause: str, *, uow: IncentiveUnitOfWork,
                              clock: Clock, ids: IdSource, policy: Policy) -> list[Accrual]:
    """A registration approved (the customer is the dealer's, with its source) or ended
    (expired, recalled, lost a conflict): commission of the dealer's sales to that
    customer from then on is recomputed."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, cause, seen.registration_id)
        known = await uow.ownership.registration(seen.registration_id)
        merged = seen if known is None else replace(
            known, approved_on=min([d for d in (known.approved_on, seen.approved_on) if d],
                                   default=None),
            ended_on=min([d for d in (known.ended_on, seen.ended_on) if d], default=None))
        if merged != known:
            await uow.ownership.put_registration(merged)
            changed = [d for d in (seen.approved_on, seen.ended_on) if d]
            if changed:
                await _recompute_customer(booking, merged.dealer_id, merged.customer_id,
                                          min(changed))
        await uow.commit()
    return booking.booked


async def record_customer_merge(kept_id: str, merged_id: str, *, uow: IncentiveUnitOfWork,
                                clock: Clock, ids: IdSource, policy: Policy) -> list[Accrual]:
    """HQ folded customer ``merged_id`` into ``kept_id``: who registered the merged
    customer now holds the kept one from the same day, so the commission of their sales
    to the kept customer since then is recomputed with that source."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "registration.customer.merged", merged_id)
        for moved in await uow.ownership.move_customer(merged_id, kept_id):
            if moved.approved_on:
                await _recompute_customer(booking, moved.dealer_id, kept_id, moved.approved_on)
        await uow.commit()
    return booking.booked


async def record_lead_event(event: LeadEvent, *, uow: IncentiveUnitOfWork, clock: Clock,
                            ids: IdSource, policy: Policy) -> list[Accrual]:
    """An HQ lead assigned to a dealer (its customer counts as HQ-sourced) or leaving
    it."""
    async with uow:
        booking = _booking(uow, clock, ids, policy, "registration.lead", event.lead_id)
        if await uow.ownership.add_lead_event(event) and event.customer_id:
            await _recompute_customer(booking, event.dealer_id, event.customer_id, event.day)
        await uow.commit()
    return booking.booked
