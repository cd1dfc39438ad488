"""Diversions (窜货) and closed periods: HQ's side of sell-through. A diversion is seen by
HQ and by whoever may see the dealer the goods were shipped to (its channel manager),
never by dealer staff; HQ resolves it with a note."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from qudao.flow.v1 import events_pb2

from services.flow.domain.model import Diversion, DiversionFilter, DiversionStatus
from services.flow.messages import diversion_to_proto
from services.flow.usecases.ports import Deps, FlowUnitOfWork
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.flow import DIVERSION_RESOLVED
from shared.pagination import Page, PageRequest
from shared.scope import Scopes

HQ_RESOLVERS = ("hq_admin",)


def _refuse_dealer_staff(who: Principal) -> None:
    if who.is_dealer_staff:
        raise PermissionDenied("diversions are for HQ and channel managers")


async def list_diversions(which: DiversionFilter, page: PageRequest, *, who: Principal,
                          uow: FlowUnitOfWork, scopes: Scopes) -> Page[Diversion]:
    _refuse_dealer_staff(who)
    scope = await scopes.resolve(who, "flow.diversion")
    if which.shipped_dealer_id and not scope.allows(which.shipped_dealer_id):
        return Page([])
    scoped = replace(which, shipped_dealer_ids=None if scope.all_dealers else scope.dealer_ids)
    async with uow.read():
        return await uow.diversions.page(scoped, page)


async def get_diversion(diversion_id: str, *, who: Principal, uow: FlowUnitOfWork,
                        scopes: Scopes) -> Diversion:
    scope = await scopes.resolve(who, "flow.diversion")
    async with uow.read():
        diversion = await uow.diversions.get(diversion_id)
    if diversion is None or not scope.allows(diversion.shipped_dealer_id):
        raise NotFound(f"diversion {diversion_id} not found")
    _refuse_dealer_staff(who)
    return diversion


async def resolve_diversion(diversion_id: str, status: DiversionStatus, note: str, *,
                            who: Principal, deps: Deps) -> Diversion:
    uow = deps.uow()
    diversion = await get_diversion(diversion_id, who=who, uow=uow, scopes=deps.scopes)
    if not who.has_role(*HQ_RESOLVERS):
        raise PermissionDenied("only HQ resolves a diversion")
    if status not in (DiversionStatus.CONFIRMED, DiversionStatus.DISMISSED):
        raise InvalidArgument.field("status", "must be confirmed or dismissed")
    if not note.strip():
        raise InvalidArgument.field("note", "say what HQ found")
    if len(note) > 2000:
        raise InvalidArgument.field("note", "at most 2000 characters")
    async with uow:
        current = await uow.diversions.get(diversion.id)
        if current.status != DiversionStatus.OPEN:
            raise FailedPrecondition(f"diversion {diversion_id} is already "
                                     f"{current.status.name.lower()}", reason="ALREADY_RESOLVED")
        resolved = replace(current, status=status, resolution_note=note.strip(),
                           resolved_by=who.subject, resolved_at=deps.clock.now())
        await uow.diversions.save(resolved)
        uow.events.record(DIVERSION_RESOLVED, events_pb2.DiversionResolved(
            diversion=diversion_to_proto(resolved)), resolved.id)
        await uow.commit()
    return resolved


async def close_period(through: str, *, who: Principal, deps: Deps) -> date:
    if not who.has_role("hq_admin", "finance"):
        raise PermissionDenied("only HQ admin or finance closes a period")
    try:
        day = date.fromisoformat(through)
    except ValueError:
        raise InvalidArgument.field("closed_through", f"{through!r} is not a date "
                                                      "(YYYY-MM-DD)") from None
    if day >= deps.clock.now().date():
        raise InvalidArgument.field("closed_through", "a period closes once it has ended")
    uow = deps.uow()
    async with uow:
        current = await uow.periods.closed_through()
        if current is not None and day <= current:
            raise FailedPrecondition(f"already closed through {current}", reason="CLOSED")
        await uow.periods.close(day, who.subject, deps.clock.now())
        await uow.commit()
    return day


async def closed_through(*, uow: FlowUnitOfWork) -> date | None:
    async with uow.read():
        return await uow.periods.closed_through()
