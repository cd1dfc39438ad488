"""Channel-manager assignments and transfer, ResolveScope for every kind of principal,
the scope cache, and the audit trail, on in-memory collaborators."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.identity.domain.model import AssignmentFilter, AuditFilter
from services.identity.domain.rules import Role, Tier
from services.identity.usecases import assignments, audit, org, scope, users
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import ASSIGNMENT_CHANGED
from shared.pagination import PageRequest
from tests.service.identity.fakes import Org


async def channel_world() -> tuple[Org, dict]:
    world = await Org.start()
    hq = await world.hq()
    east = await world.region("east", "华东")
    south = await world.region("south", "华南")
    zj = await world.region("zj", "浙江片区", parent_id=east.id)
    units = {"hq": hq, "east": east, "south": south, "zj": zj}
    units["d1"] = await world.dealer(east, product_lines=("A系列", "B系列"))
    units["d2"] = await world.dealer(south, division_codes=("440300",))
    units["platform"] = await world.dealer(east, tier=Tier.PLATFORM)
    units["shared"] = await world.dealer(east, tier=Tier.TWO, shared_with_platform=True,
                                         platform_dealer_id=units["platform"].id)
    units["private"] = await world.dealer(east, tier=Tier.TWO,
                                          platform_dealer_id=units["platform"].id)
    units["hangzhou"] = await world.dealer(zj, division_codes=("330100",))
    for name, roles, unit in (
            ("cm.one", (Role.CHANNEL_MANAGER,), hq), ("cm.two", (Role.CHANNEL_MANAGER,), hq),
            ("fin.user", (Role.FINANCE,), hq), ("cs.user", (Role.CUSTOMER_SERVICE,), hq),
            ("erp.feed", (Role.ERP,), hq), ("rm.east", (Role.REGION_MANAGER,), east),
            ("platform.sales", (Role.DEALER_SALES,), units["platform"]),
            ("shared.admin", (Role.DEALER_ADMIN,), units["shared"]),
            ("d1.sales", (Role.DEALER_SALES,), units["d1"])):
        await world.user(name, roles, unit)
    return world, units


async def assign(world: Org, manager: str, dealers, lines=(), who=None, reason=""):
    manager_id = (await world.uow.users.by_username(manager)).id if manager else ""
    return await assignments.assign_dealers(manager_id, [d.id for d in dealers], list(lines),
                                            reason, **{**world.kw, "who": who or world.admin})


async def resolve(world: Org, username: str, action: str = "", product_line: str = "",
                  user_id: str = "", who: Principal | None = None):
    return await scope.resolve_scope(
        user_id, action, product_line, who=who or await world.as_user(username),
        uow=world.uow, scope_cache=world.deps.scope_cache)


async def test_assignments_are_per_product_line_and_checked():
    world, u = await channel_world()
    added = await assign(world, "cm.one", [u["d1"]], ["B系列"], reason="分配")
    assert [(a.dealer_id, a.product_line) for a in added] == [(u["d1"].id, "B系列")]
    with pytest.raises(InvalidArgument) as error:
        await assign(world, "cm.one", [u["d2"]], ["Z系列"])
    assert [v.field for v in error.value.violations] == ["product_lines[0]"]
    with pytest.raises(InvalidArgument) as error:
        await assign(world, "fin.user", [u["d2"]])
    assert [v.field for v in error.value.violations] == ["manager_user_id"]
    with pytest.raises(InvalidArgument) as error:
        await assign(world, "cm.one", [])
    assert [v.field for v in error.value.violations] == ["dealer_ids"]
    # All lines the dealer carries; an assignment held already comes back as it was.
    both = await assign(world, "cm.one", [u["d1"], u["d2"]])
    assert {(a.dealer_id, a.product_line) for a in both} == {
        (u["d1"].id, "A系列"), (u["d1"].id, "B系列"), (u["d2"].id, "A系列")}
    assert next(a for a in both if a.product_line == "B系列") == added[0]
    events = world.uow.published_of(ASSIGNMENT_CHANGED)
    assert [len(e.added) for e in events] == [1, 2]
    # A region manager assigns within its region only; dealer staff not at all.
    rm = await world.as_user("rm.east")
    assert await assign(world, "cm.two", [u["hangzhou"]], who=rm)
    with pytest.raises(NotFound):
        await assign(world, "cm.two", [u["d2"]], who=rm)
    with pytest.raises(PermissionDenied):
        await assign(world, "cm.two", [u["d1"]], who=await world.as_user("d1.sales"))


async def test_scope_for_every_kind_of_principal():
    world, u = await channel_world()
    await assign(world, "cm.one", [u["d1"]], ["B系列"])
    await assign(world, "cm.one", [u["d2"]])

    async def dealers(username, **kwargs) -> set[str] | str:
        answer = await resolve(world, username, **kwargs)
        return "all" if answer.all_dealers else set(answer.dealer_ids)

    ids = {name: unit.id for name, unit in u.items()}
    assert await dealers("admin") == "all"
    assert await dealers("fin.user") == "all"
    assert await dealers("cs.user") == "all"
    assert await dealers("rm.east") == {ids["d1"], ids["platform"], ids["shared"],
                                        ids["private"], ids["hangzhou"]}
    assert await dealers("cm.one") == {ids["d1"], ids["d2"]}
    assert await dealers("cm.one", product_line="B系列") == {ids["d1"]}
    assert await dealers("cm.two") == set()
    assert await dealers("platform.sales") == {ids["platform"], ids["shared"]}
    assert await dealers("shared.admin") == {ids["shared"]}
    assert await dealers("d1.sales") == {ids["d1"]}
    assert await dealers("erp.feed", action="shipment.record") == "all"
    assert await dealers("erp.feed", action="registration.approve") == set()
    # An HQ admin may ask about another user; nobody else may.
    cm_one = await world.as_user("cm.one")
    assert (await resolve(world, "admin", user_id=cm_one.user_id)).dealer_ids == {
        ids["d1"], ids["d2"]}
    with pytest.raises(PermissionDenied):
        await resolve(world, "fin.user", user_id=cm_one.user_id)
    with pytest.raises(NotFound):
        await resolve(world, "admin", user_id="nobody")


async def test_the_scope_cache_forgets_at_every_change():
    world, u = await channel_world()
    cache = world.deps.scope_cache
    manager = await world.as_user("cm.two")
    assert (await resolve(world, "cm.two")).dealer_ids == frozenset()
    reads = world.uow.commits
    assert (await resolve(world, "cm.two")).dealer_ids == frozenset()
    generation = cache.generation
    await assign(world, "cm.two", [u["d2"]])
    assert cache.generation == generation + 1 and world.uow.commits == reads + 1
    assert (await resolve(world, "cm.two")).dealer_ids == {u["d2"].id}
    # Another replica's change (its event) clears this replica's answers too.
    world.uow.assignments.held.clear()
    assert (await resolve(world, "cm.two")).dealer_ids == {u["d2"].id}
    cache.invalidate()
    assert (await resolve(world, "cm.two")).dealer_ids == frozenset()
    # A deactivated user's token resolves to nothing at once, whatever it claims.
    await users.deactivate_user(manager.user_id, "", "", **world.kw,
                                revocations=world.deps.revocations)
    assert (await resolve(world, "", who=manager)).dealer_ids == frozenset()


async def test_transfer_and_listing_of_assignments():
    world, u = await channel_world()
    await assign(world, "cm.one", [u["d1"], u["d2"]])
    one, two = [await world.as_user(name) for name in ("cm.one", "cm.two")]
    moved = await assignments.transfer_assignments(
        one.user_id, two.user_id, [u["d2"].id], [], "区域调整", **world.kw)
    assert [(a.manager_user_id, a.dealer_id) for a in moved] == [(two.user_id, u["d2"].id)]
    [transfer] = [e for e in world.uow.published_of(ASSIGNMENT_CHANGED) if e.removed]
    assert (transfer.from_manager_user_id, transfer.to_manager_user_id) == (
        one.user_id, two.user_id)
    for bad, field in (((one.user_id, one.user_id), "to_manager_user_id"),
                       (("", two.user_id), "from_manager_user_id"),
                       ((one.user_id, (await world.as_user("fin.user")).user_id),
                        "to_manager_user_id")):
        with pytest.raises(InvalidArgument) as error:
            await assignments.transfer_assignments(*bad, [], [], "", **world.kw)
        assert [v.field for v in error.value.violations] == [field]
    with pytest.raises(PermissionDenied):
        await assignments.transfer_assignments(one.user_id, two.user_id, [], [], "", **{
            **world.kw, "who": await world.as_user("rm.east")})

    async def listed(who, **query) -> set[tuple[str, str]]:
        page = await assignments.list_assignments(
            AssignmentFilter(**query), PageRequest(), who=who, uow=world.uow)
        return {(a.manager_user_id, a.dealer_id) for a in page.items}

    assert await listed(two) == {(two.user_id, u["d2"].id)}
    assert await listed(await world.as_user("rm.east")) == {(one.user_id, u["d1"].id)}
    assert await listed(world.admin, manager_user_id=one.user_id) == {
        (one.user_id, u["d1"].id)}
    removed = await assignments.unassign_dealers(two.user_id, [u["d2"].id], [], "", **world.kw)
    assert len(removed) == 1 and await listed(two) == set()


async def test_the_audit_trail_records_who_changed_what():
    world, u = await channel_world()
    await assign(world, "cm.one", [u["d1"]], reason="新客户")
    one, two = [await world.as_user(name) for name in ("cm.one", "cm.two")]
    world.deps.clock.advance(hours=1)
    await users.deactivate_user(one.user_id, two.user_id, "离职", **world.kw,
                                revocations=world.deps.revocations)

    async def trail(**which) -> list:
        page = await audit.list_audit_events(AuditFilter(**which), PageRequest(500),
                                             who=world.admin, uow=world.uow)
        return page.items

    [handover] = await trail(action="assignment.transfer")
    assert (handover.target_id, handover.reason, handover.actor) == (
        one.user_id, "离职", world.admin.subject)
    assert json.loads(handover.before_json)["manager_user_id"] == one.user_id
    assert json.loads(handover.after_json)["manager_user_id"] == two.user_id
    everything = await trail()
    assert {e.action for e in everything[:2]} == {"assignment.transfer",  # newest first
                                                  "user.deactivate"}
    assert {"org_unit.create", "user.create", "assignment.assign", "assignment.transfer",
            "user.deactivate"} <= {e.action for e in everything}
    recent = await trail(occurred_after=world.deps.clock.now() - timedelta(minutes=1))
    assert {e.action for e in recent} == {"assignment.transfer", "user.deactivate"}
    assert await trail(occurred_before=world.deps.clock.now() - timedelta(minutes=1)) == [
        e for e in everything if e not in recent]
    with pytest.raises(PermissionDenied):
        await audit.list_audit_events(AuditFilter(), PageRequest(),
                                      who=await world.as_user("fin.user"), uow=world.uow)
    # A change that changes nothing leaves no trace.
    before = len(world.uow.audit.entries)
    await org.update_org_unit(org.OrgUnitChange(u["d1"].id, ("name",), name=u["d1"].name),
                              **world.kw)
    assert len(world.uow.audit.entries) == before
