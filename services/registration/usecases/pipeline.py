"""The sales pipeline of an approved registration: moving it to a later stage shows the
dealer is working the customer and renews the protection; notes record each step; the
funnel counts registrations per stage for the managers."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.registrations import (
    AddNote,
    AdvanceStage,
    Funnel,
    FunnelDimension,
    FunnelFilter,
    FunnelGroup,
    FunnelQuery,
    Note,
    Registration,
)
from services.registration.domain.roles import PIPELINE
from services.registration.domain.rules import Policy, Status, parse_day
from services.registration.usecases.ports import RegistrationUnitOfWork
from services.registration.usecases.registrations import renew_protection
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
from shared.events.registration import REGISTRATION_NOTE_ADDED, REGISTRATION_STAGE_ADVANCED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scope, Scopes


async def _worked(uow: RegistrationUnitOfWork, registration_id: str, scope: Scope,
                  who: Principal) -> Registration:
    """A registration the viewer works (the dealer's staff and its managers)."""
    registration = await uow.registrations.get(registration_id, for_update=True)
    if registration is None or not scope.allows(registration.dealer_id):
        raise NotFound(f"registration {registration_id} not found")
    if not who.has_role(*PIPELINE):
        raise PermissionDenied("the pipeline is worked by the dealer and its managers")
    return registration


async def advance_stage(cmd: AdvanceStage, *, who: Principal, uow: RegistrationUnitOfWork,
                        clock: Clock, ids: IdSource, scopes: Scopes,
                        policy: Policy) -> Registration:
    """Forward only; each move renews the protection and may note the next step."""
    target = cmd.stage.strip()
    if policy.stage_index(target) < 0:
        raise InvalidArgument.field("stage", f"{target!r} is not a stage; stages are "
                                             f"{', '.join(policy.stages)}")
    scope = await scopes.resolve(who, "registration.submit")
    async with uow:
        current = await _worked(uow, cmd.registration_id, scope, who)
        if current.status != Status.APPROVED:
            raise FailedPrecondition(f"registration {current.id} is {current.status.value}; "
                                     "only approved registrations move along the pipeline",
                                     reason="INVALID_STATE")
        if policy.stage_index(target) <= policy.stage_index(current.stage):
            raise InvalidArgument.field("stage", f"{target} is not after the current stage "
                                                 f"{current.stage}")
        now = clock.now()
        moved = replace(current, stage=target, next_step=cmd.next_step.strip()
                        or current.next_step, updated_at=now)
        await uow.registrations.save(moved)
        if cmd.note.strip() or cmd.next_step.strip():
            await uow.notes.add(Note(ids.new_id(), moved.id, cmd.note.strip() or f"→ {target}",
                                     target, now, who.subject,
                                     next_step=cmd.next_step.strip()))
        uow.events.record(REGISTRATION_STAGE_ADVANCED,
                          messages.stage_advanced(moved, current.stage), moved.id)
        renewed = await renew_protection(uow, moved, clock=clock, policy=policy)
        await uow.commit()
    return renewed.seen_by(await scopes.resolve(who, "registration.read"))


async def add_note(cmd: AddNote, *, who: Principal, uow: RegistrationUnitOfWork, clock: Clock,
                   ids: IdSource, scopes: Scopes) -> Note:
    """A follow-up (visit, call) on a registration, optionally with the next step."""
    violations: list[FieldViolation] = []
    if not cmd.text.strip():
        violations.append(FieldViolation("text", "is required"))
    parse_day(cmd.next_step_due, "next_step_due", violations)
    collect(violations)
    scope = await scopes.resolve(who, "registration.submit")
    async with uow:
        registration = await _worked(uow, cmd.registration_id, scope, who)
        now = clock.now()
        note = Note(ids.new_id(), registration.id, cmd.text.strip(), registration.stage, now,
                    who.subject, next_step=cmd.next_step.strip(),
                    next_step_due=cmd.next_step_due)
        await uow.notes.add(note)
        if note.next_step:
            registration = replace(registration, next_step=note.next_step, updated_at=now)
            await uow.registrations.save(registration)
        uow.events.record(REGISTRATION_NOTE_ADDED,
                          messages.note_added(note, registration.next_step), registration.id)
        await uow.commit()
    return note


async def list_notes(registration_id: str, page: PageRequest, *, who: Principal,
                     uow: RegistrationUnitOfWork, scopes: Scopes) -> Page[Note]:
    """Newest first."""
    scope = await scopes.resolve(who, "registration.read")
    async with uow.read():
        registration = await uow.registrations.get(registration_id)
        if registration is None or not scope.allows(registration.dealer_id):
            raise NotFound(f"registration {registration_id} not found")
        return await uow.notes.page(registration_id, page)


async def funnel(query: FunnelQuery, *, who: Principal, uow: RegistrationUnitOfWork,
                 scopes: Scopes, policy: Policy) -> Funnel:
    """Approved registrations per stage, grouped by region, dealer or product line (or
    the whole scope), within the viewer's scope."""
    scope = await scopes.resolve(who, "registration.read")
    violations: list[FieldViolation] = []
    start = parse_day(query.approved_from, "approved_from", violations)
    end = parse_day(query.approved_to, "approved_to", violations)
    collect(violations)
    which = FunnelFilter(query.group_by, None if scope.all_dealers else scope.dealer_ids,
                         region_code=query.region_code, dealer_id=query.dealer_id,
                         product_line=query.product_line, approved_from=start,
                         approved_to=end)
    async with uow.read():
        counts = await uow.registrations.stage_counts(which)
        labels = {}
        if query.group_by == FunnelDimension.DEALER:
            labels = await uow.dealers.names({c.key for c in counts})
    groups: dict[str, dict[str, int]] = {}
    for count in counts:
        groups.setdefault(count.key, {})[count.stage] = count.count
    return Funnel(policy.stages, tuple(
        FunnelGroup(key, labels.get(key, key or "全部"),
                    tuple((stage, groups[key].get(stage, 0)) for stage in policy.stages))
        for key in sorted(groups)))
