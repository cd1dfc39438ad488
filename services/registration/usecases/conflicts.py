"""The HQ conflict queue: when a registration's customer may be another dealer's
(a look-alike, or a slot still pending), no channel manager decides it; HQ picks the
winner, and every dealer involved is told."""

from __future__ import annotations

from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import and_, func, select, update

from services.registration.adapters.orm import ConflictRow, RegistrationRow
from services.registration.domain.rules import PENDING, Status, active_key
from services.registration.usecases.common import (
    HQ_DECIDERS,
    UseCaseBase,
    _new_id,
    _now,
    _set_ts,
    page_args,
    registration_to_proto,
)
from shared.context import current_principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import CONFLICT_RAISED, CONFLICT_RESOLVED
from shared.names.matching import Match
from shared.pagination import decode_page_token, encode_page_token


class ConflictUseCases(UseCaseBase):
    async def _open_conflict(self, session, row: RegistrationRow, others: list[Match],
                             product_line: str) -> ConflictRow:
        """Raise (or join) the HQ review of a registration: its look-alikes' claims."""
        now = _now()
        key = active_key(row.customer_id, product_line)
        conflict = (await session.scalars(select(ConflictRow).where(
            ConflictRow.open_key == key))).first()
        if conflict is None:
            conflict = ConflictRow(id=_new_id(), customer_id=row.customer_id,
                                   product_line=product_line, status="open", open_key=key,
                                   raised_at=now)
            session.add(conflict)
            await session.flush()
        row.conflict_id = conflict.id
        claim_ids = [m.customer_id for m in others]
        dealers = {row.dealer_id}
        if claim_ids:
            for other in (await session.scalars(select(RegistrationRow).where(
                    RegistrationRow.customer_id.in_([*claim_ids, row.customer_id]),
                    RegistrationRow.product_line == product_line,
                    RegistrationRow.active_key.is_not(None),
                    RegistrationRow.id != row.id))).all():
                other.conflict_id = conflict.id
                dealers.add(other.dealer_id)
        await session.flush()
        await self._event(session, CONFLICT_RAISED, events_pb2.ConflictRaised(
            conflict=await self._conflict_proto(session, conflict)), conflict.id)
        for dealer_id in sorted(dealers):
            await self._notify(session, dealer_id, "conflict.raised",
                               f"{row.customer_name}（{product_line}）的报备存在冲突，已提交总部裁决",
                               registration_id=row.id, conflict_id=conflict.id)
        return conflict

    async def _conflict_proto(self, session, conflict: ConflictRow) -> pb.Conflict:
        result = pb.Conflict(
            id=conflict.id, customer_id=conflict.customer_id,
            product_line=conflict.product_line,
            status=pb.CONFLICT_STATUS_OPEN if conflict.status == "open"
            else pb.CONFLICT_STATUS_RESOLVED,
            resolved_by=conflict.resolved_by,
            winning_registration_id=conflict.winning_registration_id,
            resolution_note=conflict.resolution_note)
        _set_ts(result.raised_at, conflict.raised_at)
        _set_ts(result.resolved_at, conflict.resolved_at)
        claims = (await session.scalars(select(RegistrationRow).where(
            RegistrationRow.conflict_id == conflict.id).order_by(
            RegistrationRow.submitted_at))).all()
        for claim in claims:
            proto = registration_to_proto(claim)
            result.claims.append(pb.ConflictClaim(registration=proto, evidence=proto.evidence))
        return result

    def _require_hq(self) -> None:
        if not current_principal().has_role(*HQ_DECIDERS):
            raise PermissionDenied("the conflict queue is for HQ (hq_admin, region_manager)")

    async def list_conflicts(self, request: pb.ListConflictsRequest):
        self._require_hq()
        scope = await self._scope("registration.read")
        size, token = page_args(request.page)
        query = select(ConflictRow).order_by(ConflictRow.raised_at.desc(), ConflictRow.id)
        if request.status:
            query = query.where(ConflictRow.status == (
                "open" if request.status == pb.CONFLICT_STATUS_OPEN else "resolved"))
        if request.product_line:
            query = query.where(ConflictRow.product_line == request.product_line)
        dealer_filter = []
        if request.dealer_id:
            dealer_filter.append(RegistrationRow.dealer_id == request.dealer_id)
        if request.region_code:
            dealer_filter.append(RegistrationRow.region_code == request.region_code)
        if not scope.all_dealers:
            dealer_filter.append(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        if dealer_filter:
            query = query.where(ConflictRow.id.in_(
                select(RegistrationRow.conflict_id).where(and_(*dealer_filter))))
        offset = decode_page_token(token)
        async with self.db.read() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
            conflicts = [await self._conflict_proto(session, r) for r in rows[:size]]
        return conflicts, encode_page_token(offset + size) if len(rows) > size else "", total

    async def resolve_conflict(self, conflict_id: str, winner_id: str, note: str) -> pb.Conflict:
        scope = await self._scope("registration.approve")
        now = _now()
        subject = current_principal().subject
        async with self.db.write() as session:
            conflict = await session.get(ConflictRow, conflict_id)
            claims = [] if conflict is None else (await session.scalars(select(
                RegistrationRow).where(RegistrationRow.conflict_id == conflict_id))).all()
            if conflict is None or not (scope.all_dealers
                                        or any(scope.allows(c.dealer_id) for c in claims)):
                raise NotFound(f"conflict {conflict_id} not found")
            self._require_hq()
            violations: list[FieldViolation] = []
            if not winner_id:
                violations.append(FieldViolation("winning_registration_id", "is required"))
            if not note.strip():
                violations.append(FieldViolation("note", "is required; both dealers see it"))
            collect(violations)
            if conflict.status != "open":
                raise FailedPrecondition(f"conflict {conflict_id} is already resolved",
                                         reason="ALREADY_RESOLVED")
            winner = next((c for c in claims if c.id == winner_id), None)
            if winner is None:
                raise InvalidArgument.field("winning_registration_id",
                                            f"{winner_id} is not a claim of this conflict")
            result = await session.execute(
                update(ConflictRow).where(ConflictRow.id == conflict_id,
                                          ConflictRow.status == "open")
                .values(status="resolved", open_key=None, resolved_at=now, resolved_by=subject,
                        winning_registration_id=winner_id, resolution_note=note.strip()))
            if result.rowcount != 1:
                raise FailedPrecondition(f"conflict {conflict_id} is already resolved",
                                         reason="ALREADY_RESOLVED")
            changed: list[tuple[RegistrationRow, str]] = []
            for claim in claims:
                if claim.id == winner.id:
                    continue
                same_slot = claim.customer_id == winner.customer_id
                if Status(claim.status) in PENDING or (same_slot and
                                                        claim.status == Status.APPROVED):
                    claim.status = Status.REJECTED
                    claim.active_key = None
                    claim.decided_at = now
                    claim.decided_by = subject
                    claim.decision_note = f"HQ conflict decision: {note.strip()}"
                    claim.updated_at = now
                    changed.append((claim, "reject"))
            await session.flush()
            if winner.status != Status.APPROVED:
                winner.status = Status.APPROVED
                winner.active_key = active_key(winner.customer_id, winner.product_line)
                winner.decided_at = winner.approved_at = now
                winner.decided_by = subject
                winner.decision_note = f"HQ conflict decision: {note.strip()}"
                winner.protected_until = self.policy.protected_until(now)
                winner.updated_at = now
                changed.append((winner, "approve"))
            for claim in claims:
                claim.conflict_id = ""
            await session.flush()
            for claim, verb in changed:
                await self._after_transition(session, claim, verb)
            conflict = await session.get(ConflictRow, conflict_id)
            proto = await self._conflict_proto(session, conflict)
            proto.claims.extend(pb.ConflictClaim(registration=registration_to_proto(c),
                                                 evidence=registration_to_proto(c).evidence)
                                for c in claims)
            await self._event(session, CONFLICT_RESOLVED,
                              events_pb2.ConflictResolved(conflict=proto), conflict_id)
            for dealer_id in sorted({c.dealer_id for c in claims}):
                won = dealer_id == winner.dealer_id
                await self._notify(session, dealer_id, "conflict.resolved",
                                   f"总部裁决 {winner.customer_name}（{winner.product_line}）："
                                   f"{'您的报备胜出' if won else '归属其他经销商'}。{note.strip()}",
                                   conflict_id=conflict_id,
                                   registration_id=next(c.id for c in claims
                                                        if c.dealer_id == dealer_id))
        return proto
