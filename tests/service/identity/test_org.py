"""The org tree on in-memory collaborators: regions and dealers, tiers, platform dealers
and sub-dealers, territories and derived tags; bad input names its field and leaves
nothing behind; every change is audited and announced."""

from __future__ import annotations

import json

import pytest

from services.identity.domain.model import OrgUnitFilter
from services.identity.domain.rules import OrgKind, Role, Tier
from services.identity.usecases import org
from shared.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED, TAGS_CHANGED
from shared.pagination import PageRequest
from tests.service.identity.fakes import Org
from tests.world import credit_code


def fields_of(error) -> list[str]:
    return [v.field for v in error.value.violations]


async def change(world: Org, unit, reason: str = "", **values):
    return await org.update_org_unit(
        org.OrgUnitChange(unit.id, tuple(values), reason=reason, **values), **world.kw)


async def test_dealers_get_their_region_and_derived_tags():
    world = await Org.start()
    east = await world.region("east", "华东")
    assert east.parent_id == (await world.hq()).id and east.derived_tags == ()
    shanghai = await world.dealer(east, product_lines=("A系列", "B系列"))
    assert shanghai.region_code == "east"
    assert shanghai.derived_tags == ("华东-上海-一级-A系列", "华东-上海-一级-B系列")
    platform = await world.dealer(east, tier=Tier.PLATFORM,
                                  division_codes=("310101", "310104"))
    assert platform.derived_tags == ("华东-上海-平台商-A系列",)
    sub = await world.dealer(east, tier=Tier.TWO, platform_dealer_id=platform.id,
                             shared_with_platform=True, division_codes=("320500",))
    assert sub.derived_tags == ("华东-苏州-二级-A系列",) and sub.shared_with_platform
    # Placed by region code when no parent is named; its own city wins over territory.
    placed = await org.create_org_unit(org.NewOrgUnit(
        OrgKind.DEALER, "深圳经销商", region_code="east", credit_code=credit_code(90),
        tier=Tier.ONE, division_codes=("440305",), product_lines=("A系列",),
        city_code="310000", custom_tags=("重点", "重点")), **world.kw)
    assert placed.parent_id == east.id and placed.custom_tags == ("重点",)
    assert placed.derived_tags == ("华东-上海-一级-A系列",)

    created = world.uow.published_of(ORG_UNIT_CREATED)
    assert [e.org_unit.id for e in created][-4:] == [shanghai.id, platform.id, sub.id,
                                                     placed.id]
    entry = next(e for e in world.uow.audit.entries if e.target_id == sub.id)
    assert (entry.action, entry.actor) == ("org_unit.create", world.admin.subject)
    assert json.loads(entry.after_json)["platform_dealer_id"] == platform.id


@pytest.mark.parametrize(("values", "field"), [
    ({"credit_code": "91310000MA1000001X"}, "credit_code"),
    ({"division_codes": ("310000", "999999")}, "division_codes[1]"),
    ({"city_code": "000000"}, "city_code"),
    ({"tier": None}, "tier"),
    ({"product_lines": ()}, "product_lines"),
    ({"custom_tags": ("有 空格",)}, "custom_tags[0]"),
    ({"region_code": "nowhere", "parent_id": ""}, "region_code"),
])
async def test_a_bad_dealer_names_its_field_and_nothing_is_written(values, field):
    world = await Org.start()
    east = await world.region("east", "华东")
    before = dict(world.uow.org_units.units)
    new = dict(kind=OrgKind.DEALER, name="坏数据", parent_id=east.id,
               credit_code=credit_code(50), tier=Tier.ONE, division_codes=("310000",),
               product_lines=("A系列",))
    new.update(values)
    with pytest.raises(InvalidArgument) as error:
        await org.create_org_unit(org.NewOrgUnit(**new), **world.kw)
    assert field in fields_of(error)
    assert world.uow.org_units.units == before


async def test_duplicates_and_misplaced_fields_are_refused():
    world = await Org.start()
    east = await world.region("east", "华东")
    dealer = await world.dealer(east)
    with pytest.raises(AlreadyExists) as error:
        await world.dealer(east, credit_code=dealer.credit_code)
    assert fields_of(error) == ["credit_code"]
    with pytest.raises(AlreadyExists) as error:
        await world.region("east", "另一个华东")
    assert fields_of(error) == ["region_code"]
    with pytest.raises(InvalidArgument) as error:
        await org.create_org_unit(org.NewOrgUnit(OrgKind.REGION, "华南", region_code="south",
                                                 tier=Tier.ONE), **world.kw)
    assert fields_of(error) == ["tier"]
    with pytest.raises(InvalidArgument) as error:
        await org.create_org_unit(org.NewOrgUnit(OrgKind.HQ, "第二总部"), **world.kw)
    assert fields_of(error) == ["kind"]
    with pytest.raises(InvalidArgument) as error:  # a dealer belongs to a region
        await world.dealer(dealer)
    assert fields_of(error) == ["parent_id"]


async def test_platform_dealers_and_sub_dealers():
    world = await Org.start()
    east = await world.region("east", "华东")
    plain = await world.dealer(east)
    platform = await world.dealer(east, tier=Tier.PLATFORM)
    sub = await world.dealer(east, tier=Tier.TWO, platform_dealer_id=platform.id)
    for values, field in (
            ({"platform_dealer_id": plain.id}, "platform_dealer_id"),  # not a platform dealer
            ({"platform_dealer_id": sub.id}, "platform_dealer_id"),  # a sub-dealer's sub
            ({"platform_dealer_id": platform.id, "tier": Tier.PLATFORM}, "tier"),
            ({"platform_dealer_id": east.id}, "platform_dealer_id")):
        with pytest.raises(InvalidArgument) as error:
            await world.dealer(east, **values)
        assert fields_of(error) == [field], values
    # The platform dealer keeps its tier while it has sub-dealers; the sub-dealer may not
    # move under a dealer that is not a platform dealer.
    with pytest.raises(InvalidArgument) as error:
        await change(world, platform, tier="tier1")
    assert fields_of(error) == ["tier"]
    with pytest.raises(InvalidArgument) as error:
        await change(world, sub, platform_dealer_id=plain.id)
    assert fields_of(error) == ["platform_dealer_id"]
    # Detached, it may; then the former platform dealer may become tier one.
    await change(world, sub, platform_dealer_id="", shared_with_platform=True)
    assert (await world.uow.org_units.get(sub.id)).shared_with_platform is False
    demoted = await change(world, platform, tier="tier1")
    assert demoted.derived_tags == ("华东-上海-一级-A系列",)


async def test_the_tree_has_no_cycles_and_hq_no_parent():
    world = await Org.start()
    east = await world.region("east", "华东")
    jiangsu = await world.region("js", "江苏片区", parent_id=east.id)
    with pytest.raises(InvalidArgument) as error:
        await change(world, east, parent_id=jiangsu.id)
    assert fields_of(error) == ["parent_id"] and "cycle" in error.value.message
    with pytest.raises(InvalidArgument) as error:
        await change(world, await world.hq(), parent_id=east.id)
    assert "parent_id" in fields_of(error)
    with pytest.raises(InvalidArgument) as error:
        await change(world, east, division_codes=("310000",))
    assert fields_of(error) == ["division_codes"]
    with pytest.raises(InvalidArgument) as error:
        await org.update_org_unit(org.OrgUnitChange(east.id, ("name", "derived_tags")),
                                  **world.kw)
    assert fields_of(error) == ["update_mask.paths[1]"]
    assert (await world.uow.org_units.get(east.id)).parent_id == (await world.hq()).id


async def test_a_change_is_audited_retagged_and_announced_only_when_something_changed():
    world = await Org.start()
    east = await world.region("east", "华东")
    dealer = await world.dealer(east, product_lines=("A系列", "B系列"))
    world.deps.clock.advance(minutes=5)
    moved = await change(world, dealer, reason="降级", tier="tier2")
    assert moved.derived_tags == ("华东-上海-二级-A系列", "华东-上海-二级-B系列")
    assert moved.updated_at == world.deps.clock.now()
    [entry] = [e for e in world.uow.audit.entries if e.action == "org_unit.update"]
    assert entry.reason == "降级" and json.loads(entry.before_json)["tier"] == "tier1"
    assert json.loads(entry.after_json)["tier"] == "tier2"
    [updated] = world.uow.published_of(ORG_UNIT_UPDATED)
    assert {"tier", "derived_tags"} <= set(updated.changed_fields)
    assert list(updated.previous.derived_tags) == ["华东-上海-一级-A系列", "华东-上海-一级-B系列"]
    [retagged] = world.uow.published_of(TAGS_CHANGED)
    assert set(retagged.removed) == {"华东-上海-一级-A系列", "华东-上海-一级-B系列"}

    commits = world.uow.commits
    same = await change(world, moved, tier="tier2", name=f"  {moved.name} ")
    assert same == moved and world.uow.commits == commits


async def test_renaming_or_recoding_a_region_moves_its_dealers_along():
    world = await Org.start()
    south = await world.region("south", "华南")
    dealer = await world.dealer(south, division_codes=("440305",))
    await change(world, south, name="华南大区", region_code="sc")
    moved = await world.uow.org_units.get(dealer.id)
    assert moved.region_code == "sc" and moved.derived_tags == ("华南大区-深圳-一级-A系列",)
    announced = {e.org_unit.id: e for e in world.uow.published_of(ORG_UNIT_UPDATED)}
    assert announced[dealer.id].org_unit.region_code == "sc"
    assert set(announced[dealer.id].changed_fields) == {"region_code", "derived_tags"}
    # A dealer cannot pick its region code: it follows its parent.
    with pytest.raises(InvalidArgument) as error:
        await change(world, moved, region_code="east")
    assert fields_of(error) == ["region_code"]


async def test_only_hq_admins_change_the_org_and_others_see_only_their_part():
    world = await Org.start()
    east = await world.region("east", "华东")
    south = await world.region("south", "华南")
    mine = await world.dealer(east)
    other = await world.dealer(south, division_codes=("440300",))
    await world.user("rm.east", (Role.REGION_MANAGER,), east)
    await world.user("mine.sales", (Role.DEALER_SALES,), mine)
    manager = await world.as_user("rm.east")
    staff = await world.as_user("mine.sales")
    uow = world.uow
    with pytest.raises(PermissionDenied):
        await org.create_org_unit(org.NewOrgUnit(OrgKind.REGION, "华北", region_code="north"),
                                  who=manager, uow=uow, clock=world.deps.clock,
                                  ids=world.deps.ids)
    # Out of sight is NOT_FOUND, in sight but not an admin PERMISSION_DENIED.
    with pytest.raises(NotFound):
        await org.update_org_unit(org.OrgUnitChange(other.id, ("name",), name="x"),
                                  who=manager, uow=uow, clock=world.deps.clock,
                                  ids=world.deps.ids)
    with pytest.raises(PermissionDenied):
        await org.update_org_unit(org.OrgUnitChange(mine.id, ("name",), name="x"),
                                  who=manager, uow=uow, clock=world.deps.clock,
                                  ids=world.deps.ids)
    assert (await org.get_org_unit(mine.id, who=manager, uow=uow)).id == mine.id
    with pytest.raises(NotFound):
        await org.get_org_unit(other.id, who=staff, uow=uow)

    async def listed(who, **query) -> set[str]:
        page = await org.list_org_units(OrgUnitFilter(**query), PageRequest(), who=who,
                                        uow=uow)
        return {unit.id for unit in page.items}

    hq = await world.hq()
    assert await listed(staff) == {mine.id}
    assert await listed(manager) == {hq.id, east.id, south.id, mine.id}
    assert await listed(world.admin, kind=OrgKind.DEALER) == {mine.id, other.id}
    assert await listed(world.admin, region_code="south", kind=OrgKind.DEALER) == {other.id}
    assert await listed(world.admin, text=other.credit_code.lower()) == {other.id}
    # Naming units by id (a chart's dealers) stays within sight.
    both = frozenset({mine.id, other.id})
    assert await listed(world.admin, ids=both) == {mine.id, other.id}
    assert await listed(manager, ids=both) == {mine.id}
    assert await listed(staff, ids=frozenset({other.id})) == set()


async def test_org_units_page_in_creation_order():
    world = await Org.start()
    east = await world.region("east", "华东")
    dealers = [await world.dealer(east) for _ in range(5)]
    first = await org.list_org_units(OrgUnitFilter(kind=OrgKind.DEALER), PageRequest(3),
                                     who=world.admin, uow=world.uow)
    rest = await org.list_org_units(OrgUnitFilter(kind=OrgKind.DEALER),
                                    PageRequest(3, first.next_token), who=world.admin,
                                    uow=world.uow)
    assert [u.id for u in first.items + rest.items] == [d.id for d in dealers]
    assert first.total == 5 and not rest.next_token
