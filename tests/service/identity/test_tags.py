"""Custom and derived tags and audience expressions on in-memory collaborators."""

from __future__ import annotations

import pytest

from services.identity.domain.audience import Node
from services.identity.domain.model import TagKind
from services.identity.domain.rules import Role, Tier
from services.identity.usecases import org, tags
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import TAGS_CHANGED
from shared.pagination import PageRequest
from tests.service.identity.fakes import Org


def term(kind: str, value: str) -> Node:
    return Node("term", kind=kind, value=value)


async def tag(world: Org, dealers, names, add=True, who=None) -> int:
    return await tags.change_dealer_tags([d.id for d in dealers], list(names), add,
                                         **{**world.kw, "who": who or world.admin})


async def audience(world: Org, expression: Node, who=None, include_inactive=True,
                   page: PageRequest | None = None):
    return await tags.query_audience(expression, include_inactive, page or PageRequest(),
                                     who=who or world.admin, uow=world.uow,
                                     scope_cache=world.deps.scope_cache)


async def shaped_world() -> tuple[Org, dict]:
    world = await Org.start()
    east = await world.region("east", "华东")
    south = await world.region("south", "华南")
    d = {
        "shanghai": await world.dealer(east, product_lines=("A系列", "B系列")),
        "platform": await world.dealer(east, tier=Tier.PLATFORM),
        "shenzhen": await world.dealer(south, division_codes=("440305",),
                                       custom_tags=("重点客户",)),
    }
    d["sub"] = await world.dealer(east, tier=Tier.TWO, platform_dealer_id=d["platform"].id,
                                  division_codes=("320500",))
    d["east"], d["south"] = east, south
    return world, d


async def test_custom_tags_come_and_go_but_derived_tags_stay():
    world, d = await shaped_world()
    assert await tag(world, [d["shanghai"], d["platform"], d["shanghai"]], ["VIP"]) == 2
    assert await tag(world, [d["shanghai"]], ["VIP"]) == 0  # already there: no change
    [first, second] = world.uow.published_of(TAGS_CHANGED)
    assert list(first.added) == ["VIP"] and list(first.custom_tags) == ["VIP"]
    assert second.dealer_id == d["platform"].id
    with pytest.raises(InvalidArgument) as error:
        await tag(world, [d["shanghai"]], ["华东-上海-一级-A系列"], add=False)
    assert [v.field for v in error.value.violations] == ["tags"]
    assert await tag(world, [d["platform"]], ["VIP"], add=False) == 1
    assert (await world.uow.org_units.get(d["platform"].id)).custom_tags == ()
    assert [e.action for e in world.uow.audit.entries][-3:] == ["tag.add", "tag.add",
                                                                "tag.remove"]
    with pytest.raises(InvalidArgument) as error:
        await tag(world, [], ["a b"])
    assert {v.field for v in error.value.violations} == {"tags[0]", "dealer_ids"}


async def test_who_may_tag_which_dealers():
    world, d = await shaped_world()
    await world.user("rm.south", (Role.REGION_MANAGER,), d["south"])
    await world.user("cs.one", (Role.CUSTOMER_SERVICE,), await world.hq())
    manager = await world.as_user("rm.south")
    assert await tag(world, [d["shenzhen"]], ["华南重点"], who=manager) == 1
    with pytest.raises(NotFound) as error:
        await tag(world, [d["shenzhen"], d["shanghai"]], ["x"], who=manager)
    assert [v.field for v in error.value.violations] == ["dealer_ids[1]"]
    with pytest.raises(PermissionDenied):
        await tag(world, [d["shenzhen"]], ["x"], who=await world.as_user("cs.one"))
    with pytest.raises(NotFound):  # a region is not a dealer
        await tag(world, [d["south"]], ["x"])


async def test_tags_are_counted_within_the_viewers_scope():
    world, d = await shaped_world()
    await tag(world, [d["shanghai"], d["shenzhen"]], ["VIP"])

    async def listed(prefix="", kind=None, who=None, page: PageRequest | None = None):
        return await tags.list_tags(prefix, kind, page or PageRequest(),
                                    who=who or world.admin, uow=world.uow,
                                    scope_cache=world.deps.scope_cache)

    shanghai = await listed("华东-上海")
    assert [(t.name, t.kind, t.dealer_count) for t in shanghai.items] == [
        ("华东-上海-一级-A系列", TagKind.DERIVED, 1), ("华东-上海-一级-B系列", TagKind.DERIVED, 1),
        ("华东-上海-平台商-A系列", TagKind.DERIVED, 1)]
    custom = await listed(kind=TagKind.CUSTOM)
    assert {(t.name, t.dealer_count) for t in custom.items} == {("VIP", 2), ("重点客户", 1)}
    first = await listed(page=PageRequest(2))
    assert len(first.items) == 2 and first.total == 7 and first.next_token
    await world.user("rm.south", (Role.REGION_MANAGER,), d["south"])
    south = await listed(who=await world.as_user("rm.south"))
    assert {t.name for t in south.items} == {"华南-深圳-一级-A系列", "VIP", "重点客户"}


async def test_audiences_select_with_and_or_not():
    world, d = await shaped_world()
    await tag(world, [d["shanghai"]], ["VIP"])

    async def ids(expression, **kwargs) -> set[str]:
        return {unit.id for unit in (await audience(world, expression, **kwargs)).items}

    assert await ids(term("tag", "华东-上海-一级-A系列")) == {d["shanghai"].id}
    assert await ids(Node("all", (term("region_code", "east"),
                                  Node("not", (term("tier", Tier.PLATFORM),))))) == {
        d["shanghai"].id, d["sub"].id}
    assert await ids(Node("any", (term("tag", "VIP"), term("division_code", "440300")))) == {
        d["shanghai"].id, d["shenzhen"].id}
    assert await ids(term("tag_prefix", "华东-")) == {
        d["shanghai"].id, d["platform"].id, d["sub"].id}
    assert await ids(term("product_line", "B系列")) == {d["shanghai"].id}
    first = await audience(world, term("product_line", "A系列"), page=PageRequest(3))
    rest = await audience(world, term("product_line", "A系列"),
                          page=PageRequest(3, first.next_token))
    assert len(first.items) == 3 and first.total == 4 and len(rest.items) == 1
    assert not {u.id for u in first.items} & {u.id for u in rest.items}

    # A suspended dealer drops out unless inactive ones are asked for; the summaries
    # cached for audiences follow the change at once.
    await org.update_org_unit(org.OrgUnitChange(d["shanghai"].id, ("status",),
                                                status="suspended"), **world.kw)
    assert await ids(term("tag", "VIP"), include_inactive=False) == set()
    assert await ids(term("tag", "VIP")) == {d["shanghai"].id}

    with pytest.raises(InvalidArgument) as error:
        await audience(world, Node("all", (term("division_code", "999999"),)))
    assert [v.field for v in error.value.violations] == [
        "expression.all_of[0].term.division_code"]
    with pytest.raises(InvalidArgument):
        await audience(world, Node("all", ()))


async def test_an_audience_never_reaches_outside_the_viewers_scope():
    world, d = await shaped_world()
    await world.user("rm.south", (Role.REGION_MANAGER,), d["south"])
    seen = await audience(world, term("product_line", "A系列"),
                          who=await world.as_user("rm.south"))
    assert [unit.id for unit in seen.items] == [d["shenzhen"].id]
