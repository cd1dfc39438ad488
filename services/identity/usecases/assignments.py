"""Assignments: which channel manager looks after which dealer for which product line,
the basis of a channel manager's scope. A hand-over moves them to a successor in one
change (also when the manager is deactivated)."""

from __future__ import annotations

from dataclasses import replace

from services.identity import messages
from services.identity.domain.model import (
    Assignment,
    AssignmentChange,
    AssignmentFilter,
    OrgUnit,
    User,
)
from services.identity.domain.rules import Role
from services.identity.usecases.access import (
    as_now,
    audit,
    require_admin,
    visibility,
    visible_dealers,
)
from services.identity.usecases.ports import IdentityUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import InvalidArgument, PermissionDenied
from shared.events.identity import ASSIGNMENT_CHANGED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest


async def _channel_manager(uow: IdentityUnitOfWork, user_id: str, field: str) -> User:
    manager = await uow.users.get(user_id) if user_id else None
    if manager is None or not manager.active or not manager.has_role(Role.CHANNEL_MANAGER):
        raise InvalidArgument.field(field, "must name an active channel manager")
    return manager


async def _assigning(uow: IdentityUnitOfWork, who: Principal,
                     dealer_ids: list[str]) -> list[OrgUnit]:
    """The dealers to (un)assign: each visible to ``who``, who must be an HQ admin or a
    region manager."""
    if not dealer_ids:
        raise InvalidArgument.field("dealer_ids", "at least one dealer")
    dealers = await visible_dealers(uow, who, dealer_ids)
    if not who.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
        raise PermissionDenied("only HQ admins and region managers assign dealers")
    return dealers


def _snapshots(assignments: list[Assignment]) -> list[dict]:
    return [assignment.snapshot() for assignment in assignments]


async def assign_dealers(manager_user_id: str, dealer_ids: list[str],
                         product_lines: list[str], reason: str, *, who: Principal,
                         uow: IdentityUnitOfWork, clock: Clock,
                         ids: IdSource) -> list[Assignment]:
    """Assign the dealers to the channel manager for the product lines (all the dealer
    carries when none are named). Returns every named assignment, new or held before."""
    async with uow:
        dealers = await _assigning(uow, who, dealer_ids)
        manager = await _channel_manager(uow, manager_user_id, "manager_user_id")
        result: list[Assignment] = []
        added: list[Assignment] = []
        for dealer in dealers:
            lines = tuple(dict.fromkeys(product_lines)) or dealer.product_lines
            for index, line in enumerate(lines):
                if line not in dealer.product_lines:
                    raise InvalidArgument.field(
                        f"product_lines[{index}]",
                        f"dealer {dealer.name} does not carry product line {line}")
                held = await uow.assignments.get((manager.id, dealer.id, line))
                if held is None:
                    held = Assignment(manager.id, dealer.id, line, clock.now(), who.subject)
                    await uow.assignments.add(held)
                    added.append(held)
                result.append(held)
        if added:
            await audit(uow, "assignment.assign", "assignment", manager.id, None,
                        {"added": _snapshots(added)}, reason, who=who, clock=clock, ids=ids)
            uow.events.record(ASSIGNMENT_CHANGED, messages.assignment_changed(
                AssignmentChange.ASSIGNED, added=added, to_manager_user_id=manager.id,
                reason=reason), manager.id)
        await uow.commit()
    return result


async def unassign_dealers(manager_user_id: str, dealer_ids: list[str],
                           product_lines: list[str], reason: str, *, who: Principal,
                           uow: IdentityUnitOfWork, clock: Clock,
                           ids: IdSource) -> list[Assignment]:
    """Remove the manager's assignments of the dealers (for the product lines, where
    named); returns those removed."""
    async with uow:
        dealers = await _assigning(uow, who, dealer_ids)
        removed = await uow.assignments.of_manager(
            manager_user_id, [dealer.id for dealer in dealers], product_lines)
        for assignment in removed:
            await uow.assignments.remove(assignment)
        if removed:
            await audit(uow, "assignment.unassign", "assignment", manager_user_id,
                        {"removed": _snapshots(removed)}, None, reason, who=who, clock=clock,
                        ids=ids)
            uow.events.record(ASSIGNMENT_CHANGED, messages.assignment_changed(
                AssignmentChange.UNASSIGNED, removed=removed,
                from_manager_user_id=manager_user_id, reason=reason), manager_user_id)
        await uow.commit()
    return removed


async def list_assignments(which: AssignmentFilter, page: PageRequest, *, who: Principal,
                           uow: IdentityUnitOfWork) -> Page[Assignment]:
    """The assignments (of those ``which`` selects) of the dealers ``who`` may see, and
    its own."""
    async with uow.read():
        now = await as_now(uow, who)
        seen = await visibility(uow, now)
        if not seen.everything:
            which = replace(which, dealer_ids=seen.dealer_ids, or_manager_user_id=now.user_id)
        return await uow.assignments.page(which, page)


async def transfer_assignments(from_manager_user_id: str, to_manager_user_id: str,
                               dealer_ids: list[str], product_lines: list[str], reason: str,
                               *, who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                               ids: IdSource) -> list[Assignment]:
    """Move a manager's assignments (of the dealers and product lines, where named) to
    another channel manager; HQ admins only."""
    async with uow:
        if dealer_ids:
            await visible_dealers(uow, who, dealer_ids)
        require_admin(who, "transfer assignments")
        source = await uow.users.get(from_manager_user_id) if from_manager_user_id else None
        if source is None:
            raise InvalidArgument.field("from_manager_user_id", "must name a user")
        moved = await hand_over(uow, source.id, to_manager_user_id, dealer_ids, product_lines,
                                reason, field="to_manager_user_id", who=who, clock=clock,
                                ids=ids)
        await uow.commit()
    return moved


async def hand_over(uow: IdentityUnitOfWork, from_id: str, to_id: str, dealer_ids: list[str],
                    product_lines: list[str], reason: str, *, field: str, who: Principal,
                    clock: Clock, ids: IdSource) -> list[Assignment]:
    """Inside the caller's unit of work: the assignments of ``from_id`` pass to the
    channel manager ``to_id`` (named in the request as ``field``). Returns them as the
    successor now holds them."""
    if to_id == from_id:
        raise InvalidArgument.field(field, "must name another user")
    successor = await _channel_manager(uow, to_id, field)
    held = await uow.assignments.of_manager(from_id, dealer_ids, product_lines)
    moved = [Assignment(successor.id, assignment.dealer_id, assignment.product_line,
                        clock.now(), who.subject) for assignment in held]
    for before, after in zip(held, moved, strict=True):
        await uow.assignments.remove(before)
        if await uow.assignments.get(after.key) is None:
            await uow.assignments.add(after)
    if held:
        await audit(uow, "assignment.transfer", "assignment", from_id,
                    {"manager_user_id": from_id, "assignments": _snapshots(held)},
                    {"manager_user_id": successor.id, "assignments": _snapshots(moved)},
                    reason, who=who, clock=clock, ids=ids)
        uow.events.record(ASSIGNMENT_CHANGED, messages.assignment_changed(
            AssignmentChange.TRANSFERRED, added=moved, removed=held, from_manager_user_id=from_id,
            to_manager_user_id=successor.id, reason=reason), from_id)
    return moved
