"""Authorizations (授权): HQ's grant to a dealer to sell a product line or product to a
customer for a period, owned by a channel manager, and the letter the dealer shows the
hospital."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.authorizations import (
    Authorization,
    AuthorizationFilter,
    AuthorizationQuery,
    ExportedFile,
    ExportFormat,
    GrantInput,
    Letter,
)
from services.registration.domain.roles import GRANTERS
from services.registration.domain.rules import AuthStatus, parse_day
from services.registration.usecases.dealers import dealer_of
from services.registration.usecases.ports import Identity, Letters, RegistrationUnitOfWork
from shared.clock import Clock, today
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import AUTHORIZATION_GRANTED, AUTHORIZATION_REVOKED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIVE = (AuthStatus.PENDING, AuthStatus.ACTIVE)


async def grant(data: GrantInput, *, who: Principal, uow: RegistrationUnitOfWork,
                clock: Clock, ids: IdSource, scopes: Scopes,
                identity: Identity) -> Authorization:
    """A channel manager (or HQ) authorizes one of its dealers for a product line (or a
    product) at a customer, optionally one department, from one day to another; pending
    until its first day."""
    scope = await scopes.resolve(who, "registration.approve")
    if data.dealer_id:
        scope.require(data.dealer_id, "dealer")
    if not who.has_role(*GRANTERS):
        raise PermissionDenied("channel managers and HQ admins grant authorizations")
    violations: list[FieldViolation] = []
    if not data.dealer_id:
        violations.append(FieldViolation("dealer_id", "is required"))
    if bool(data.product_line.strip()) == bool(data.product_code.strip()):
        violations.append(FieldViolation("product_line",
                                         "give exactly one of product_line and product_code"))
    if not data.customer_id:
        violations.append(FieldViolation("customer_id", "is required"))
    start = parse_day(data.valid_from, "valid_from", violations)
    end = parse_day(data.valid_to, "valid_to", violations)
    if not data.valid_from:
        violations.append(FieldViolation("valid_from", "is required"))
    if not data.valid_to:
        violations.append(FieldViolation("valid_to", "is required"))
    if start and end and end < start:
        violations.append(FieldViolation("valid_to", "must not be before valid_from"))
    day = today(clock)
    if end and end < day:
        violations.append(FieldViolation("valid_to", "is in the past"))
    collect(violations)
    dealer = await dealer_of(data.dealer_id, uow=uow, identity=identity, clock=clock)
    product_line = data.product_line.strip()
    if product_line and product_line not in dealer.product_lines:
        raise InvalidArgument.field("product_line", f"dealer {dealer.name} does not carry "
                                                    f"{data.product_line!r}")
    async with uow.read():
        customer = await uow.customers.get(data.customer_id)
    if customer is None:
        raise NotFound(f"customer {data.customer_id} not found")
    department = data.department.strip()
    if department and customer.departments and department not in customer.departments:
        raise InvalidArgument.field("department", f"{customer.name} has no department "
                                                  f"{department!r}")
    grant_id = ids.new_id()
    authorization = Authorization(
        id=grant_id, dealer_id=dealer.id, product_line=product_line,
        product_code=data.product_code.strip(), customer_id=customer.id,
        customer_name=customer.name, department=department, valid_from=start.isoformat(),
        valid_to=end.isoformat(), owner_user_id=data.owner_user_id or who.user_id,
        status=AuthStatus.PENDING if start > day else AuthStatus.ACTIVE,
        granted_at=clock.now(), granted_by=who.subject,
        letter_no=f"SQ-{day.year}-{grant_id[:8].upper()}")
    async with uow:
        await uow.authorizations.add(authorization)
        uow.events.record(AUTHORIZATION_GRANTED, messages.authorization_granted(authorization),
                          authorization.id)
        await uow.commit()
    return authorization


async def revoke(grant_id: str, reason: str, *, who: Principal, uow: RegistrationUnitOfWork,
                 clock: Clock, scopes: Scopes) -> Authorization:
    """Ended before its last day, with the reason."""
    scope = await scopes.resolve(who, "registration.approve")
    async with uow:
        current = await uow.authorizations.get(grant_id, for_update=True)
        if current is None or not scope.allows(current.dealer_id):
            raise NotFound(f"authorization {grant_id} not found")
        if not who.has_role(*GRANTERS):
            raise PermissionDenied("channel managers and HQ admins revoke authorizations")
        if not reason.strip():
            raise InvalidArgument.field("reason", "is required when revoking")
        if current.status not in LIVE:
            raise FailedPrecondition(f"authorization {grant_id} is {current.status.value}",
                                     reason=f"ALREADY_{current.status.value.upper()}")
        revoked = replace(current, status=AuthStatus.REVOKED, revoked_at=clock.now(),
                          revoked_by=who.subject, revoke_reason=reason.strip())
        await uow.authorizations.save(revoked)
        uow.events.record(AUTHORIZATION_REVOKED, messages.authorization_revoked(revoked),
                          revoked.id)
        await uow.commit()
    return revoked


async def list_authorizations(query: AuthorizationQuery, page: PageRequest, *,
                              who: Principal, uow: RegistrationUnitOfWork,
                              scopes: Scopes) -> Page[Authorization]:
    """Newest first, within the viewer's scope: a dealer sees every grant it holds."""
    scope = await scopes.resolve(who, "registration.read")
    violations: list[FieldViolation] = []
    valid_on = parse_day(query.valid_on, "valid_on", violations)
    collect(violations)
    which = AuthorizationFilter(replace(query, valid_on=valid_on.isoformat() if valid_on
                                        else ""),
                                None if scope.all_dealers else scope.dealer_ids)
    async with uow.read():
        return await uow.authorizations.page(which, page)


async def export_letter(grant_id: str, export_format: ExportFormat | None, *, who: Principal,
                        uow: RegistrationUnitOfWork, clock: Clock, scopes: Scopes,
                        letters: Letters) -> ExportedFile:
    """The authorization letter (授权书) of a live grant, as PDF (default) or XLSX (None:
    a format the caller named that no letter comes in)."""
    scope = await scopes.resolve(who, "registration.read")
    async with uow.read():
        authorization = await uow.authorizations.get(grant_id)
        dealers = (await uow.dealers.names([authorization.dealer_id])
                   if authorization else {})
    if authorization is None or not scope.allows(authorization.dealer_id):
        raise NotFound(f"authorization {grant_id} not found")
    a = authorization
    if a.status not in LIVE:
        raise FailedPrecondition(f"authorization {grant_id} is {a.status.value}; no letter",
                                 reason="NOT_VALID")
    letter = Letter(letter_no=a.letter_no, dealer_name=dealers.get(a.dealer_id, a.dealer_id),
                    customer_name=a.customer_name,
                    scope=a.product_line or f"产品 {a.product_code}", department=a.department,
                    valid_from=a.valid_from, valid_to=a.valid_to, owner=a.owner_user_id,
                    issued_on=today(clock).isoformat())
    if export_format == ExportFormat.XLSX:
        return ExportedFile(f"授权书-{a.letter_no}.xlsx", XLSX, letters.to_xlsx(letter))
    if export_format not in (ExportFormat.DEFAULT, ExportFormat.PDF):
        raise InvalidArgument.field("format", "PDF or XLSX")
    return ExportedFile(f"授权书-{a.letter_no}.pdf", "application/pdf", letters.to_pdf(letter))
