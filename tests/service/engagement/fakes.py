"""In-memory engagement repositories and unit of work for the service-layer tests: the
same contracts as adapters/repositories.py, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from services.engagement.domain.health import DealerFacts, HealthPolicy, HealthStatus
from services.engagement.domain.inbox import InboxItem
from services.engagement.domain.people import Person
from services.engagement.domain.sop import AssigneeRole, SopRule, Task, TaskStatus
from services.engagement.usecases.ports import Deps, TaskFilter
from shared.errors import check_version
from shared.pagination import Page, PageRequest, page_of_all
from shared.testing import FakeClock, FakeScopes, FakeUnitOfWork, SequentialIds


@dataclass
class FakeRules:
    rules: dict[str, SopRule] = field(default_factory=dict)

    async def add(self, rule):
        self.rules[rule.id] = rule

    async def list(self, page: PageRequest) -> Page:
        return page_of_all(list(self.rules.values()), page)

    async def get(self, rule_id):
        return self.rules.get(rule_id)

    async def set_active(self, rule, active):
        check_version(f"SOP rule {rule.id}", rule.version, self.rules[rule.id].version)
        self.rules[rule.id] = replace(rule, active=active, version=rule.version + 1)
        return rule.version + 1

    async def triggered_by(self, signal):
        return [r for r in self.rules.values() if r.trigger == signal and r.active]

    async def closed_by(self, signal):
        return [r for r in self.rules.values() if r.closing == signal]


@dataclass
class FakeTasks:
    tasks: dict[str, Task] = field(default_factory=dict)

    async def add(self, task):
        if any(t.rule_id == task.rule_id and t.subject_id == task.subject_id
               for t in self.tasks.values()):
            return False
        self.tasks[task.id] = task
        return True

    async def update(self, task):
        self.tasks[task.id] = task

    async def open_about(self, subject_id, rule_ids):
        return [t for t in self.tasks.values() if t.subject_id == subject_id
                and t.rule_id in rule_ids and t.status is TaskStatus.OPEN]

    async def due(self, now, limit):
        late = [t for t in self.tasks.values()
                if t.status is TaskStatus.OPEN and not t.overdue and t.due_at < now]
        return sorted(late, key=lambda t: t.due_at)[:limit]

    async def matching(self, where: TaskFilter):
        return [t for t in self.tasks.values() if
                (where.dealer_ids is None or t.dealer_id in where.dealer_ids)
                and (not where.assignee_user_id or t.assignee_user_id == where.assignee_user_id)
                and (not where.dealer_role_only or t.assignee_role is AssigneeRole.DEALER)
                and (not where.status or t.status.value == where.status)
                and (not where.overdue_only or t.overdue)
                and (not where.rule_id or t.rule_id == where.rule_id)]

    async def list(self, where, page):
        found = sorted(await self.matching(where),
                       key=lambda t: (t.status is not TaskStatus.OPEN, not t.overdue, t.due_at))
        return page_of_all(found, page)


@dataclass
class FakeDirectory:
    people: dict[str, Person] = field(default_factory=dict)
    units: dict[str, tuple[str, str, str, datetime | None]] = field(default_factory=dict)
    assignments: set[tuple[str, str, str]] = field(default_factory=set)

    async def put_person(self, person):
        self.people[person.user_id] = person

    async def person(self, user_id):
        return self.people.get(user_id)

    async def staff_of(self, dealer_id):
        return sorted(p.user_id for p in self.people.values()
                      if p.dealer_id == dealer_id and p.active)

    async def with_role(self, role, org_unit_ids=None):
        return sorted(p.user_id for p in self.people.values() if p.active and role in p.roles
                      and (org_unit_ids is None or p.org_unit_id in org_unit_ids))

    async def put_org_unit(self, unit_id, kind, name, region_code, created_at):
        known = self.units.get(unit_id)
        self.units[unit_id] = (kind, name, region_code,
                               created_at or (known[3] if known else None))

    async def units_of_region(self, region_code):
        return frozenset(i for i, (kind, _, region, _) in self.units.items()
                         if region == region_code and kind != "dealer")

    async def assign(self, manager, dealer, line):
        self.assignments.add((manager, dealer, line))

    async def unassign(self, manager, dealer, line):
        self.assignments.discard((manager, dealer, line))

    async def managers_of(self, dealer_id):
        return sorted({m for m, d, _ in self.assignments if d == dealer_id
                       and (m not in self.people or self.people[m].active)})

    async def dealers_of(self, manager):
        return frozenset(d for m, d, _ in self.assignments if m == manager)

    async def names(self, ids):
        found = {i: p.display_name for i, p in self.people.items() if i in ids}
        found.update({i: u[1] for i, u in self.units.items() if i in ids})
        return {k: v for k, v in found.items() if v}


@dataclass
class FakeHealth:
    facts_of: dict[str, dict] = field(default_factory=dict)
    registrations: dict[str, dict] = field(default_factory=dict)
    statements: dict[str, tuple[str, datetime, bool]] = field(default_factory=dict)
    current_policy: HealthPolicy = field(default_factory=HealthPolicy)
    directory: FakeDirectory | None = None

    def _row(self, dealer_id):
        return self.facts_of.setdefault(dealer_id, {"flagged": HealthStatus.HEALTHY})

    async def all_facts(self, dealer_ids):
        units = self.directory.units
        result = []
        for dealer_id in sorted(i for i, u in units.items() if u[0] == "dealer"):
            if dealer_ids is not None and dealer_id not in dealer_ids:
                continue
            _, name, region, created = units[dealer_id]
            row = self.facts_of.get(dealer_id, {})
            result.append(DealerFacts(
                dealer_id, name, region, created,
                tuple(await self.directory.managers_of(dealer_id)),
                row.get("last_login_at"), row.get("last_order_at"),
                row.get("last_flow_upload_at"), row.get("flow_covered_until"),
                sum(1 for r in self.registrations.values()
                    if r["dealer_id"] == dealer_id and r["open"]),
                tuple(sorted(issued for d, issued, confirmed in self.statements.values()
                             if d == dealer_id and not confirmed)),
                row.get("flagged", HealthStatus.HEALTHY)))
        return result

    async def facts(self, dealer_id):
        found = await self.all_facts(frozenset({dealer_id}))
        return found[0] if found else None

    async def touch(self, dealer_id, **moments):
        row = self._row(dealer_id)
        for name, moment in moments.items():
            if row.get(name) is None or row[name] < moment:
                row[name] = moment

    async def cover_flow(self, dealer_id, until: date, uploaded_at):
        row = self._row(dealer_id)
        if row.get("flow_covered_until") is None or row["flow_covered_until"] < until:
            row["flow_covered_until"] = until
        await self.touch(dealer_id, last_flow_upload_at=uploaded_at)

    async def set_flagged(self, dealer_id, status):
        self._row(dealer_id)["flagged"] = HealthStatus(status)

    async def put_registration(self, registration_id, dealer_id, is_open, protected_until):
        known = self.registrations.get(registration_id)
        if known is None:
            self.registrations[registration_id] = {
                "dealer_id": dealer_id, "open": is_open, "until": protected_until,
                "noticed": False}
            return
        if protected_until is not None and known["until"] != protected_until:
            known.update(until=protected_until, noticed=False)
        known["open"] = is_open

    async def expiring(self, before):
        return sorted(((i, r["dealer_id"], r["until"]) for i, r in self.registrations.items()
                       if r["open"] and not r["noticed"] and r["until"] is not None
                       and r["until"] < before), key=lambda found: found[2])

    async def expiry_noticed(self, registration_id):
        self.registrations[registration_id]["noticed"] = True

    async def put_statement(self, statement_id, dealer_id, issued_at, confirmed):
        self.statements[statement_id] = (dealer_id, issued_at, confirmed)

    async def policy(self):
        return self.current_policy

    async def set_policy(self, policy):
        self.current_policy = policy


@dataclass
class FakeInbox:
    items: dict[str, InboxItem] = field(default_factory=dict)

    async def add(self, item):
        if any(i.user_id == item.user_id and i.source_key == item.source_key
               for i in self.items.values()):
            return False
        self.items[item.id] = item
        return True

    async def list(self, user_id, unread_only, page):
        mine = [i for i in self.items.values() if i.user_id == user_id
                and not (unread_only and i.read)]
        return page_of_all(sorted(mine, key=lambda i: (i.created_at, i.id), reverse=True), page)

    async def unread_count(self, user_id):
        return sum(1 for i in self.items.values() if i.user_id == user_id and not i.read)

    async def owned(self, user_id, ids):
        return {i for i in ids if i in self.items and self.items[i].user_id == user_id}

    async def mark_read(self, user_id, ids, at):
        marked = 0
        for item in list(self.items.values()):
            if item.user_id == user_id and not item.read and (ids is None or item.id in ids):
                self.items[item.id] = replace(item, read_at=at)
                marked += 1
        return marked


class FakeEngagementUnitOfWork(FakeUnitOfWork):
    repositories = ("rules", "tasks", "directory", "health", "inbox")

    def __init__(self) -> None:
        super().__init__()
        self.rules = FakeRules()
        self.tasks = FakeTasks()
        self.directory = FakeDirectory()
        self.health = FakeHealth()
        self.inbox = FakeInbox()

    def _open(self, write):
        opened = super()._open(write)
        self.health.directory = self.directory
        return opened

    def _close(self):
        super()._close()
        self.health.directory = self.directory


def make_deps() -> Deps:
    uow = FakeEngagementUnitOfWork()
    uow.health.directory = uow.directory
    return Deps(uow=lambda: uow, uow_in=lambda _session: uow, clock=FakeClock(),
                ids=SequentialIds(), scopes=FakeScopes())
