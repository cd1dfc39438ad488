"""Authorizations (授权): HQ's grant to a dealer to sell a product line or product to
a customer for a period, and the letter the dealer shows the hospital."""

from __future__ import annotations

from qudao.common.v1 import files_pb2
from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import select, update

from services.registration.adapters.letters import Letter, to_pdf, to_xlsx
from services.registration.adapters.orm import AuthorizationRow, DealerRow
from services.registration.domain.rules import AuthStatus, parse_day
from services.registration.usecases.common import (
    GRANTERS,
    PROTO_TO_AUTH,
    _new_id,
    _now,
    authorization_to_proto,
    page_args,
)
from services.registration.usecases.customers import CustomerUseCases
from services.registration.usecases.dealers import DealerUseCases
from shared.context import current_principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import AUTHORIZATION_GRANTED, AUTHORIZATION_REVOKED
from shared.pagination import decode_page_token


class AuthorizationUseCases(CustomerUseCases, DealerUseCases):
    async def grant(self, request: pb.GrantAuthorizationRequest) -> pb.Authorization:
        principal = current_principal()
        violations: list[FieldViolation] = []
        if request.dealer_id:
            (await self._scope("registration.approve")).require(request.dealer_id, "dealer")
        if not principal.has_role(*GRANTERS):
            raise PermissionDenied("channel managers and HQ admins grant authorizations")
        if not request.dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        if bool(request.product_line.strip()) == bool(request.product_code.strip()):
            violations.append(FieldViolation("product_line",
                                             "give exactly one of product_line and product_code"))
        if not request.customer_id:
            violations.append(FieldViolation("customer_id", "is required"))
        start = parse_day(request.valid_from, "valid_from", violations)
        end = parse_day(request.valid_to, "valid_to", violations)
        if not request.valid_from:
            violations.append(FieldViolation("valid_from", "is required"))
        if not request.valid_to:
            violations.append(FieldViolation("valid_to", "is required"))
        if start and end and end < start:
            violations.append(FieldViolation("valid_to", "must not be before valid_from"))
        today = _now().date()
        if end and end < today:
            violations.append(FieldViolation("valid_to", "is in the past"))
        collect(violations)
        scope = await self._scope("registration.approve")
        scope.require(request.dealer_id, "dealer")
        dealer = await self.dealer(request.dealer_id)
        if request.product_line and request.product_line.strip() not in dealer.product_lines:
            raise InvalidArgument.field("product_line", f"dealer {dealer.name} does not carry "
                                                        f"{request.product_line!r}")
        customer = await self._customer_or_404(request.customer_id)
        department = request.department.strip()
        if department and customer.departments and department not in customer.departments:
            raise InvalidArgument.field("department", f"{customer.name} has no department "
                                                      f"{department!r}")
        now = _now()
        grant_id = _new_id()
        async with self.db.write() as session:
            row = AuthorizationRow(
                id=grant_id, dealer_id=dealer.id, product_line=request.product_line.strip(),
                product_code=request.product_code.strip(), customer_id=customer.id,
                customer_name=customer.name, department=department,
                valid_from=start.isoformat(), valid_to=end.isoformat(),
                owner_user_id=request.owner_user_id or principal.user_id,
                status=AuthStatus.PENDING if start > today else AuthStatus.ACTIVE,
                granted_at=now, granted_by=principal.subject,
                letter_no=f"SQ-{today.year}-{grant_id[:8].upper()}")
            session.add(row)
            await session.flush()
            await self._event(session, AUTHORIZATION_GRANTED,
                              events_pb2.AuthorizationGranted(
                                  authorization=authorization_to_proto(row)), row.id)
        return authorization_to_proto(row)

    async def revoke(self, grant_id: str, reason: str) -> pb.Authorization:
        principal = current_principal()
        scope = await self._scope("registration.approve")
        now = _now()
        async with self.db.write() as session:
            row = await session.get(AuthorizationRow, grant_id)
            if row is None or not scope.allows(row.dealer_id):
                raise NotFound(f"authorization {grant_id} not found")
            if not principal.has_role(*GRANTERS):
                raise PermissionDenied("channel managers and HQ admins revoke authorizations")
            if not reason.strip():
                raise InvalidArgument.field("reason", "is required when revoking")
            result = await session.execute(
                update(AuthorizationRow).where(
                    AuthorizationRow.id == grant_id,
                    AuthorizationRow.status.in_([AuthStatus.PENDING, AuthStatus.ACTIVE]))
                .values(status=AuthStatus.REVOKED, revoked_at=now, revoked_by=principal.subject,
                        revoke_reason=reason.strip()))
            if result.rowcount != 1:
                raise FailedPrecondition(f"authorization {grant_id} is {row.status}",
                                         reason=f"ALREADY_{row.status.upper()}")
            await session.refresh(row)
            await self._event(session, AUTHORIZATION_REVOKED,
                              events_pb2.AuthorizationRevoked(
                                  authorization=authorization_to_proto(row),
                                  reason=reason.strip()), row.id)
        return authorization_to_proto(row)

    async def list_authorizations(self, request: pb.ListAuthorizationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        violations: list[FieldViolation] = []
        valid_on = parse_day(request.valid_on, "valid_on", violations)
        collect(violations)
        query = select(AuthorizationRow).order_by(AuthorizationRow.granted_at.desc(),
                                                  AuthorizationRow.id)
        if not scope.all_dealers:
            query = query.where(AuthorizationRow.dealer_id.in_(scope.dealer_ids))
        if request.dealer_id:
            query = query.where(AuthorizationRow.dealer_id == request.dealer_id)
        if request.customer_id:
            query = query.where(AuthorizationRow.customer_id == request.customer_id)
        if request.product_line:
            query = query.where(AuthorizationRow.product_line == request.product_line)
        if request.owner_user_id:
            query = query.where(AuthorizationRow.owner_user_id == request.owner_user_id)
        if request.statuses:
            query = query.where(AuthorizationRow.status.in_(
                [PROTO_TO_AUTH[s] for s in request.statuses if s in PROTO_TO_AUTH]))
        if valid_on:
            day = valid_on.isoformat()
            query = query.where(AuthorizationRow.valid_from <= day,
                                AuthorizationRow.valid_to >= day)
        return await self._page(query, decode_page_token(token), size, authorization_to_proto)

    async def export_letter(self, grant_id: str, export_format: int):
        scope = await self._scope("registration.read")
        async with self.db.read() as session:
            row = await session.get(AuthorizationRow, grant_id)
            dealer = await session.get(DealerRow, row.dealer_id) if row else None
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"authorization {grant_id} not found")
        if row.status not in (AuthStatus.ACTIVE, AuthStatus.PENDING):
            raise FailedPrecondition(f"authorization {grant_id} is {row.status}; no letter",
                                     reason="NOT_VALID")
        letter = Letter(letter_no=row.letter_no,
                        dealer_name=dealer.name if dealer else row.dealer_id,
                        customer_name=row.customer_name,
                        scope=row.product_line or f"产品 {row.product_code}",
                        department=row.department, valid_from=row.valid_from,
                        valid_to=row.valid_to, owner=row.owner_user_id,
                        issued_on=_now().date().isoformat())
        if export_format == files_pb2.EXPORT_FORMAT_XLSX:
            return files_pb2.ExportedFile(
                filename=f"授权书-{row.letter_no}.xlsx", content=to_xlsx(letter),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        if export_format not in (files_pb2.EXPORT_FORMAT_UNSPECIFIED, files_pb2.EXPORT_FORMAT_PDF):
            raise InvalidArgument.field("format", "PDF or XLSX")
        return files_pb2.ExportedFile(filename=f"授权书-{row.letter_no}.pdf",
                                      content_type="application/pdf", content=to_pdf(letter))
