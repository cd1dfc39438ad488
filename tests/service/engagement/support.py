"""A small world for the engagement service-layer tests: a region with its manager, a
channel manager assigned to two dealers, their staff, and an HQ admin."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.engagement.domain.people import Person
from services.engagement.domain.signals import Signal
from services.engagement.domain.sop import AssigneeRole, SopRule
from services.engagement.usecases import directory, sop
from shared.context import Principal
from tests.service.engagement.fakes import make_deps

ADMIN = Principal(subject="user:admin", user_id="admin", roles=frozenset({"hq_admin"}))
CM = Principal(subject="user:cm", user_id="cm", roles=frozenset({"channel_manager"}))
REGION = Principal(subject="user:rm", user_id="rm", roles=frozenset({"region_manager"}))
EAST_STAFF = Principal(subject="user:east-1", user_id="east-1",
                       roles=frozenset({"dealer_sales"}), dealer_id="east")
SOUTH_STAFF = Principal(subject="user:south-1", user_id="south-1",
                        roles=frozenset({"dealer_admin"}), dealer_id="south")


async def build_world(joined: datetime | None = None):
    """Deps whose directory knows the people above; ``joined`` is when the dealers were
    created (default: long ago)."""
    deps = make_deps()
    uow = deps.uow()
    joined = joined or deps.clock.now() - timedelta(days=400)
    await directory.record_org_unit("hq", "hq", "总部", "", None, uow=uow)
    await directory.record_org_unit("r-east", "region", "华东大区", "east", None, uow=uow)
    await directory.record_org_unit("east", "dealer", "上海东方医疗", "east", joined, uow=uow)
    await directory.record_org_unit("south", "dealer", "深圳南方器械", "south", joined, uow=uow)
    for person in (Person("admin", "总部管理员", frozenset({"hq_admin"}), "hq"),
                   Person("cm", "王经理", frozenset({"channel_manager"}), "hq"),
                   Person("rm", "李总", frozenset({"region_manager"}), "r-east"),
                   Person("east-1", "东方销售", frozenset({"dealer_sales"}), "east", "east"),
                   Person("east-2", "东方管理员", frozenset({"dealer_admin"}), "east", "east"),
                   Person("south-1", "南方管理员", frozenset({"dealer_admin"}), "south",
                          "south")):
        await directory.record_person(person, uow=uow)
    await directory.record_assignments([("cm", "east", "A系列"), ("cm", "south", "A系列")], [],
                                       uow=uow)
    deps.scopes.allow(ADMIN, all_dealers=True)
    deps.scopes.allow(CM, ["east", "south"])
    deps.scopes.allow(REGION, ["east"])
    deps.scopes.allow(EAST_STAFF, ["east"])
    deps.scopes.allow(SOUTH_STAFF, ["south"])
    return deps


async def add_rule(deps, name: str, trigger: str, closing: str, minutes: int,
                   role: AssigneeRole = AssigneeRole.DEALER) -> SopRule:
    return await sop.create_rule(SopRule("", name, trigger, closing, minutes, role),
                                 who=ADMIN, uow=deps.uow(), clock=deps.clock, ids=deps.ids)


_events = iter(range(1, 10**6))


async def happen(deps, name: str, subject_id: str, dealer_id: str = "",
                 at: datetime | None = None, event_id: str = "") -> None:
    """A signal as the consumers hand it over."""
    signal = Signal(name, subject_id, dealer_id, at or deps.clock.now(),
                    event_id or f"event-{next(_events)}")
    await sop.observe([signal], uow=deps.uow(), ids=deps.ids)
