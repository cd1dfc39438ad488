"""Dealers as identity defines them (territory, tier, product lines, managers), kept
as a local projection fed by identity's events, so territory checks and lead assignment
need no remote call; a dealer whose event is still in flight is read through once."""

from __future__ import annotations

import grpc
from qudao.identity.v1 import identity_pb2
from qudao.registration.v1 import events_pb2
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.registration.adapters.orm import (
    AuthorizationRow,
    DealerRow,
    ManagerAssignmentRow,
    RegistrationRow,
)
from services.registration.domain.rules import PENDING, DealerView
from services.registration.usecases.common import UseCaseBase, _now, authorization_to_proto
from shared.context import outgoing_metadata
from shared.errors import NotFound
from shared.events.registration import AUTHORIZATION_OWNER_CHANGED


def dealer_view(row: DealerRow, managers: dict[str, str] | None = None) -> DealerView:
    return DealerView(row.id, row.name, row.tier, tuple(row.division_codes or ()),
                      tuple(row.product_lines or ()), row.region_code, row.active,
                      managers or {})


class DealerUseCases(UseCaseBase):
    async def dealer(self, dealer_id: str) -> DealerView:
        """The dealer from the local projection, or read through from identity."""
        async with self.db.read() as session:
            row = await session.get(DealerRow, dealer_id)
            managers = {}
            if row is not None:
                for assignment in (await session.scalars(select(ManagerAssignmentRow).where(
                        ManagerAssignmentRow.dealer_id == dealer_id))).all():
                    managers.setdefault(assignment.product_line, assignment.manager_user_id)
        if row is not None:
            return dealer_view(row, managers)
        try:
            response = await self.identity.GetOrgUnit(
                identity_pb2.GetOrgUnitRequest(id=dealer_id), metadata=outgoing_metadata(),
                timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise NotFound(f"dealer {dealer_id} not found") from exc
        unit = response.org_unit
        if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
            raise NotFound(f"dealer {dealer_id} not found")
        try:
            async with self.db.write() as session:
                row = await self.project_org_unit(session, unit)
        except IntegrityError:
            # Another request (or identity's event) projected the dealer first: ours now
            # updates that row.
            async with self.db.write() as session:
                row = await self.project_org_unit(session, unit)
        return dealer_view(row)

    async def project_org_unit(self, session, unit) -> DealerRow | None:
        if unit.kind != identity_pb2.ORG_UNIT_KIND_DEALER:
            return None
        row = await session.get(DealerRow, unit.id)
        if row is None:
            row = DealerRow(id=unit.id)
            session.add(row)
        row.name = unit.name
        row.tier = unit.tier
        row.region_code = unit.region_code
        row.division_codes = list(unit.division_codes)
        row.product_lines = list(unit.product_lines)
        row.active = unit.status in (identity_pb2.ORG_UNIT_STATUS_UNSPECIFIED,
                                     identity_pb2.ORG_UNIT_STATUS_ACTIVE)
        row.updated_at = _now()
        await session.flush()
        return row

    async def on_org_unit(self, session, event) -> None:
        await self.project_org_unit(session, event.payload.org_unit)
        self.scopes.invalidate()

    async def on_assignment_changed(self, session, event) -> None:
        change = event.payload
        for assignment in change.removed:
            row = await session.get(ManagerAssignmentRow, (
                assignment.manager_user_id, assignment.dealer_id, assignment.product_line))
            if row is not None:
                await session.delete(row)
        await session.flush()
        for assignment in change.added:
            key = (assignment.manager_user_id, assignment.dealer_id, assignment.product_line)
            if await session.get(ManagerAssignmentRow, key) is None:
                session.add(ManagerAssignmentRow(manager_user_id=key[0], dealer_id=key[1],
                                                 product_line=key[2]))
        await session.flush()
        if change.from_manager_user_id and change.to_manager_user_id:
            dealers = {a.dealer_id for a in change.added} or None
            query = select(AuthorizationRow).where(
                AuthorizationRow.owner_user_id == change.from_manager_user_id)
            if dealers:
                query = query.where(AuthorizationRow.dealer_id.in_(dealers))
            for grant in (await session.scalars(query)).all():
                grant.owner_user_id = change.to_manager_user_id
                await session.flush()
                await self._event(session, AUTHORIZATION_OWNER_CHANGED,
                                  events_pb2.AuthorizationOwnerChanged(
                                      authorization=authorization_to_proto(grant),
                                      previous_owner_user_id=change.from_manager_user_id),
                                  grant.id)
            await session.execute(
                update(RegistrationRow)
                .where(RegistrationRow.approver_user_id == change.from_manager_user_id,
                       RegistrationRow.status.in_(list(PENDING)))
                .values(approver_user_id=change.to_manager_user_id))
        self.scopes.invalidate()
