"""What time alone changes, run as workers: protections and authorizations lapse,
unclaimed leads return to the pool, and this replica's name index catches up with the
customers other replicas wrote."""

from __future__ import annotations

import asyncio

from qudao.registration.v1 import events_pb2
from sqlalchemy import select, update

from services.registration.adapters.name_index import refresh_index
from services.registration.adapters.orm import AuthorizationRow, LeadRow, RegistrationRow
from services.registration.domain.rules import AuthStatus, LeadStatus, Status
from services.registration.usecases.common import (
    UseCaseBase,
    _now,
    authorization_to_proto,
    lead_to_proto,
    registration_to_proto,
)
from shared.events.registration import AUTHORIZATION_EXPIRED, LEAD_RETURNED, REGISTRATION_EXPIRED
from shared.logging import get_logger

log = get_logger(__name__)


class SchedulerUseCases(UseCaseBase):
    async def run_scheduler_once(self) -> dict[str, int]:
        """Expire protections and authorizations, return overdue leads to the pool. Every
        change is a conditional UPDATE, so two replicas running this at once never apply
        one change twice."""
        now = _now()
        counts = {"registrations": 0, "leads": 0, "authorizations": 0}
        async with self.db.read() as session:
            due = (await session.scalars(select(RegistrationRow.id).where(
                RegistrationRow.status == Status.APPROVED,
                RegistrationRow.protected_until < now).limit(500))).all()
        for registration_id in due:
            async with self.db.write() as session:
                result = await session.execute(
                    update(RegistrationRow).where(RegistrationRow.id == registration_id,
                                                  RegistrationRow.status == Status.APPROVED,
                                                  RegistrationRow.protected_until < now)
                    .execution_options(synchronize_session=False)
                    .values(status=Status.EXPIRED, active_key=None, decided_by="system",
                            updated_at=now))
                if result.rowcount == 1:
                    row = await session.get(RegistrationRow, registration_id)
                    await self._event(session, REGISTRATION_EXPIRED,
                                      events_pb2.RegistrationExpired(
                                          registration=registration_to_proto(row)), row.id)
                    await self._notify(session, row.dealer_id, "registration.expired",
                                       f"{row.customer_name}（{row.product_line}）的保护期已到期，"
                                       "客户已释放", registration_id=row.id)
                    counts["registrations"] += 1
        async with self.db.read() as session:
            overdue = (await session.scalars(select(LeadRow.id).where(
                LeadRow.status == LeadStatus.ASSIGNED, LeadRow.claim_deadline < now)
                .limit(500))).all()
        for lead_id in overdue:
            async with self.db.write() as session:
                lead = await session.get(LeadRow, lead_id)
                previous = lead.assigned_dealer_id
                result = await session.execute(
                    update(LeadRow).where(LeadRow.id == lead_id,
                                          LeadRow.status == LeadStatus.ASSIGNED,
                                          LeadRow.claim_deadline < now)
                    .execution_options(synchronize_session=False)
                    .values(status=LeadStatus.POOL, assigned_dealer_id="", assigned_at=None,
                            claim_deadline=None, return_count=LeadRow.return_count + 1))
                if result.rowcount == 1:
                    await session.refresh(lead)
                    await self._event(session, LEAD_RETURNED, events_pb2.LeadReturned(
                        lead=lead_to_proto(lead), previous_dealer_id=previous,
                        deadline_passed=True, reason="claim deadline passed"), lead.id)
                    counts["leads"] += 1
        today = now.date().isoformat()
        async with self.db.write() as session:
            await session.execute(update(AuthorizationRow).where(
                AuthorizationRow.status == AuthStatus.PENDING,
                AuthorizationRow.valid_from <= today).values(status=AuthStatus.ACTIVE))
        async with self.db.read() as session:
            lapsed = (await session.scalars(select(AuthorizationRow.id).where(
                AuthorizationRow.status.in_([AuthStatus.ACTIVE, AuthStatus.PENDING]),
                AuthorizationRow.valid_to < today).limit(500))).all()
        for grant_id in lapsed:
            async with self.db.write() as session:
                result = await session.execute(
                    update(AuthorizationRow).where(
                        AuthorizationRow.id == grant_id,
                        AuthorizationRow.status.in_([AuthStatus.ACTIVE, AuthStatus.PENDING]),
                        AuthorizationRow.valid_to < today)
                    .values(status=AuthStatus.EXPIRED))
                if result.rowcount == 1:
                    row = await session.get(AuthorizationRow, grant_id)
                    await self._event(session, AUTHORIZATION_EXPIRED,
                                      events_pb2.AuthorizationExpired(
                                          authorization=authorization_to_proto(row)), row.id)
                    counts["authorizations"] += 1
        return counts

    async def run_scheduler(self) -> None:
        while True:
            try:
                counts = await self.run_scheduler_once()
                if any(counts.values()):
                    log.info("scheduler_pass", **counts)
            except Exception as exc:  # the database is busy or gone: try next round
                log.warning("scheduler_failed", error=repr(exc))
            await asyncio.sleep(self.policy.scheduler_interval_seconds)

    async def run_index_refresher(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await refresh_index(self.index, self.db)
            except Exception as exc:
                log.warning("name_index_refresh_failed", error=repr(exc))
