"""Assignments: which channel manager looks after which dealer for which product line,
the basis of a channel manager's scope; hand-over moves them to a successor in one
change."""

from __future__ import annotations

from datetime import UTC, datetime

from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import or_, select

from services.identity.adapters.orm import AssignmentRow, OrgUnitRow, UserRow
from services.identity.domain.rules import OrgKind, Role
from services.identity.usecases.common import UseCaseBase, assignment_to_proto, paginate, stamp
from shared.context import Principal, current_principal
from shared.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import ASSIGNMENT_CHANGED


class AssignmentUseCases(UseCaseBase):
    async def _channel_manager(self, session, user_id: str, field: str) -> UserRow:
        manager = await session.get(UserRow, user_id) if user_id else None
        if manager is None or not manager.active or Role.CHANNEL_MANAGER not in manager.roles:
            raise InvalidArgument.field(field, "must name an active channel manager")
        return manager

    async def _assigning_dealers(self, session, principal: Principal,
                                 dealer_ids: list[str]) -> list[OrgUnitRow]:
        if not dealer_ids:
            raise InvalidArgument.field("dealer_ids", "at least one dealer")
        visibility = await self._visibility(session, principal)
        rows = []
        for index, dealer_id in enumerate(dict.fromkeys(dealer_ids)):
            row = await session.get(OrgUnitRow, dealer_id)
            if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                raise NotFound(f"dealer {dealer_id} not found", violations=[
                    FieldViolation(f"dealer_ids[{index}]", "not found")])
            rows.append(row)
        if not principal.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
            raise PermissionDenied("only HQ admins and region managers assign dealers")
        return rows

    async def assign_dealers(self, request: identity_pb2.AssignDealersRequest):
        principal = current_principal()
        now = datetime.now(UTC)
        async with self.db.write() as session:
            dealers = await self._assigning_dealers(session, principal, list(request.dealer_ids))
            manager = await self._channel_manager(session, request.manager_user_id,
                                                  "manager_user_id")
            result, added = [], []
            for dealer in dealers:
                lines = list(request.product_lines) or list(dealer.product_lines)
                for index, line in enumerate(lines):
                    if line not in dealer.product_lines:
                        raise InvalidArgument.field(
                            f"product_lines[{index}]",
                            f"dealer {dealer.name} does not carry product line {line}")
                    row = await session.get(AssignmentRow, (manager.id, dealer.id, line))
                    if row is None:
                        row = AssignmentRow(manager_user_id=manager.id, dealer_id=dealer.id,
                                            product_line=line, created_at=now,
                                            assigned_by=principal.subject)
                        session.add(row)
                        added.append(assignment_to_proto(row))
                    result.append(assignment_to_proto(row))
            if added:
                await session.flush()
                await self._audit(session, "assignment.assign", "assignment", manager.id, None,
                                  {"added": [_assignment_dict(a) for a in added]}, request.reason)
                await self.outbox.record(session, ASSIGNMENT_CHANGED,
                                         events_pb2.AssignmentChanged(
                                             kind=events_pb2.ASSIGNMENT_CHANGE_KIND_ASSIGNED,
                                             added=added, to_manager_user_id=manager.id,
                                             reason=request.reason), manager.id)
        return result

    async def unassign_dealers(self, request: identity_pb2.UnassignDealersRequest):
        principal = current_principal()
        async with self.db.write() as session:
            dealers = await self._assigning_dealers(session, principal, list(request.dealer_ids))
            query = select(AssignmentRow).where(
                AssignmentRow.manager_user_id == request.manager_user_id,
                AssignmentRow.dealer_id.in_([d.id for d in dealers]))
            if request.product_lines:
                query = query.where(AssignmentRow.product_line.in_(list(request.product_lines)))
            rows = (await session.scalars(query)).all()
            removed = [assignment_to_proto(r) for r in rows]
            for row in rows:
                await session.delete(row)
            if removed:
                await self._audit(session, "assignment.unassign", "assignment",
                                  request.manager_user_id,
                                  {"removed": [_assignment_dict(a) for a in removed]}, None,
                                  request.reason)
                await self.outbox.record(session, ASSIGNMENT_CHANGED,
                                         events_pb2.AssignmentChanged(
                                             kind=events_pb2.ASSIGNMENT_CHANGE_KIND_UNASSIGNED,
                                             removed=removed,
                                             from_manager_user_id=request.manager_user_id,
                                             reason=request.reason), request.manager_user_id)
        return removed

    async def list_assignments(self, request: identity_pb2.ListAssignmentsRequest, size: int):
        principal = current_principal()
        async with self.db.read() as session:
            current = await self._current(session, principal)
            visibility = await self._visibility(session, current)
            query = select(AssignmentRow).order_by(AssignmentRow.created_at,
                                                   AssignmentRow.dealer_id,
                                                   AssignmentRow.product_line)
            if not visibility.everything:
                query = query.where(or_(AssignmentRow.dealer_id.in_(visibility.dealer_ids),
                                        AssignmentRow.manager_user_id == current.user_id))
            if request.manager_user_id:
                query = query.where(AssignmentRow.manager_user_id == request.manager_user_id)
            if request.dealer_id:
                query = query.where(AssignmentRow.dealer_id == request.dealer_id)
            if request.product_line:
                query = query.where(AssignmentRow.product_line == request.product_line)
            rows = [assignment_to_proto(r) for r in (await session.scalars(query)).all()]
        return paginate(rows, request.page.page_token, size)

    async def transfer_assignments(self, request: identity_pb2.TransferAssignmentsRequest):
        principal = current_principal()
        async with self.db.write() as session:
            if request.dealer_ids:
                visibility = await self._visibility(session, principal)
                for index, dealer_id in enumerate(request.dealer_ids):
                    row = await session.get(OrgUnitRow, dealer_id)
                    if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                        raise NotFound(f"dealer {dealer_id} not found", violations=[
                            FieldViolation(f"dealer_ids[{index}]", "not found")])
            self._require_admin(principal, "transfer assignments")
            source = await session.get(UserRow, request.from_manager_user_id) \
                if request.from_manager_user_id else None
            if source is None:
                raise InvalidArgument.field("from_manager_user_id", "must name a user")
            held = await self._transfer(session, source.id, request.to_manager_user_id,
                                        list(request.dealer_ids), list(request.product_lines),
                                        request.reason, field="to_manager_user_id")
        return held

    async def _transfer(self, session, from_id: str, to_id: str, dealer_ids: list[str],
                        product_lines: list[str], reason: str, field: str):
        if to_id == from_id:
            raise InvalidArgument.field(field, "must name another user")
        successor = await self._channel_manager(session, to_id, field)
        query = select(AssignmentRow).where(AssignmentRow.manager_user_id == from_id)
        if dealer_ids:
            query = query.where(AssignmentRow.dealer_id.in_(dealer_ids))
        if product_lines:
            query = query.where(AssignmentRow.product_line.in_(product_lines))
        rows = (await session.scalars(query)).all()
        removed = [assignment_to_proto(r) for r in rows]
        now = datetime.now(UTC)
        actor = current_principal().subject
        added = []
        for row in rows:
            key = (successor.id, row.dealer_id, row.product_line)
            await session.delete(row)
            await session.flush()
            if await session.get(AssignmentRow, key) is None:
                session.add(AssignmentRow(manager_user_id=successor.id, dealer_id=row.dealer_id,
                                          product_line=row.product_line, created_at=now,
                                          assigned_by=actor))
            added.append(identity_pb2.Assignment(manager_user_id=successor.id,
                                                 dealer_id=row.dealer_id,
                                                 product_line=row.product_line,
                                                 assigned_by=actor))
        for assignment in added:
            stamp(assignment.assigned_at, now)
        await session.flush()
        if rows:
            await self._audit(session, "assignment.transfer", "assignment", from_id,
                              {"manager_user_id": from_id,
                               "assignments": [_assignment_dict(a) for a in removed]},
                              {"manager_user_id": successor.id,
                               "assignments": [_assignment_dict(a) for a in added]}, reason)
            await self.outbox.record(session, ASSIGNMENT_CHANGED,
                                     events_pb2.AssignmentChanged(
                                         kind=events_pb2.ASSIGNMENT_CHANGE_KIND_TRANSFERRED,
                                         added=added, removed=removed,
                                         from_manager_user_id=from_id,
                                         to_manager_user_id=successor.id, reason=reason), from_id)
        return added


def _assignment_dict(assignment: identity_pb2.Assignment) -> dict:
    return {"manager_user_id": assignment.manager_user_id, "dealer_id": assignment.dealer_id,
            "product_line": assignment.product_line}
