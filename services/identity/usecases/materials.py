"""The material library (素材库). HQ admins (any dealers) and region managers (their
region's) publish files with versions to an audience like a notice's; a dealer's users
find and download the current version (each download recorded); HQ and managers see
which dealers in their scope used what. The audience is judged on the dealers as they are
now, so a dealer that joins it later finds the material too."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.identity import messages
from services.identity.domain.audience import DealerFacts
from services.identity.domain.materials import (
    Download,
    Material,
    MaterialKind,
    NewFile,
    NewMaterial,
    Usage,
    Version,
    file_problems,
    material_violations,
    usage_of,
)
from services.identity.domain.model import Visibility
from services.identity.domain.rules import HQ_ROLES, Role
from services.identity.usecases.access import as_now, visibility
from services.identity.usecases.ports import IdentityUnitOfWork, ScopeCache
from services.identity.usecases.reach import (
    dealer_facts,
    is_dealer_user,
    publishers_audience,
    region_codes_of,
)
from shared.audience import compile_expression
from shared.clock import Clock
from shared.context import Principal
from shared.errors import NotFound, PermissionDenied, collect
from shared.events.identity import MATERIAL_DOWNLOADED, MATERIAL_PUBLISHED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of_all


@dataclass(frozen=True)
class MaterialView:
    material: Material
    # For HQ and managers: downloads by the dealers in their scope.
    downloads: int = 0


def _reached(material: Material, facts: dict[str, DealerFacts], seen: Visibility) -> set[str]:
    """The dealers the material reaches that the viewer may see."""
    reaches = material.audience.predicate()
    return {dealer_id for dealer_id, dealer in facts.items()
            if (seen.everything or dealer_id in seen.dealer_ids) and reaches(dealer)}


async def _visible(uow: IdentityUnitOfWork, reader: Principal, material: Material | None,
                   facts: dict[str, DealerFacts]) -> set[str] | None:
    """The dealers through which ``reader`` may see the material (a dealer user: its own
    dealer), or None when it may not."""
    if material is None:
        return None
    if is_dealer_user(reader):
        return {reader.dealer_id} if material.reaches(facts.get(reader.dealer_id)) else None
    if not reader.roles & HQ_ROLES:
        return None
    dealers = _reached(material, facts, await visibility(uow, reader))
    return dealers if dealers or material.published_by == reader.subject else None


async def _material(uow: IdentityUnitOfWork, reader: Principal, material_id: str,
                    cache: ScopeCache) -> tuple[Material, set[str]]:
    material = await uow.materials.get(material_id) if material_id else None
    dealers = await _visible(uow, reader, material, await dealer_facts(uow, cache))
    if dealers is None:
        raise NotFound(f"material {material_id} not found")
    return material, dealers


def _version(number: int, file: NewFile, who: Principal, clock: Clock) -> Version:
    return Version(number, file.filename.strip(), file.content_type, len(file.content),
                   file.note.strip(), who.subject, clock.now())


async def publish_material(new: NewMaterial, *, who: Principal, uow: IdentityUnitOfWork,
                           clock: Clock, ids: IdSource,
                           scope_cache: ScopeCache) -> tuple[Material, int]:
    """Publish the material with its first version; returns it and how many dealers it
    reaches now."""
    collect(material_violations(new))
    if new.expression is not None:
        compile_expression(new.expression, "audience")
    async with uow:
        audience = await publishers_audience(new.expression, new.dealer_ids, "materials",
                                             who=who, uow=uow)
        material = Material(ids.new_id(), new.title.strip(), new.description.strip(),
                            new.kind, audience, (_version(1, new.file, who, clock),),
                            who.subject)
        await uow.materials.add(material, new.file.content)
        uow.events.record(MATERIAL_PUBLISHED, messages.material_published(material),
                          material.id)
        reaches = audience.predicate()
        reached = sum(1 for dealer in (await dealer_facts(uow, scope_cache)).values()
                      if reaches(dealer))
        await uow.commit()
    return material, reached


async def add_version(material_id: str, file: NewFile, *, who: Principal,
                      uow: IdentityUnitOfWork, clock: Clock,
                      scope_cache: ScopeCache) -> Material:
    """A new file becomes the current version. HQ admins, or a region manager for a
    material of their regions."""
    collect(file_problems(file))
    async with uow:
        publisher = await as_now(uow, who)
        material, _ = await _material(uow, publisher, material_id, scope_cache)
        if not publisher.has_role(Role.HQ_ADMIN):
            limits = set(material.audience.region_codes)
            if not (publisher.has_role(Role.REGION_MANAGER) and limits
                    and limits <= set(await region_codes_of(uow, publisher))):
                raise PermissionDenied("only HQ admins and the material's region managers "
                                       "add versions")
        version = _version(material.current.number + 1, file, who, clock)
        material = replace(material, versions=(*material.versions, version))
        await uow.materials.add_version(material, file.content)
        uow.events.record(MATERIAL_PUBLISHED, messages.material_published(material),
                          material.id)
        await uow.commit()
    return material


async def list_materials(text: str, kind: MaterialKind | None, page: PageRequest, *,
                         who: Principal, uow: IdentityUnitOfWork,
                         scope_cache: ScopeCache) -> Page[MaterialView]:
    """The materials ``who`` may see whose title or description holds ``text``, newest
    version first; for HQ and managers with the downloads of their dealers."""
    text = text.strip()
    async with uow.read():
        reader = await as_now(uow, who)
        facts = await dealer_facts(uow, scope_cache)
        found = []
        for material in await uow.materials.newest_first():
            if (kind is None or material.kind == kind) and material.matches(text):
                dealers = await _visible(uow, reader, material, facts)
                if dealers is not None:
                    found.append((material, dealers))
        chunk = page_of_all(found, page)
        if is_dealer_user(reader):
            return chunk.map(lambda item: MaterialView(item[0]))
        downloads = await uow.materials.downloads_of([m.id for m, _ in chunk.items])
    return chunk.map(lambda item: MaterialView(item[0], sum(
        1 for d in downloads if d.material_id == item[0].id and d.dealer_id in item[1])))


async def download(material_id: str, version: int, *, who: Principal,
                   uow: IdentityUnitOfWork, clock: Clock,
                   scope_cache: ScopeCache) -> tuple[Version, bytes]:
    """The version's file (0: the current one); a dealer user's download is recorded."""
    async with uow.read():
        reader = await as_now(uow, who)
        material, _ = await _material(uow, reader, material_id, scope_cache)
        chosen = material.version(version)
        content = await uow.materials.content(material.id, chosen.number) if chosen else None
    if chosen is None or content is None:
        raise NotFound(f"version {version} of material {material_id} not found")
    if is_dealer_user(reader):
        record = Download(material.id, chosen.number, reader.user_id, reader.dealer_id,
                          clock.now())
        async with uow:  # only a dealer's download writes
            await uow.materials.add_download(record)
            uow.events.record(MATERIAL_DOWNLOADED, messages.material_downloaded(record),
                              material.id)
            await uow.commit()
    return chosen, content


async def list_usage(material_id: str, dealer_id: str, page: PageRequest, *, who: Principal,
                     uow: IdentityUnitOfWork, scope_cache: ScopeCache) -> Page[Usage]:
    """Per material and dealer in ``who``'s scope: downloads, users, the newest version
    taken and when last. HQ and managers only."""
    async with uow.read():
        reader = await as_now(uow, who)
        if is_dealer_user(reader) or not reader.roles & HQ_ROLES:
            raise PermissionDenied("material usage is for HQ and managers")
        seen = await visibility(uow, reader)
        if material_id:
            materials = [(await _material(uow, reader, material_id, scope_cache))[0]]
        else:
            materials = await uow.materials.newest_first()
        downloads = [d for d in await uow.materials.downloads_of([m.id for m in materials])
                     if (seen.everything or d.dealer_id in seen.dealer_ids)
                     and (not dealer_id or d.dealer_id == dealer_id)]
        names = await uow.org_units.get_many({d.dealer_id for d in downloads})
    usage = []
    for material in materials:
        by_dealer: dict[str, list[Download]] = {}
        for d in downloads:
            if d.material_id == material.id:
                by_dealer.setdefault(d.dealer_id, []).append(d)
        usage += [usage_of(material, dealer, names[dealer].name, taken)
                  for dealer, taken in by_dealer.items()]
    usage.sort(key=lambda u: (u.last_downloaded_at, u.material_id, u.dealer_id), reverse=True)
    return page_of_all(usage, page)
