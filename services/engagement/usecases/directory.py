"""Identity's people, org units and assignments as engagement keeps them (from
identity's events), and the recipients they give: a dealer's staff and managers, an
overdue task's supervisors."""

from __future__ import annotations

from datetime import datetime

from services.engagement.domain.people import Directory, Person
from services.engagement.usecases.ports import EngagementUnitOfWork


async def record_person(person: Person, *, uow: EngagementUnitOfWork) -> None:
    async with uow:
        await uow.directory.put_person(person)
        await uow.commit()


async def record_roles(user_id: str, roles: frozenset[str], org_unit_id: str, dealer_id: str,
                       *, uow: EngagementUnitOfWork) -> None:
    async with uow:
        known = await uow.directory.person(user_id) or Person(user_id)
        await uow.directory.put_person(Person(user_id, known.display_name, roles, org_unit_id,
                                              dealer_id, known.active))
        await uow.commit()


async def record_org_unit(unit_id: str, kind: str, name: str, region_code: str,
                          created_at: datetime | None, *, uow: EngagementUnitOfWork) -> None:
    async with uow:
        await uow.directory.put_org_unit(unit_id, kind, name, region_code, created_at)
        await uow.commit()


async def record_assignments(added: list[tuple[str, str, str]],
                             removed: list[tuple[str, str, str]], *,
                             uow: EngagementUnitOfWork) -> None:
    """(manager, dealer, product line) pairs assigned and unassigned."""
    async with uow:
        for manager, dealer, line in removed:
            await uow.directory.unassign(manager, dealer, line)
        for manager, dealer, line in added:
            await uow.directory.assign(manager, dealer, line)
        await uow.commit()


async def directory_of(dealer_id: str, uow: EngagementUnitOfWork) -> Directory:
    """Who works for, manages and supervises a dealer (inside the caller's transaction)."""
    facts = await uow.health.facts(dealer_id)
    region_units = (await uow.directory.units_of_region(facts.region_code)
                    if facts is not None and facts.region_code else frozenset())
    return Directory(
        dealer_staff=tuple(await uow.directory.staff_of(dealer_id)),
        managers=tuple(await uow.directory.managers_of(dealer_id)),
        region_managers=tuple(await uow.directory.with_role("region_manager", region_units))
        if region_units else (),
        hq_admins=tuple(await uow.directory.with_role("hq_admin")),
    )
