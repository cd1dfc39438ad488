"""The HQ conflict queue: when a registration's customer may be another dealer's (a
look-alike, or a slot still pending), no channel manager decides it; HQ picks the
winner, and every dealer involved is told."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.registrations import (
    Conflict,
    ConflictFilter,
    ConflictQuery,
    ConflictStatus,
    ConflictView,
    Notice,
    Registration,
    SlotTaken,
)
from services.registration.domain.roles import HQ_DECIDERS
from services.registration.domain.rules import PENDING, Policy, Status
from services.registration.usecases.aliases import merge_into
from services.registration.usecases.customers import remember
from services.registration.usecases.notices import (
    announce_approved,
    announce_rejected,
    notify,
)
from services.registration.usecases.ports import Names, RegistrationUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import CONFLICT_RAISED, CONFLICT_RESOLVED
from shared.ids import IdSource
from shared.names.matching import Match
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def open_conflict(uow: RegistrationUnitOfWork, registration: Registration,
                        others: list[Match], *, clock: Clock, ids: IdSource) -> Registration:
    """Raise (or join) the HQ review of a registration with the registrations holding its
    customer or its look-alikes (``others``) for the product line. Returns the
    registration as part of the conflict. ``AlreadyStored`` when a concurrent
    submission opened the slot's conflict first (going again joins it)."""
    conflict = await uow.conflicts.open_on(registration.customer_id, registration.product_line)
    if conflict is None:
        conflict = Conflict(ids.new_id(), registration.customer_id, registration.product_line,
                            ConflictStatus.OPEN, raised_at=clock.now())
        await uow.conflicts.add(conflict)
    registration = replace(registration, conflict_id=conflict.id)
    await uow.registrations.save(registration)
    dealers = {registration.dealer_id}
    if others:
        customers = [*(m.customer_id for m in others), registration.customer_id]
        for other in await uow.registrations.holders(customers, registration.product_line):
            if other.id != registration.id:
                await uow.registrations.save(replace(other, conflict_id=conflict.id))
                dealers.add(other.dealer_id)
    claims = tuple(await uow.registrations.in_conflict(conflict.id))
    uow.events.record(CONFLICT_RAISED, messages.conflict_raised(ConflictView(conflict, claims)),
                      conflict.id)
    for dealer_id in sorted(dealers):
        notify(uow, Notice(dealer_id, "conflict.raised",
                           f"{registration.customer_name}（{registration.product_line}）的报备存在冲突，"
                           "已提交总部裁决", registration_id=registration.id,
                           conflict_id=conflict.id))
    return registration


def _require_hq(who: Principal) -> None:
    if not who.has_role(*HQ_DECIDERS):
        raise PermissionDenied("the conflict queue is for HQ (hq_admin, region_manager)")


async def list_conflicts(query: ConflictQuery, page: PageRequest, *, who: Principal,
                         uow: RegistrationUnitOfWork, scopes: Scopes) -> Page[ConflictView]:
    """Newest first; a region manager sees the conflicts involving its dealers."""
    _require_hq(who)
    scope = await scopes.resolve(who, "registration.read")
    which = ConflictFilter(query, None if scope.all_dealers else scope.dealer_ids)
    async with uow.read():
        found = await uow.conflicts.page(which, page)
        views = [ConflictView(c, tuple(await uow.registrations.in_conflict(c.id)))
                 for c in found.items]
    return Page(views, found.next_token, found.total)


async def resolve_conflict(conflict_id: str, winner_id: str, note: str, *,
                           same_customer: bool = False, who: Principal,
                           uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes,
                           names: Names, policy: Policy) -> ConflictView:
    """HQ picks the winning claim: it is approved (and protected), the pending claims and
    a competing approval on the same customer are rejected, every dealer is told. When
    HQ says the claims' customers are the same (``same_customer``), the losers'
    customers are merged into the winner's and their spellings kept as its aliases, so
    the duplicate check knows them next time."""
    scope = await scopes.resolve(who, "registration.approve")
    now = clock.now()
    async with uow:
        conflict = await uow.conflicts.get(conflict_id, for_update=True)
        claims = [] if conflict is None else await uow.registrations.in_conflict(conflict_id)
        if conflict is None or not (scope.all_dealers
                                    or any(scope.allows(c.dealer_id) for c in claims)):
            raise NotFound(f"conflict {conflict_id} not found")
        _require_hq(who)
        note = note.strip()
        violations: list[FieldViolation] = []
        if not winner_id:
            violations.append(FieldViolation("winning_registration_id", "is required"))
        if not note:
            violations.append(FieldViolation("note", "is required; both dealers see it"))
        collect(violations)
        if conflict.status != ConflictStatus.OPEN:
            raise FailedPrecondition(f"conflict {conflict_id} is already resolved",
                                     reason="ALREADY_RESOLVED")
        winner = next((c for c in claims if c.id == winner_id), None)
        if winner is None:
            raise InvalidArgument.field("winning_registration_id",
                                        f"{winner_id} is not a claim of this conflict")
        resolved = replace(conflict, status=ConflictStatus.RESOLVED, resolved_at=now,
                           resolved_by=who.subject, winning_registration_id=winner_id,
                           resolution_note=note)
        await uow.conflicts.save(resolved)
        decision = dict(decided_at=now, decided_by=who.subject,
                        decision_note=f"HQ conflict decision: {note}", updated_at=now,
                        conflict_id="")
        final: dict[str, Registration] = {}
        rejected: list[Registration] = []
        # The losers first: they give up the winner's slot before it takes it.
        for claim in claims:
            if claim.id == winner.id:
                continue
            same_slot = claim.customer_id == winner.customer_id
            if claim.status in PENDING or (same_slot and claim.status == Status.APPROVED):
                final[claim.id] = replace(claim, status=Status.REJECTED, holds_slot=False,
                                          **decision)
                rejected.append(final[claim.id])
            else:
                final[claim.id] = replace(claim, conflict_id="")
            await uow.registrations.save(final[claim.id])
        approved = winner.status != Status.APPROVED
        final[winner.id] = (replace(winner, status=Status.APPROVED, holds_slot=True,
                                    approved_at=now,
                                    protected_until=policy.protected_until(now), **decision)
                            if approved else replace(winner, conflict_id=""))
        try:
            await uow.registrations.save(final[winner.id])
        except SlotTaken:
            raise FailedPrecondition(
                f"a registration outside this conflict holds {winner.customer_name} "
                f"({winner.product_line}) now", reason="CUSTOMER_HELD") from None
        for registration in rejected:
            announce_rejected(uow, registration)
        if approved:
            announce_approved(uow, final[winner.id])
        merged: list[str] = []
        kept = None
        if same_customer:
            kept = await uow.customers.get(winner.customer_id)
            for customer_id in dict.fromkeys(c.customer_id for c in claims):
                if customer_id != kept.id:
                    kept = await merge_into(uow, kept, await uow.customers.get(customer_id),
                                            "conflict", now)
                    merged.append(customer_id)
            final = {key: replace(r, customer_id=kept.id, customer_name=kept.name)
                     if r.customer_id in merged else r for key, r in final.items()}
        view = ConflictView(resolved, tuple(final[c.id] for c in claims))
        uow.events.record(CONFLICT_RESOLVED, messages.conflict_resolved(view), conflict_id)
        for dealer_id in sorted({c.dealer_id for c in claims}):
            won = dealer_id == winner.dealer_id
            notify(uow, Notice(
                dealer_id, "conflict.resolved",
                f"总部裁决 {winner.customer_name}（{winner.product_line}）："
                f"{'您的报备胜出' if won else '归属其他经销商'}。{note}",
                conflict_id=conflict_id,
                registration_id=next(c.id for c in claims if c.dealer_id == dealer_id)))
        await uow.commit()
    for customer_id in merged:
        names.remove(customer_id)
    if kept is not None:
        remember(names, [kept])
    return view
