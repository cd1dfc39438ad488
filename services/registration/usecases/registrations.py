"""Registrations (报备): a dealer claims a customer for a product line, first come
first protected. The database holds one active claim per customer and product line, so
a concurrent loser is recorded with the winner's evidence instead of slipping through.
Decisions, recall, renewal and the expiring list change state with conditional updates,
so two deciders cannot both win."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.registration.adapters.orm import NoteRow, RegistrationRow
from services.registration.domain.rules import (
    PENDING,
    DealerView,
    Status,
    active_key,
    territory_violation,
)
from services.registration.usecases.common import (
    APPROVERS,
    DEALER_SOURCED,
    HQ_DECIDERS,
    PROTO_TO_STATUS,
    RECALLERS,
    VERDICT_TO_PROTO,
    _aware,
    _new_id,
    _now,
    _set_ts,
    page_args,
    registration_to_proto,
)
from services.registration.usecases.conflicts import ConflictUseCases
from services.registration.usecases.customers import CustomerUseCases
from services.registration.usecases.dealers import DealerUseCases
from shared.context import Principal, current_principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import (
    REGISTRATION_APPROVED,
    REGISTRATION_REJECTED,
    REGISTRATION_RENEWED,
    REGISTRATION_SUBMITTED,
)
from shared.names.matching import Match, MatchKind, verdict_of
from shared.pagination import decode_page_token
from shared.scope import Scope


class RegistrationUseCases(CustomerUseCases, DealerUseCases, ConflictUseCases):
    async def submit_registration(self, request: pb.SubmitRegistrationRequest
                                  ) -> pb.SubmitRegistrationResponse:
        principal = current_principal()
        dealer_id = request.dealer_id.strip() or principal.dealer_id
        violations = []
        if not dealer_id:
            violations.append(FieldViolation("dealer_id", "is required"))
        product_line = request.product_line.strip()
        if not product_line:
            violations.append(FieldViolation("product_line", "is required"))
        which = request.WhichOneof("customer")
        if which is None:
            violations.append(FieldViolation("customer_id", "give customer_id or new_customer"))
        if len(request.client_request_id) > 64:
            violations.append(FieldViolation("client_request_id", "at most 64 characters"))
        collect(violations)
        scope = await self._scope("registration.submit")
        scope.require(dealer_id)
        if request.client_request_id:
            existing = await self._by_request_id(dealer_id, request.client_request_id)
            if existing is not None:
                return pb.SubmitRegistrationResponse(
                    registration=registration_to_proto(existing, scope))
        dealer = await self.dealer(dealer_id)
        if not dealer.active:
            raise FailedPrecondition(f"dealer {dealer.name} is not active",
                                     reason="DEALER_INACTIVE")
        prepared = (self.prepare_customer(request.new_customer, "new_customer")
                    if which == "new_customer" else None)
        if product_line not in dealer.product_lines:
            problem = territory_violation(dealer, "", product_line)
            raise InvalidArgument(problem.description, violations=[problem],
                                  reason="PRODUCT_LINE_NOT_CARRIED")
        attempts = 6
        for attempt in range(attempts):
            try:
                try:
                    return await self._submit_once(request, principal, dealer, product_line,
                                                   prepared, scope)
                except IntegrityError as exc:
                    text = str(exc.orig if exc.orig is not None else exc).lower()
                    if "active_key" not in text:
                        raise
                # The database let another registration take the slot first: this one
                # loses, with the winner's evidence. (Two losers opening the same
                # conflict at once: the second joins it on the next attempt.)
                return await self._lose(request, principal, dealer, product_line, prepared,
                                        scope)
            except IntegrityError as exc:
                text = str(exc.orig if exc.orig is not None else exc).lower()
                if "client_request_id" in text or "dealer_request" in text:
                    existing = await self._by_request_id(dealer.id, request.client_request_id)
                    if existing is not None:
                        return pb.SubmitRegistrationResponse(
                            registration=registration_to_proto(existing, scope))
                if attempt == attempts - 1:
                    raise
                # A concurrent submission created the same new customer (or conflict):
                # go again; it is an exact duplicate now.
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _by_request_id(self, dealer_id: str, request_id: str) -> RegistrationRow | None:
        async with self.db.read() as session:
            return (await session.scalars(select(RegistrationRow).where(
                RegistrationRow.dealer_id == dealer_id,
                RegistrationRow.client_request_id == request_id))).first()

    async def _submit_once(self, request, principal: Principal, dealer: DealerView,
                           product_line: str, prepared, viewer: Scope
                           ) -> pb.SubmitRegistrationResponse:
        now = _now()
        new_rows = []
        async with self.db.write() as session:
            customer, is_new, fuzzy = await self._target_customer(session, request, prepared)
            problem = territory_violation(dealer, customer.division_code, product_line)
            if problem is not None:
                raise FailedPrecondition(problem.description, violations=[problem],
                                         reason="OUTSIDE_TERRITORY")
            if is_new:
                await self._insert_customer(session, customer)
                new_rows.append(customer)
            # Evidence: the customer itself and its look-alikes, with their claims.
            matches = await self._matches(session, customer.normalized_name,
                                          customer.credit_code, customer.city_code)
            others = [m for m in matches if m.customer_id != customer.id]
            # A new customer is not evidence about itself.
            evidence = await self._evidence(session, others if is_new else matches,
                                            product_line)
            review = is_new and bool(fuzzy)
            clean = not review and not any(c.claims for c in evidence)
            status = Status.UNDER_REVIEW if review else Status.SUBMITTED
            auto = status == Status.SUBMITTED and self.policy.auto_approve == "clean" and clean
            if auto:
                status = Status.APPROVED
            row = RegistrationRow(
                id=_new_id(), customer_id=customer.id, customer_name=customer.name,
                dealer_id=dealer.id, region_code=dealer.region_code, product_line=product_line,
                status=status, active_key=active_key(customer.id, product_line),
                source=DEALER_SOURCED, client_request_id=request.client_request_id or None,
                submitted_at=now, submitted_by=principal.subject,
                approver_user_id=dealer.managers.get(product_line, ""),
                stage=self.policy.stages[0], department=request.department.strip(),
                evidence=pb.CheckDuplicatesResponse(
                    verdict=VERDICT_TO_PROTO[verdict_of(others)], candidates=evidence,
                    normalized_name=customer.normalized_name,
                    division_code=customer.division_code).SerializeToString(),
                updated_at=now)
            if auto:
                row.decided_at = row.approved_at = now
                row.decided_by = "system"
                row.decision_note = "auto-approved: inside territory, no duplicate or claim"
                row.protected_until = self.policy.protected_until(now)
            session.add(row)
            await session.flush()
            if request.note.strip():
                session.add(NoteRow(id=_new_id(), registration_id=row.id,
                                    text=request.note.strip(), stage=row.stage,
                                    created_at=now, created_by=principal.subject))
            if review:
                await self._open_conflict(session, row, others, product_line)
            await self._event(session, REGISTRATION_SUBMITTED,
                              events_pb2.RegistrationSubmitted(
                                  registration=registration_to_proto(row)), row.id)
            if auto:
                await self._event(session, REGISTRATION_APPROVED,
                                  events_pb2.RegistrationApproved(
                                      registration=registration_to_proto(row),
                                      auto_approved=True), row.id)
                await self._notify(session, row.dealer_id, "registration.approved",
                                   f"报备 {row.customer_name}（{product_line}）已自动通过",
                                   registration_id=row.id)
        self._after_commit_index(new_rows)
        return pb.SubmitRegistrationResponse(registration=registration_to_proto(row, viewer),
                                             auto_approved=auto)

    async def _lose(self, request, principal: Principal, dealer: DealerView, product_line: str,
                    prepared, viewer: Scope) -> pb.SubmitRegistrationResponse:
        """Another registration holds the slot: record this one with the winner's evidence
        (rejected when the winner is approved, in the HQ conflict queue while pending)."""
        now = _now()
        async with self.db.write() as session:
            customer, _, _ = await self._target_customer(session, request, prepared)
            winner = (await session.scalars(select(RegistrationRow).where(
                RegistrationRow.active_key == active_key(customer.id, product_line)))).first()
            if winner is None:
                raise FailedPrecondition("the competing registration changed meanwhile; "
                                         "submit again", reason="RETRY")
            if winner.dealer_id == dealer.id:
                raise AlreadyExists(
                    f"your dealer already holds registration {winner.id} for "
                    f"{customer.name} ({product_line})", reason="ALREADY_REGISTERED",
                    metadata={"registration_id": winner.id, "status": winner.status})
            matches = await self._matches(session, customer.normalized_name,
                                          customer.credit_code, customer.city_code)
            evidence = await self._evidence(session, matches, product_line)
            approved = winner.status == Status.APPROVED
            row = RegistrationRow(
                id=_new_id(), customer_id=customer.id, customer_name=customer.name,
                dealer_id=dealer.id, region_code=dealer.region_code, product_line=product_line,
                status=Status.REJECTED if approved else Status.UNDER_REVIEW, active_key=None,
                source=DEALER_SOURCED, client_request_id=request.client_request_id or None,
                submitted_at=now, submitted_by=principal.subject,
                approver_user_id=dealer.managers.get(product_line, ""),
                stage=self.policy.stages[0], department=request.department.strip(),
                evidence=pb.CheckDuplicatesResponse(
                    verdict=pb.DUPLICATE_VERDICT_DUPLICATE, candidates=evidence,
                    normalized_name=customer.normalized_name,
                    division_code=customer.division_code).SerializeToString(),
                updated_at=now)
            if approved:
                row.decided_at = now
                row.decided_by = "system"
                until = _aware(winner.protected_until)
                row.decision_note = (f"protected by registration {winner.id} until "
                                     f"{until.date().isoformat() if until else '?'} (first come)")
            session.add(row)
            await session.flush()
            await self._event(session, REGISTRATION_SUBMITTED,
                              events_pb2.RegistrationSubmitted(
                                  registration=registration_to_proto(row)), row.id)
            if approved:
                await self._event(session, REGISTRATION_REJECTED,
                                  events_pb2.RegistrationRejected(
                                      registration=registration_to_proto(row),
                                      reason=row.decision_note), row.id)
                await self._notify(session, row.dealer_id, "registration.rejected",
                                   f"{customer.name}（{product_line}）已由其他经销商报备并受保护",
                                   registration_id=row.id)
            else:
                await self._open_conflict(session, row, [Match(customer.id, MatchKind.CREDIT_CODE,
                                                               10000)], product_line)
        return pb.SubmitRegistrationResponse(registration=registration_to_proto(row, viewer))

    async def _load_registration(self, session, registration_id: str, action: str
                                 ) -> RegistrationRow:
        scope = await self._scope(action)
        row = await session.get(RegistrationRow, registration_id)
        if row is None or not scope.allows(row.dealer_id):
            raise NotFound(f"registration {registration_id} not found")
        return row

    async def get_registration(self, registration_id: str) -> pb.Registration:
        async with self.db.read() as session:
            row = await self._load_registration(session, registration_id, "registration.read")
        return registration_to_proto(row, await self._scope("registration.read"))

    async def _transition(self, registration_id: str, action: str, allowed: frozenset,
                          verb: str, apply, *, roles: tuple[str, ...] = ()) -> RegistrationRow:
        """Move a registration between states with a conditional UPDATE, so two deciders
        (or two replicas) cannot both succeed."""
        principal = current_principal()
        async with self.db.write() as session:
            row = await self._load_registration(session, registration_id, action)
            if roles and not principal.has_role(*roles):
                raise PermissionDenied(f"{verb} needs one of the roles {', '.join(roles)}")
            if Status(row.status) not in allowed:
                raise FailedPrecondition(
                    f"registration {row.id} is {row.status}; cannot {verb} it",
                    reason=f"ALREADY_{row.status.upper()}"
                    if row.status in ("approved", "rejected", "recalled", "expired")
                    else "INVALID_STATE", metadata={"status": row.status})
            values = apply(row)
            values["updated_at"] = _now()
            result = await session.execute(
                update(RegistrationRow)
                .where(RegistrationRow.id == row.id, RegistrationRow.status == row.status)
                .values(**values))
            if result.rowcount != 1:
                raise FailedPrecondition(f"registration {row.id} changed meanwhile",
                                         reason="CONCURRENT_CHANGE")
            await session.refresh(row)
            await self._after_transition(session, row, verb)
        return row

    async def approve(self, registration_id: str, comment: str) -> pb.Registration:
        now = _now()
        subject = current_principal().subject

        def apply(row):
            if row.status == Status.UNDER_REVIEW and not current_principal().has_role(
                    *HQ_DECIDERS):
                raise FailedPrecondition("this registration is under HQ review (conflict "
                                         f"{row.conflict_id}); HQ decides it",
                                         reason="UNDER_REVIEW")
            return dict(status=Status.APPROVED, decided_at=now, approved_at=now,
                        decided_by=subject, decision_note=comment.strip(),
                        protected_until=self.policy.protected_until(now))

        row = await self._transition(registration_id, "registration.approve", PENDING,
                                     "approve", apply, roles=APPROVERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def reject(self, registration_id: str, reason: str) -> pb.Registration:
        if not reason.strip():
            raise InvalidArgument.field("reason", "is required when rejecting")
        now = _now()
        subject = current_principal().subject
        row = await self._transition(
            registration_id, "registration.approve", PENDING, "reject",
            lambda row: dict(status=Status.REJECTED, active_key=None, decided_at=now,
                             decided_by=subject, decision_note=reason.strip()),
            roles=APPROVERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def recall(self, registration_id: str, reason: str) -> pb.Registration:
        now = _now()
        subject = current_principal().subject
        row = await self._transition(
            registration_id, "registration.submit", PENDING, "recall",
            lambda row: dict(status=Status.RECALLED, active_key=None, decided_at=now,
                             decided_by=subject, decision_note=reason.strip()),
            roles=RECALLERS)
        return registration_to_proto(row, await self._scope("registration.read"))

    async def renew(self, registration_id: str, reason: str) -> tuple[pb.Registration, datetime]:
        async with self.db.write() as session:
            row = await self._load_registration(session, registration_id,
                                                "registration.approve")
            if not current_principal().has_role(*APPROVERS):
                raise PermissionDenied("channel managers and HQ renew protection; dealers "
                                       "renew by moving the pipeline forward")
            previous = await self._renew(session, row, reason)
        return registration_to_proto(row, await self._scope("registration.read")), previous

    async def _renew(self, session, row: RegistrationRow, reason: str) -> datetime:
        if row.status != Status.APPROVED:
            raise FailedPrecondition(f"registration {row.id} is {row.status}; only approved "
                                     "registrations are renewed", reason="INVALID_STATE")
        previous = _aware(row.protected_until)
        until = self.policy.renewed_until(previous, _now())
        result = await session.execute(
            update(RegistrationRow)
            .where(RegistrationRow.id == row.id, RegistrationRow.status == Status.APPROVED)
            .values(protected_until=until, renewal_count=RegistrationRow.renewal_count + 1,
                    updated_at=_now()))
        if result.rowcount != 1:
            raise FailedPrecondition(f"registration {row.id} changed meanwhile",
                                     reason="CONCURRENT_CHANGE")
        await session.refresh(row)
        event = events_pb2.RegistrationRenewed(registration=registration_to_proto(row))
        _set_ts(event.previous_protected_until, previous)
        await self._event(session, REGISTRATION_RENEWED, event, row.id)
        return previous

    def _registration_query(self, scope: Scope, request):
        query = select(RegistrationRow)
        if request.dealer_id:
            query = query.where(RegistrationRow.dealer_id == request.dealer_id)
        if not scope.all_dealers:
            query = query.where(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        return query

    async def list_registrations(self, request: pb.ListRegistrationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        offset = decode_page_token(token)
        query = self._registration_query(scope, request)
        if request.customer_id:
            query = query.where(RegistrationRow.customer_id == request.customer_id)
        if request.product_line:
            query = query.where(RegistrationRow.product_line == request.product_line)
        if request.statuses:
            query = query.where(RegistrationRow.status.in_(
                [PROTO_TO_STATUS[s] for s in request.statuses if s in PROTO_TO_STATUS]))
        if request.region_code:
            query = query.where(RegistrationRow.region_code == request.region_code)
        if request.approver_user_id:
            query = query.where(RegistrationRow.approver_user_id == request.approver_user_id)
        if request.stage:
            query = query.where(RegistrationRow.stage == request.stage)
        query = query.order_by(RegistrationRow.submitted_at.desc(), RegistrationRow.id)
        return await self._page(query, offset, size,
                                lambda r: registration_to_proto(r, scope))

    async def list_expiring(self, request: pb.ListExpiringRegistrationsRequest):
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        if request.within_days < 0:
            raise InvalidArgument.field("within_days", "must not be negative")
        days = request.within_days or self.policy.expiring_within_days
        horizon = _now() + timedelta(days=days)
        query = (self._registration_query(scope, request)
                 .where(RegistrationRow.status == Status.APPROVED,
                        RegistrationRow.protected_until <= horizon)
                 .order_by(RegistrationRow.protected_until, RegistrationRow.id))
        return await self._page(query, decode_page_token(token), size,
                                lambda r: registration_to_proto(r, scope))
