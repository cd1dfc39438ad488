"""The material library on in-memory collaborators: publishing to an audience, versions,
search, downloads recorded for dealers only, usage per dealer in scope, bad input."""

from __future__ import annotations

import pytest

from services.identity.domain.audience import Node
from services.identity.domain.materials import MaterialKind, NewFile, NewMaterial
from services.identity.usecases import materials, tags
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.identity import MATERIAL_DOWNLOADED, MATERIAL_PUBLISHED
from shared.pagination import PageRequest
from tests.service.identity.test_notices import World

PDF_V1 = b"%PDF-1.4 handbook v1"
PDF_V2 = b"%PDF-1.4 handbook v2"


def new_material(expression: Node | None = None, dealer_ids=(), **fields) -> NewMaterial:
    values = dict(title="A系列产品手册", description="适应症、规格与注意事项",
                  kind=MaterialKind.PRODUCT_DOCUMENT, expression=expression,
                  dealer_ids=tuple(dealer_ids),
                  file=NewFile("A系列产品手册.pdf", "application/pdf", PDF_V1))
    values.update(fields)
    return NewMaterial(**values)


async def publish(world: World, new: NewMaterial, who=None):
    return await materials.publish_material(new, ids=world.org.deps.ids,
                                            **world.kw(who or world.org.admin))


def kw(world: World, who) -> dict:
    return dict(who=who, uow=world.org.uow, scope_cache=world.org.deps.scope_cache)


async def listing(world: World, who, text="", kind=None):
    return [view.material.id for view in (await materials.list_materials(
        text, kind, PageRequest(), **kw(world, who))).items]


async def test_dealers_in_the_audience_find_and_download_the_current_version():
    world = await World.start()
    material, reached = await publish(world, new_material(tag_term := Node(
        "term", kind="tag", value="华东-上海-一级-A系列")))
    assert reached == 1 and tag_term is material.audience.expression
    sh, sz = await world.who("sh.sales"), await world.who("sz.sales")
    assert await listing(world, sh) == [material.id]
    assert await listing(world, sh, text="注意事项") == [material.id]
    assert await listing(world, sh, text="价格") == []
    assert await listing(world, sh, kind=MaterialKind.TALK_TRACK) == []
    assert await listing(world, sz) == []
    with pytest.raises(NotFound):
        await materials.download(material.id, 0, **world.kw(sz))

    world.org.deps.clock.advance(days=1)
    updated = await materials.add_version(material.id, NewFile(
        "A系列产品手册-2.pdf", "application/pdf", PDF_V2, "新增规格"), **world.kw(world.org.admin))
    assert [v.number for v in updated.versions] == [1, 2]
    assert len(world.org.uow.published_of(MATERIAL_PUBLISHED)) == 2
    version, content = await materials.download(material.id, 0, **world.kw(sh))
    assert (version.number, content) == (2, PDF_V2)
    version, content = await materials.download(material.id, 1, **world.kw(sh))
    assert content == PDF_V1
    with pytest.raises(NotFound):
        await materials.download(material.id, 7, **world.kw(sh))
    [first, second] = world.org.uow.published_of(MATERIAL_DOWNLOADED)
    assert (first.version, second.version) == (2, 1)
    # HQ downloading records nothing.
    await materials.download(material.id, 0, **world.kw(world.org.admin))
    assert len(world.org.uow.materials.downloads) == 2


async def test_a_dealer_tagged_later_finds_the_material():
    world = await World.start()
    material, reached = await publish(world, new_material(Node("term", kind="tag",
                                                               value="重点客户")))
    assert reached == 0
    await tags.change_dealer_tags([world.shenzhen.id], ["重点客户"], True, **world.org.kw)
    assert await listing(world, await world.who("sz.sales")) == [material.id]


async def test_usage_per_dealer_in_scope_for_hq_and_managers_only():
    world = await World.start()
    material, _ = await publish(world, new_material(Node("term", kind="product_line",
                                                         value="A系列")))
    for username in ("sh.sales", "sh.admin", "sz.sales"):
        await materials.download(material.id, 0, **world.kw(await world.who(username)))
    await materials.download(material.id, 0, **world.kw(await world.who("sh.sales")))
    usage = (await materials.list_usage("", "", PageRequest(),
                                        **kw(world, world.org.admin))).items
    by_dealer = {u.dealer_id: (u.downloads, u.users, u.latest_version) for u in usage}
    assert by_dealer == {world.shanghai.id: (3, 2, 1), world.shenzhen.id: (1, 1, 1)}
    manager = await world.who("east.manager")
    usage = (await materials.list_usage(material.id, "", PageRequest(),
                                        **kw(world, manager))).items
    assert [u.dealer_id for u in usage] == [world.shanghai.id]
    [view] = (await materials.list_materials("", None, PageRequest(),
                                             **kw(world, manager))).items
    assert view.downloads == 3
    with pytest.raises(PermissionDenied):
        await materials.list_usage("", "", PageRequest(),
                                   **kw(world, await world.who("sh.admin")))


async def test_region_managers_publish_and_version_only_in_their_region():
    world = await World.start()
    manager = await world.who("east.manager")
    with pytest.raises(NotFound):
        await publish(world, new_material(dealer_ids=[world.shenzhen.id]), manager)
    hq_material, _ = await publish(world, new_material(dealer_ids=[world.shanghai.id]))
    with pytest.raises(PermissionDenied):
        await materials.add_version(hq_material.id, NewFile("b.pdf", "application/pdf",
                                                            PDF_V2), **world.kw(manager))
    mine, reached = await publish(world, new_material(
        Node("term", kind="product_line", value="A系列")), manager)
    assert reached == 1
    assert len((await materials.add_version(mine.id, NewFile(
        "c.pdf", "application/pdf", PDF_V2), **world.kw(manager))).versions) == 2
    with pytest.raises(PermissionDenied):
        await publish(world, new_material(dealer_ids=[world.shanghai.id]),
                      await world.who("sh.admin"))


async def test_bad_input_names_each_field_and_stores_nothing():
    world = await World.start()
    with pytest.raises(InvalidArgument) as error:
        await publish(world, new_material(title="", kind=None, file=NewFile(
            "话术.docx", "application/pdf", b"PK\x03\x04")))
    assert [v.field for v in error.value.violations] == [
        "title", "kind", "audience", "file.content_type"]
    with pytest.raises(InvalidArgument) as error:
        await publish(world, new_material(dealer_ids=[world.shanghai.id], file=None))
    assert [v.field for v in error.value.violations] == ["file"]
    assert world.org.uow.materials.materials == {}
