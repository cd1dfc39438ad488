"""SQL in, domain objects out, for the engagement tables."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date, datetime

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.engagement.adapters.orm import (
    AssignmentRow,
    DealerFactsRow,
    HealthPolicyRow,
    InboxItemRow,
    OrgUnitRow,
    PersonRow,
    RegistrationRow,
    SopRuleRow,
    StatementRow,
    TaskRow,
)
from services.engagement.domain.health import DealerFacts, HealthPolicy, HealthStatus
from services.engagement.domain.inbox import InboxItem
from services.engagement.domain.people import Person
from services.engagement.domain.sop import AssigneeRole, SopRule, Task, TaskStatus
from services.engagement.usecases.ports import TaskFilter
from shared.clock import aware
from shared.db import fetch_page
from shared.pagination import Page, PageRequest
from shared.versioning import update_versioned

DEALER_KIND = "dealer"


def _aware(moment: datetime | None) -> datetime | None:
    return aware(moment) if moment is not None else None


class SqlRules:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _rule(row: SopRuleRow) -> SopRule:
        return SopRule(row.id, row.name, row.trigger, row.closing, row.deadline_minutes,
                       AssigneeRole(row.assignee_role), row.active, _aware(row.created_at),
                       row.version)

    async def add(self, rule: SopRule) -> None:
        self.session.add(SopRuleRow(
            id=rule.id, name=rule.name, trigger=rule.trigger, closing=rule.closing,
            deadline_minutes=rule.deadline_minutes, assignee_role=rule.assignee_role.value,
            active=rule.active, created_at=rule.created_at))

    async def list(self, page: PageRequest) -> Page[SopRule]:
        query = select(SopRuleRow).order_by(SopRuleRow.created_at, SopRuleRow.id)
        found = await fetch_page(self.session, query, page, count=True, keyset=True)
        return found.map(self._rule)

    async def get(self, rule_id: str) -> SopRule | None:
        row = await self.session.get(SopRuleRow, rule_id)
        return self._rule(row) if row is not None else None

    async def set_active(self, rule: SopRule, active: bool) -> int:
        return await update_versioned(self.session, SopRuleRow.__table__, rule.id,
                                      rule.version, {"active": active}, f"SOP rule {rule.id}")

    async def triggered_by(self, signal: str) -> list[SopRule]:
        rows = await self.session.scalars(select(SopRuleRow).where(
            SopRuleRow.trigger == signal, SopRuleRow.active.is_(True)).order_by(SopRuleRow.id))
        return [self._rule(row) for row in rows]

    async def closed_by(self, signal: str) -> list[SopRule]:
        rows = await self.session.scalars(select(SopRuleRow).where(
            SopRuleRow.closing == signal).order_by(SopRuleRow.id))
        return [self._rule(row) for row in rows]


class SqlTasks:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _task(row: TaskRow) -> Task:
        return Task(row.id, row.rule_id, row.rule_name, row.subject_id, row.dealer_id,
                    AssigneeRole(row.assignee_role), row.assignee_user_id, row.manager_user_id,
                    _aware(row.opened_at), _aware(row.due_at), TaskStatus(row.status),
                    row.overdue, _aware(row.closed_at), row.trigger_event_id)

    @staticmethod
    def _values(task: Task) -> dict:
        values = {f.name: getattr(task, f.name) for f in fields(task)}
        values["assignee_role"] = task.assignee_role.value
        values["status"] = task.status.value
        return values

    async def add(self, task: Task) -> bool:
        exists = await self.session.scalar(select(TaskRow.id).where(
            TaskRow.rule_id == task.rule_id, TaskRow.subject_id == task.subject_id))
        if exists is not None:
            return False
        self.session.add(TaskRow(**self._values(task)))
        await self.session.flush()
        return True

    async def update(self, task: Task) -> None:
        await self.session.execute(update(TaskRow).where(TaskRow.id == task.id)
                                   .values(**self._values(task)))

    async def open_about(self, subject_id: str, rule_ids: list[str]) -> list[Task]:
        rows = await self.session.scalars(select(TaskRow).where(
            TaskRow.subject_id == subject_id, TaskRow.rule_id.in_(rule_ids),
            TaskRow.status == TaskStatus.OPEN.value).order_by(TaskRow.id))
        return [self._task(row) for row in rows]

    async def due(self, now: datetime, limit: int) -> list[Task]:
        rows = await self.session.scalars(select(TaskRow).where(
            TaskRow.status == TaskStatus.OPEN.value, TaskRow.overdue.is_(False),
            TaskRow.due_at < now).order_by(TaskRow.due_at, TaskRow.id).limit(limit))
        return [self._task(row) for row in rows]

    def _where(self, where: TaskFilter):
        query = select(TaskRow)
        if where.dealer_ids is not None:
            query = query.where(TaskRow.dealer_id.in_(where.dealer_ids))
        if where.assignee_user_id:
            query = query.where(TaskRow.assignee_user_id == where.assignee_user_id)
        if where.dealer_role_only:
            query = query.where(TaskRow.assignee_role == AssigneeRole.DEALER.value)
        if where.status:
            query = query.where(TaskRow.status == where.status)
        if where.overdue_only:
            query = query.where(TaskRow.overdue.is_(True))
        if where.rule_id:
            query = query.where(TaskRow.rule_id == where.rule_id)
        return query

    async def list(self, where: TaskFilter, page: PageRequest) -> Page[Task]:
        query = self._where(where).order_by(
            case((TaskRow.status == TaskStatus.OPEN.value, 0), else_=1),
            TaskRow.overdue.desc(), TaskRow.due_at, TaskRow.id)
        return (await fetch_page(self.session, query, page, count=True)).map(self._task)

    async def matching(self, where: TaskFilter) -> list[Task]:
        return [self._task(row) for row in await self.session.scalars(self._where(where))]


class SqlDirectory:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put_person(self, person: Person) -> None:
        await self.session.merge(PersonRow(
            user_id=person.user_id, display_name=person.display_name,
            roles=sorted(person.roles), org_unit_id=person.org_unit_id,
            dealer_id=person.dealer_id, active=person.active))

    async def person(self, user_id: str) -> Person | None:
        row = await self.session.get(PersonRow, user_id)
        if row is None:
            return None
        return Person(row.user_id, row.display_name, frozenset(row.roles), row.org_unit_id,
                      row.dealer_id, row.active)

    async def staff_of(self, dealer_id: str) -> list[str]:
        rows = await self.session.scalars(select(PersonRow.user_id).where(
            PersonRow.dealer_id == dealer_id, PersonRow.active.is_(True))
            .order_by(PersonRow.user_id))
        return list(rows)

    async def with_role(self, role: str, org_unit_ids: frozenset[str] | None = None) -> list[str]:
        query = select(PersonRow).where(PersonRow.active.is_(True))
        if org_unit_ids is not None:
            query = query.where(PersonRow.org_unit_id.in_(org_unit_ids))
        rows = await self.session.scalars(query.order_by(PersonRow.user_id))
        return [row.user_id for row in rows if role in row.roles]

    async def put_org_unit(self, unit_id: str, kind: str, name: str, region_code: str,
                           created_at: datetime | None) -> None:
        known = await self.session.get(OrgUnitRow, unit_id)
        await self.session.merge(OrgUnitRow(
            id=unit_id, kind=kind, name=name, region_code=region_code,
            created_at=created_at or (known.created_at if known else None)))

    async def units_of_region(self, region_code: str) -> frozenset[str]:
        rows = await self.session.scalars(select(OrgUnitRow.id).where(
            OrgUnitRow.region_code == region_code, OrgUnitRow.kind != DEALER_KIND))
        return frozenset(rows)

    async def assign(self, manager_user_id: str, dealer_id: str, product_line: str) -> None:
        await self.session.merge(AssignmentRow(manager_user_id=manager_user_id,
                                               dealer_id=dealer_id, product_line=product_line))

    async def unassign(self, manager_user_id: str, dealer_id: str, product_line: str) -> None:
        row = await self.session.get(AssignmentRow, (manager_user_id, dealer_id, product_line))
        if row is not None:
            await self.session.delete(row)

    async def managers_of(self, dealer_id: str) -> list[str]:
        rows = await self.session.scalars(
            select(AssignmentRow.manager_user_id).join(
                PersonRow, PersonRow.user_id == AssignmentRow.manager_user_id, isouter=True)
            .where(AssignmentRow.dealer_id == dealer_id,
                   or_(PersonRow.active.is_(None), PersonRow.active.is_(True)))
            .distinct().order_by(AssignmentRow.manager_user_id))
        return list(rows)

    async def dealers_of(self, manager_user_id: str) -> frozenset[str]:
        rows = await self.session.scalars(select(AssignmentRow.dealer_id).where(
            AssignmentRow.manager_user_id == manager_user_id))
        return frozenset(rows)

    async def names(self, ids: set[str]) -> dict[str, str]:
        wanted = [i for i in ids if i]
        if not wanted:
            return {}
        people = await self.session.execute(select(PersonRow.user_id, PersonRow.display_name)
                                            .where(PersonRow.user_id.in_(wanted)))
        units = await self.session.execute(select(OrgUnitRow.id, OrgUnitRow.name)
                                           .where(OrgUnitRow.id.in_(wanted)))
        return {key: name for key, name in [*people.all(), *units.all()] if name}


class SqlHealth:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _row(self, dealer_id: str) -> DealerFactsRow:
        row = await self.session.get(DealerFactsRow, dealer_id)
        if row is None:
            row = DealerFactsRow(dealer_id=dealer_id, flagged=HealthStatus.HEALTHY.value)
            self.session.add(row)
        return row

    async def all_facts(self, dealer_ids: frozenset[str] | None) -> list[DealerFacts]:
        query = (select(OrgUnitRow, DealerFactsRow)
                 .join(DealerFactsRow, DealerFactsRow.dealer_id == OrgUnitRow.id, isouter=True)
                 .where(OrgUnitRow.kind == DEALER_KIND).order_by(OrgUnitRow.id))
        if dealer_ids is not None:
            query = query.where(OrgUnitRow.id.in_(dealer_ids))
        pairs = (await self.session.execute(query)).all()
        ids = [unit.id for unit, _ in pairs]
        managers: dict[str, list[str]] = {}
        open_registrations: dict[str, int] = {}
        statements: dict[str, list[datetime]] = {}
        if ids:
            for manager, dealer in (await self.session.execute(
                    select(AssignmentRow.manager_user_id, AssignmentRow.dealer_id)
                    .where(AssignmentRow.dealer_id.in_(ids)).distinct()
                    .order_by(AssignmentRow.manager_user_id))).all():
                managers.setdefault(dealer, []).append(manager)
            open_registrations = dict((await self.session.execute(
                select(RegistrationRow.dealer_id, func.count()).where(
                    RegistrationRow.dealer_id.in_(ids), RegistrationRow.open.is_(True))
                .group_by(RegistrationRow.dealer_id))).all())
            for dealer, issued in (await self.session.execute(
                    select(StatementRow.dealer_id, StatementRow.issued_at).where(
                        StatementRow.dealer_id.in_(ids), StatementRow.confirmed.is_(False))
                    .order_by(StatementRow.issued_at))).all():
                statements.setdefault(dealer, []).append(aware(issued))
        return [DealerFacts(
            unit.id, unit.name, unit.region_code, _aware(unit.created_at),
            tuple(managers.get(unit.id, ())),
            _aware(row.last_login_at) if row else None,
            _aware(row.last_order_at) if row else None,
            _aware(row.last_flow_upload_at) if row else None,
            row.flow_covered_until if row else None,
            open_registrations.get(unit.id, 0), tuple(statements.get(unit.id, ())),
            HealthStatus(row.flagged) if row else HealthStatus.HEALTHY) for unit, row in pairs]

    async def facts(self, dealer_id: str) -> DealerFacts | None:
        found = await self.all_facts(frozenset({dealer_id}))
        return found[0] if found else None

    async def touch(self, dealer_id: str, **moments: datetime) -> None:
        row = await self._row(dealer_id)
        for name, moment in moments.items():
            current = getattr(row, name)
            if current is None or aware(current) < moment:
                setattr(row, name, moment)

    async def cover_flow(self, dealer_id: str, until: date, uploaded_at: datetime) -> None:
        row = await self._row(dealer_id)
        if row.flow_covered_until is None or row.flow_covered_until < until:
            row.flow_covered_until = until
        await self.touch(dealer_id, last_flow_upload_at=uploaded_at)

    async def set_flagged(self, dealer_id: str, status: str) -> None:
        (await self._row(dealer_id)).flagged = status

    async def put_registration(self, registration_id: str, dealer_id: str, is_open: bool,
                               protected_until: datetime | None) -> None:
        row = await self.session.get(RegistrationRow, registration_id)
        if row is None:
            self.session.add(RegistrationRow(id=registration_id, dealer_id=dealer_id,
                                             open=is_open, protected_until=protected_until,
                                             expiry_noticed=False))
            return
        if protected_until is not None and (row.protected_until is None
                                            or aware(row.protected_until) != protected_until):
            row.expiry_noticed = False  # renewed: tell again before the new end
            row.protected_until = protected_until
        row.open = is_open

    async def expiring(self, before: datetime) -> list[tuple[str, str, datetime]]:
        rows = await self.session.execute(select(
            RegistrationRow.id, RegistrationRow.dealer_id, RegistrationRow.protected_until)
            .where(RegistrationRow.open.is_(True), RegistrationRow.expiry_noticed.is_(False),
                   RegistrationRow.protected_until.is_not(None),
                   RegistrationRow.protected_until < before)
            .order_by(RegistrationRow.protected_until).limit(500))
        return [(r, d, aware(until)) for r, d, until in rows.all()]

    async def expiry_noticed(self, registration_id: str) -> None:
        await self.session.execute(update(RegistrationRow).where(
            RegistrationRow.id == registration_id).values(expiry_noticed=True))

    async def put_statement(self, statement_id: str, dealer_id: str, issued_at: datetime,
                            confirmed: bool) -> None:
        await self.session.merge(StatementRow(id=statement_id, dealer_id=dealer_id,
                                              issued_at=issued_at, confirmed=confirmed))

    async def policy(self) -> HealthPolicy:
        row = await self.session.get(HealthPolicyRow, 1)
        return HealthPolicy(**row.policy) if row is not None else HealthPolicy()

    async def set_policy(self, policy: HealthPolicy) -> None:
        await self.session.merge(HealthPolicyRow(id=1, policy=asdict(policy)))


class SqlInbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _item(row: InboxItemRow) -> InboxItem:
        return InboxItem(row.id, row.user_id, row.kind, row.title, row.body, row.ref_type,
                         row.ref_id, row.dealer_id, row.source_key, aware(row.created_at),
                         _aware(row.read_at))

    async def add(self, item: InboxItem) -> bool:
        exists = await self.session.scalar(select(InboxItemRow.id).where(
            InboxItemRow.user_id == item.user_id, InboxItemRow.source_key == item.source_key))
        if exists is not None:
            return False
        self.session.add(InboxItemRow(**{f.name: getattr(item, f.name) for f in fields(item)}))
        await self.session.flush()
        return True

    async def list(self, user_id: str, unread_only: bool, page: PageRequest) -> Page[InboxItem]:
        query = select(InboxItemRow).where(InboxItemRow.user_id == user_id)
        if unread_only:
            query = query.where(InboxItemRow.read_at.is_(None))
        query = query.order_by(InboxItemRow.created_at.desc(), InboxItemRow.id.desc())
        found = await fetch_page(self.session, query, page, count=True, keyset=True)
        return found.map(self._item)

    async def unread_count(self, user_id: str) -> int:
        return await self.session.scalar(select(func.count()).where(
            InboxItemRow.user_id == user_id, InboxItemRow.read_at.is_(None)))

    async def owned(self, user_id: str, ids: list[str]) -> set[str]:
        return set(await self.session.scalars(select(InboxItemRow.id).where(
            InboxItemRow.user_id == user_id, InboxItemRow.id.in_(ids))))

    async def mark_read(self, user_id: str, ids: list[str] | None, at: datetime) -> int:
        condition = and_(InboxItemRow.user_id == user_id, InboxItemRow.read_at.is_(None))
        if ids is not None:
            condition = and_(condition, InboxItemRow.id.in_(ids))
        result = await self.session.execute(update(InboxItemRow).where(condition)
                                            .values(read_at=at))
        return result.rowcount or 0
