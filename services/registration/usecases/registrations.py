"""Registrations (报备): a dealer claims a customer for a product line, first come first
protected. The store holds one active claim per customer and product line, so a
concurrent loser is recorded with the winner's evidence instead of slipping through.
Decisions, recall and renewal read the registration under a row lock and check its
state, so two deciders (or two replicas) cannot both win."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from services.registration import messages
from services.registration.domain.customers import Customer, CustomerValues, DuplicateCheck
from services.registration.domain.registrations import (
    AlreadyStored,
    Note,
    Registration,
    RegistrationFilter,
    RegistrationQuery,
    Renewed,
    RequestRepeated,
    SlotTaken,
    Source,
    SubmitRegistration,
    Submitted,
)
from services.registration.domain.roles import APPROVERS, HQ_DECIDERS, RECALLERS
from services.registration.domain.rules import (
    PENDING,
    DealerView,
    Policy,
    Status,
    can_auto_approve,
    territory_violation,
)
from services.registration.usecases.conflicts import open_conflict
from services.registration.usecases.customers import (
    add_customer,
    evidence,
    find_matches,
    prepare_customer,
    remember,
    target_customer,
)
from services.registration.usecases.dealers import dealer_of
from services.registration.usecases.notices import (
    announce_approved,
    announce_recalled,
    announce_rejected,
)
from services.registration.usecases.ports import (
    Identity,
    Names,
    Places,
    RegistrationUnitOfWork,
)
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import REGISTRATION_RENEWED, REGISTRATION_SUBMITTED
from shared.ids import IdSource
from shared.names.matching import Match, MatchKind, Verdict, verdict_of
from shared.pagination import Page, PageRequest
from shared.scope import Scope, Scopes

# Concurrent submissions that create the same new customer (or open the same conflict)
# make all but one go again; by then it is an exact duplicate.
ATTEMPTS = 6


async def submit_registration(cmd: SubmitRegistration, *, who: Principal,
                              uow: RegistrationUnitOfWork, clock: Clock, ids: IdSource,
                              scopes: Scopes, identity: Identity, names: Names,
                              places: Places, policy: Policy) -> Submitted:
    """Register a customer (known, or new and created with it) for the dealer: inside
    its territory and product lines; approved at once when the policy says so and
    nothing competes; sent to HQ review when a new customer looks like a known one;
    and when another dealer holds the customer, recorded as lost with its evidence."""
    dealer_id = cmd.dealer_id.strip() or who.dealer_id
    product_line = cmd.product_line.strip()
    violations = []
    if not dealer_id:
        violations.append(FieldViolation("dealer_id", "is required"))
    if not product_line:
        violations.append(FieldViolation("product_line", "is required"))
    if not cmd.customer_id and cmd.new_customer is None:
        violations.append(FieldViolation("customer_id", "give customer_id or new_customer"))
    if len(cmd.client_request_id) > 64:
        violations.append(FieldViolation("client_request_id", "at most 64 characters"))
    collect(violations)
    viewer = await scopes.resolve(who, "registration.submit")
    viewer.require(dealer_id)
    if cmd.client_request_id:
        async with uow.read():
            existing = await uow.registrations.by_request(dealer_id, cmd.client_request_id)
        if existing is not None:
            return Submitted(existing.seen_by(viewer))
    dealer = await dealer_of(dealer_id, uow=uow, identity=identity, clock=clock)
    if not dealer.active:
        raise FailedPrecondition(f"dealer {dealer.name} is not active", reason="DEALER_INACTIVE")
    values = (prepare_customer(cmd.new_customer, "new_customer", places)
              if cmd.new_customer is not None else None)
    if product_line not in dealer.product_lines:
        problem = territory_violation(dealer, "", product_line)
        raise InvalidArgument(problem.description, violations=[problem],
                              reason="PRODUCT_LINE_NOT_CARRIED")
    attempt = _Attempt(cmd, who, dealer, product_line, values, uow=uow, clock=clock, ids=ids,
                       names=names, policy=policy)
    for _ in range(ATTEMPTS):
        try:
            try:
                submitted = await attempt.win()
            except SlotTaken:
                submitted = await attempt.lose()
        except RequestRepeated:
            async with uow.read():
                existing = await uow.registrations.by_request(dealer.id, cmd.client_request_id)
            if existing is not None:
                return Submitted(existing.seen_by(viewer))
        except AlreadyStored:
            continue
        else:
            return replace(submitted, registration=submitted.registration.seen_by(viewer))
    raise FailedPrecondition("concurrent changes kept this registration from being stored; "
                             "submit again", reason="CONCURRENT_CHANGE")


class _Attempt:
    """One try at storing a submission: as the slot's holder (``win``) or, when another
    registration holds it, as the loser with the winner's evidence (``lose``)."""

    def __init__(self, cmd: SubmitRegistration, who: Principal, dealer: DealerView,
                 product_line: str, values: CustomerValues | None, *,
                 uow: RegistrationUnitOfWork, clock: Clock, ids: IdSource, names: Names,
                 policy: Policy) -> None:
        self.cmd, self.who, self.dealer, self.product_line = cmd, who, dealer, product_line
        self.values = values
        self.uow, self.clock, self.ids, self.names, self.policy = uow, clock, ids, names, policy

    async def _customer(self) -> tuple[Customer, bool, list[Match]]:
        return await target_customer(self.uow, self.cmd.customer_id, self.values,
                                     who=self.who, clock=self.clock, ids=self.ids,
                                     names=self.names, policy=self.policy)

    async def _matches(self, customer: Customer) -> list[Match]:
        return await find_matches(self.uow, self.names, self.policy, customer.name_query())

    def _registration(self, customer: Customer, status: Status, holds_slot: bool,
                      check: DuplicateCheck, now: datetime) -> Registration:
        return Registration(
            id=self.ids.new_id(), customer_id=customer.id, customer_name=customer.name,
            dealer_id=self.dealer.id, region_code=self.dealer.region_code,
            product_line=self.product_line, status=status, holds_slot=holds_slot,
            source=Source.DEALER_SOURCED, client_request_id=self.cmd.client_request_id,
            submitted_at=now, submitted_by=self.who.subject,
            approver_user_id=self.dealer.managers.get(self.product_line, ""),
            stage=self.policy.stages[0], department=self.cmd.department.strip(),
            evidence=check, updated_at=now)

    async def win(self) -> Submitted:
        uow, now = self.uow, self.clock.now()
        async with uow:
            customer, is_new, fuzzy = await self._customer()
            problem = territory_violation(self.dealer, customer.division_code,
                                          self.product_line)
            if problem is not None:
                raise FailedPrecondition(problem.description, violations=[problem],
                                         reason="OUTSIDE_TERRITORY")
            if is_new:
                await add_customer(uow, customer)
            # Evidence: the customer itself and its look-alikes, with their claims (a new
            # customer is not evidence about itself).
            matches = await self._matches(customer)
            others = [m for m in matches if m.customer_id != customer.id]
            found = await evidence(uow, others if is_new else matches, self.product_line)
            review = is_new and bool(fuzzy)
            clean = not review and not any(c.claims for c in found)
            auto = not review and can_auto_approve(self.policy, clean=clean)
            status = (Status.UNDER_REVIEW if review
                      else Status.APPROVED if auto else Status.SUBMITTED)
            registration = self._registration(
                customer, status, True, DuplicateCheck(verdict_of(others), found,
                                                       customer.normalized_name,
                                                       customer.division_code), now)
            if auto:
                registration = replace(
                    registration, decided_at=now, approved_at=now, decided_by="system",
                    decision_note="auto-approved: inside territory, no duplicate or claim",
                    protected_until=self.policy.protected_until(now))
            await uow.registrations.add(registration)
            if note := self.cmd.note.strip():
                await uow.notes.add(Note(self.ids.new_id(), registration.id, note,
                                         registration.stage, now, self.who.subject))
            if review:
                registration = await open_conflict(uow, registration, others, clock=self.clock,
                                                   ids=self.ids)
            uow.events.record(REGISTRATION_SUBMITTED,
                              messages.registration_submitted(registration), registration.id)
            if auto:
                announce_approved(uow, registration, auto=True)
            await uow.commit()
        if is_new:
            remember(self.names, [customer])
        return Submitted(registration, auto)

    async def lose(self) -> Submitted:
        """Rejected when the winner is approved (first come, protected); in the HQ
        conflict queue while the winner is pending."""
        uow, now = self.uow, self.clock.now()
        async with uow:
            customer, _, _ = await self._customer()
            winner = await uow.registrations.holder(customer.id, self.product_line)
            if winner is None:
                raise FailedPrecondition("the competing registration changed meanwhile; "
                                         "submit again", reason="RETRY")
            if winner.dealer_id == self.dealer.id:
                raise AlreadyExists(
                    f"your dealer already holds registration {winner.id} for "
                    f"{customer.name} ({self.product_line})", reason="ALREADY_REGISTERED",
                    metadata={"registration_id": winner.id, "status": winner.status.value})
            found = await evidence(uow, await self._matches(customer), self.product_line)
            approved = winner.status == Status.APPROVED
            check = DuplicateCheck(Verdict.DUPLICATE, found, customer.normalized_name,
                                   customer.division_code)
            registration = self._registration(
                customer, Status.REJECTED if approved else Status.UNDER_REVIEW, False, check,
                now)
            if approved:
                until = winner.protected_until
                registration = replace(
                    registration, decided_at=now, decided_by="system",
                    decision_note=f"protected by registration {winner.id} until "
                                  f"{until.date().isoformat() if until else '?'} (first come)")
            await uow.registrations.add(registration)
            if not approved:
                registration = await open_conflict(
                    uow, registration, [Match(customer.id, MatchKind.CREDIT_CODE, 10000)],
                    clock=self.clock, ids=self.ids)
            uow.events.record(REGISTRATION_SUBMITTED,
                              messages.registration_submitted(registration), registration.id)
            if approved:
                announce_rejected(uow, registration, f"{customer.name}（{self.product_line}）"
                                                     "已由其他经销商报备并受保护")
            await uow.commit()
        return Submitted(registration)


async def _load(uow: RegistrationUnitOfWork, registration_id: str, scope: Scope, *,
                for_update: bool = False) -> Registration:
    """The registration, if the scope covers its dealer: NOT_FOUND otherwise, as if it did
    not exist."""
    registration = await uow.registrations.get(registration_id, for_update=for_update)
    if registration is None or not scope.allows(registration.dealer_id):
        raise NotFound(f"registration {registration_id} not found")
    return registration


async def get_registration(registration_id: str, *, who: Principal,
                           uow: RegistrationUnitOfWork, scopes: Scopes) -> Registration:
    scope = await scopes.resolve(who, "registration.read")
    async with uow.read():
        registration = await _load(uow, registration_id, scope)
    return registration.seen_by(scope)


async def _decide(registration_id: str, verb: str, change: Callable[[Registration], Registration],
                  *, action: str, roles: tuple[str, ...], who: Principal,
                  uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes) -> Registration:
    """Approve, reject or recall a pending registration."""
    scope = await scopes.resolve(who, action)
    async with uow:
        current = await _load(uow, registration_id, scope, for_update=True)
        if not who.has_role(*roles):
            raise PermissionDenied(f"{verb} needs one of the roles {', '.join(roles)}")
        if current.status not in PENDING:
            status = current.status.value
            raise FailedPrecondition(f"registration {current.id} is {status}; cannot {verb} it",
                                     reason=f"ALREADY_{status.upper()}",
                                     metadata={"status": status})
        decided = replace(change(current), updated_at=clock.now())
        try:
            await uow.registrations.save(decided)
        except SlotTaken:
            raise FailedPrecondition(
                f"another registration holds {current.customer_name} ({current.product_line}); "
                "resolve it in the conflict queue", reason="CUSTOMER_HELD") from None
        {"approve": announce_approved, "reject": announce_rejected,
         "recall": announce_recalled}[verb](uow, decided)
        await uow.commit()
    return decided.seen_by(await scopes.resolve(who, "registration.read"))


async def approve(registration_id: str, comment: str, *, who: Principal,
                  uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes,
                  policy: Policy) -> Registration:
    """The channel manager (or HQ) approves: the dealer is protected for the period. A
    registration under HQ review is HQ's to decide."""
    now = clock.now()

    def change(current: Registration) -> Registration:
        if current.status == Status.UNDER_REVIEW and not who.has_role(*HQ_DECIDERS):
            raise FailedPrecondition("this registration is under HQ review (conflict "
                                     f"{current.conflict_id}); HQ decides it",
                                     reason="UNDER_REVIEW")
        return replace(current, status=Status.APPROVED, holds_slot=True, decided_at=now,
                       approved_at=now, decided_by=who.subject, decision_note=comment.strip(),
                       protected_until=policy.protected_until(now))

    return await _decide(registration_id, "approve", change, action="registration.approve",
                         roles=APPROVERS, who=who, uow=uow, clock=clock, scopes=scopes)


def _ended(status: Status, note: str, *, who: Principal,
           clock: Clock) -> Callable[[Registration], Registration]:
    """The change that ends a pending registration (rejected, recalled): the slot is
    free again."""
    now = clock.now()
    return lambda current: replace(current, status=status, holds_slot=False, decided_at=now,
                                   decided_by=who.subject, decision_note=note.strip())


async def reject(registration_id: str, reason: str, *, who: Principal,
                 uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes) -> Registration:
    if not reason.strip():
        raise InvalidArgument.field("reason", "is required when rejecting")
    return await _decide(registration_id, "reject",
                         _ended(Status.REJECTED, reason, who=who, clock=clock),
                         action="registration.approve", roles=APPROVERS, who=who, uow=uow,
                         clock=clock, scopes=scopes)


async def recall(registration_id: str, reason: str, *, who: Principal,
                 uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes) -> Registration:
    """The dealer withdraws a pending registration (to correct and submit it again)."""
    return await _decide(registration_id, "recall",
                         _ended(Status.RECALLED, reason, who=who, clock=clock),
                         action="registration.submit", roles=RECALLERS, who=who, uow=uow,
                         clock=clock, scopes=scopes)


async def renew(registration_id: str, reason: str, *, who: Principal,
                uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes,
                policy: Policy) -> Renewed:
    """A manager extends the protection (dealers renew by moving the pipeline)."""
    scope = await scopes.resolve(who, "registration.approve")
    async with uow:
        current = await _load(uow, registration_id, scope, for_update=True)
        if not who.has_role(*APPROVERS):
            raise PermissionDenied("channel managers and HQ renew protection; dealers "
                                   "renew by moving the pipeline forward")
        renewed = await renew_protection(uow, current, clock=clock, policy=policy)
        await uow.commit()
    viewer = await scopes.resolve(who, "registration.read")
    return Renewed(renewed.seen_by(viewer), current.protected_until)


async def renew_protection(uow: RegistrationUnitOfWork, registration: Registration, *,
                           clock: Clock, policy: Policy) -> Registration:
    """A full protection period from now (never shorter than what is left)."""
    if registration.status != Status.APPROVED:
        raise FailedPrecondition(f"registration {registration.id} is "
                                 f"{registration.status.value}; only approved registrations "
                                 "are renewed", reason="INVALID_STATE")
    now = clock.now()
    renewed = replace(registration,
                      protected_until=policy.renewed_until(registration.protected_until, now),
                      renewal_count=registration.renewal_count + 1, updated_at=now)
    await uow.registrations.save(renewed)
    uow.events.record(REGISTRATION_RENEWED,
                      messages.registration_renewed(renewed, registration.protected_until),
                      renewed.id)
    return renewed


def _dealers(scope: Scope) -> frozenset[str] | None:
    return None if scope.all_dealers else scope.dealer_ids


async def list_registrations(query: RegistrationQuery, page: PageRequest, *, who: Principal,
                             uow: RegistrationUnitOfWork,
                             scopes: Scopes) -> Page[Registration]:
    """Newest first, within the viewer's scope."""
    scope = await scopes.resolve(who, "registration.read")
    async with uow.read():
        found = await uow.registrations.page(RegistrationFilter(_dealers(scope), query), page)
    return found.map(lambda r: r.seen_by(scope))


async def list_expiring(dealer_id: str, within_days: int, page: PageRequest, *,
                        who: Principal, uow: RegistrationUnitOfWork, clock: Clock,
                        scopes: Scopes, policy: Policy) -> Page[Registration]:
    """Approved registrations whose protection ends within the days (the policy's default
    when 0), soonest first."""
    scope = await scopes.resolve(who, "registration.read")
    if within_days < 0:
        raise InvalidArgument.field("within_days", "must not be negative")
    horizon = clock.now() + timedelta(days=within_days or policy.expiring_within_days)
    which = RegistrationFilter(_dealers(scope), RegistrationQuery(dealer_id=dealer_id),
                               protected_by=horizon)
    async with uow.read():
        found = await uow.registrations.page(which, page)
    return found.map(lambda r: r.seen_by(scope))
