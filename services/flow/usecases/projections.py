"""Flow's copies of other services' facts, fed by their events (consumers/) and
rebuildable by replaying the producer's stream. Every change to what a dealer holds
moves that dealer's ledger version, so an upload validated against older stock is
checked again before it is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.flow.domain.model import Authorization, Customer, Dealer, Product, ShipmentLine
from services.flow.usecases.ports import Deps, FlowUnitOfWork
from shared.context import Principal
from shared.errors import InvalidArgument, PermissionDenied

PROJECTIONS = ("shipments", "products", "customers", "authorizations", "dealers")


async def apply_product(product: Product, *, uow: FlowUnitOfWork) -> None:
    async with uow:
        await uow.projections.upsert_product(product)
        await uow.commit()


async def apply_customer(customer: Customer, at: datetime, *, uow: FlowUnitOfWork) -> None:
    async with uow:
        await uow.projections.upsert_customer(customer, at)
        await uow.commit()


async def apply_customer_merge(kept: Customer, merged_id: str, at: datetime, *,
                               uow: FlowUnitOfWork) -> None:
    """HQ folded ``merged_id`` into ``kept``: its accepted flow, diversions and
    authorizations follow, so the duplicate check, authorization check and reports see
    one hospital."""
    async with uow:
        await uow.projections.merge_customer(kept, merged_id, at)
        await uow.flow_rows.move_customer(merged_id, kept.id, kept.name)
        await uow.diversions.move_customer(merged_id, kept.id, kept.name)
        await uow.commit()


async def apply_dealer(dealer: Dealer, *, uow: FlowUnitOfWork) -> None:
    async with uow:
        await uow.projections.upsert_dealer(dealer)
        await uow.commit()


async def apply_authorization(authorization: Authorization, *, uow: FlowUnitOfWork) -> None:
    async with uow:
        await uow.projections.upsert_authorization(authorization)
        await uow.commit()


async def apply_shipment(lines: list[ShipmentLine], *, uow: FlowUnitOfWork) -> int:
    async with uow:
        added = await uow.projections.add_shipment_lines(lines)
        await uow.ledgers.bump({line.dealer_id for line in lines})
        await uow.commit()
    return added


async def apply_receipt(shipment_id: str, received: dict[int, int], on: date, *,
                        uow: FlowUnitOfWork) -> None:
    async with uow:
        dealers = await uow.projections.receive(shipment_id, received, on)
        await uow.ledgers.bump(dealers)
        await uow.commit()


@dataclass(frozen=True)
class ReturnedLine:
    gtin: str
    batch: str
    quantity: int
    serials: tuple[str, ...]


async def apply_return(dealer_id: str, lines: list[ReturnedLine], *,
                       uow: FlowUnitOfWork) -> None:
    async with uow:
        for line in lines:
            if line.quantity > 0:
                await uow.projections.returned(dealer_id, line.gtin, line.batch, line.quantity,
                                               list(line.serials))
        await uow.ledgers.bump({dealer_id})
        await uow.commit()


@dataclass(frozen=True)
class Rebuilt:
    projection: str
    events: int
    rows: int
    started_at: datetime
    finished_at: datetime


async def rebuild_projection(projection: str, *, who: Principal, deps: Deps) -> Rebuilt:
    """Empty the projection and apply its producer's whole stream again, in one
    transaction (the projection's consumer waits meanwhile, then finds every event
    it is given already applied)."""
    if not (who.has_role("hq_admin") or who.subject.startswith("service:")):
        raise PermissionDenied("only HQ admins and operators rebuild projections")
    if projection not in PROJECTIONS:
        raise InvalidArgument.field("projection", f"one of {', '.join(PROJECTIONS)}")
    started = deps.clock.now()
    uow = deps.uow()
    async with uow:
        await uow.projections.clear(projection)
        events, rows = await deps.replayer.replay(projection, uow)
        await uow.commit()
    await deps.directory.refresh()
    return Rebuilt(projection, events, rows, started, deps.clock.now())
