"""The audit trail, read by HQ admins: who changed what, before and after, and why."""

from __future__ import annotations

from datetime import UTC

from qudao.identity.v1 import identity_pb2
from sqlalchemy import func, select

from services.identity.adapters.orm import AuditRow
from services.identity.usecases.common import UseCaseBase, stamp
from shared.context import current_principal
from shared.pagination import decode_page_token, encode_page_token


class AuditUseCases(UseCaseBase):
    async def list_audit_events(self, request: identity_pb2.ListAuditEventsRequest, size: int):
        principal = current_principal()
        self._require_admin(principal, "read the audit trail")
        offset = decode_page_token(request.page.page_token)
        query = select(AuditRow).order_by(AuditRow.occurred_at.desc(), AuditRow.id)
        for column, value in ((AuditRow.actor, request.actor),
                              (AuditRow.target_type, request.target_type),
                              (AuditRow.target_id, request.target_id),
                              (AuditRow.action, request.action)):
            if value:
                query = query.where(column == value)
        if request.HasField("occurred_after"):
            query = query.where(AuditRow.occurred_at >= request.occurred_after.ToDatetime(UTC))
        if request.HasField("occurred_before"):
            query = query.where(AuditRow.occurred_at < request.occurred_before.ToDatetime(UTC))
        async with self.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(
                query.order_by(None).subquery()))
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        events = []
        for row in rows[:size]:
            event = identity_pb2.AuditEvent(
                id=row.id, actor=row.actor, action=row.action, target_type=row.target_type,
                target_id=row.target_id, before_json=row.before_json, after_json=row.after_json,
                reason=row.reason, request_id=row.request_id)
            stamp(event.occurred_at, row.occurred_at)
            events.append(event)
        return events, encode_page_token(offset + size) if len(rows) > size else "", total
