"""The org structure: HQ, regions and dealers (tier, platform dealer, territory, product
lines). A dealer's derived tags follow its region, city, tier and product lines, so a
change here may retag dealers; that is announced (TagsChanged) as a tag change is."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.identity import messages
from services.identity.domain.model import OrgUnit, OrgUnitFilter, changed_fields
from services.identity.domain.org import (
    STATUSES,
    DealerFields,
    Node,
    dealer_violations,
    tree_violations,
)
from services.identity.domain.rules import OrgKind, Tier
from services.identity.usecases.access import audit, require_admin, visibility, visible_unit
from services.identity.usecases.ports import IdentityUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    check_version,
    collect,
)
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED, TAGS_CHANGED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest

UPDATABLE_PATHS = ("name", "parent_id", "credit_code", "tier", "platform_dealer_id",
                   "division_codes", "product_lines", "status", "region_code", "city_code",
                   "shared_with_platform")
DEALER_ONLY = ("credit_code", "tier", "platform_dealer_id", "division_codes", "product_lines",
               "city_code", "shared_with_platform")


def unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class NewOrgUnit:
    """A region or dealer to create. A dealer without ``parent_id`` goes under the region
    with its ``region_code``; a region without one under HQ."""

    kind: OrgKind | None
    name: str
    parent_id: str = ""
    region_code: str = ""
    credit_code: str = ""
    tier: Tier | None = None
    platform_dealer_id: str = ""
    division_codes: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    city_code: str = ""
    custom_tags: tuple[str, ...] = ()
    shared_with_platform: bool = False


@dataclass(frozen=True)
class OrgUnitChange:
    """New values for the fields ``paths`` names (the others are ignored). ``tier`` and
    ``status`` are "" when the request's value is unknown."""

    org_unit_id: str
    paths: tuple[str, ...]
    name: str = ""
    parent_id: str = ""
    credit_code: str = ""
    tier: str = ""
    platform_dealer_id: str = ""
    division_codes: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    status: str = ""
    region_code: str = ""
    city_code: str = ""
    shared_with_platform: bool = False
    reason: str = ""
    # The version the change was made against (If-Match); 0: whatever is current.
    expected_version: int = 0

    def proposed(self, path: str):
        """The value for ``path``, normalized as the unit keeps it."""
        value = getattr(self, path)
        if path in ("parent_id", "platform_dealer_id"):
            return value or None
        if path == "credit_code":
            return value.strip().upper() or None
        if path in ("division_codes", "product_lines"):
            return unique(value)
        if isinstance(value, str) and path not in ("tier", "status"):
            return value.strip()
        return value


async def region_names(uow: IdentityUnitOfWork) -> dict[str, str]:
    return {region.region_code: region.name for region in await uow.org_units.regions()}


async def create_org_unit(new: NewOrgUnit, *, who: Principal, uow: IdentityUnitOfWork,
                          clock: Clock, ids: IdSource) -> OrgUnit:
    require_admin(who, "change the org structure")
    kind = new.kind
    name = new.name.strip()
    credit_code = new.credit_code.strip().upper()
    tier = new.tier.value if new.tier else ""
    fields = DealerFields(
        name=name, credit_code=credit_code, tier=tier, division_codes=unique(new.division_codes),
        product_lines=unique(new.product_lines), city_code=new.city_code.strip(),
        custom_tags=unique(new.custom_tags))
    violations: list[FieldViolation] = []
    if kind is None or kind == OrgKind.HQ:
        violations.append(FieldViolation("kind", "must be REGION or DEALER"))
    if not name:
        violations.append(FieldViolation("name", "is required"))
    if kind == OrgKind.DEALER:
        violations += [v for v in dealer_violations(fields) if v.field != "name"]
    elif kind == OrgKind.REGION:
        if not new.region_code.strip():
            violations.append(FieldViolation("region_code", "is required for a region"))
        violations += [FieldViolation(path, "only dealers have this field")
                       for path in (*DEALER_ONLY, "custom_tags") if getattr(new, path)]
    collect(violations)
    async with uow:
        parent_id = new.parent_id or None
        if parent_id is None:
            if kind == OrgKind.DEALER:
                parent = await uow.org_units.region(new.region_code.strip())
                if parent is None:
                    raise InvalidArgument.field("region_code", "must name an existing region")
            else:
                parent = await uow.org_units.hq()
                if parent is None:
                    raise InvalidArgument.field("parent_id", "must name an existing org unit")
            parent_id = parent.id
        unit_id = ids.new_id()
        platform_id = new.platform_dealer_id or None
        tree = await uow.org_units.tree([parent_id, platform_id])
        collect(tree_violations(Node(unit_id, kind, parent_id, tier, platform_id), tree))
        parent = await uow.org_units.get(parent_id)
        if kind == OrgKind.REGION:
            region_code = new.region_code.strip()
            if await uow.org_units.region(region_code) is not None:
                raise AlreadyExists(f"region {region_code} exists", violations=[
                    FieldViolation("region_code", "already used by another region")])
        else:
            region_code = parent.region_code
            if await uow.org_units.by_credit_codes([credit_code]):
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")])
        unit = OrgUnit(
            id=unit_id, kind=kind, name=name, parent_id=parent_id,
            credit_code=credit_code or None, tier=tier, platform_dealer_id=platform_id,
            region_code=region_code, division_codes=fields.division_codes,
            product_lines=fields.product_lines, city_code=fields.city_code,
            custom_tags=fields.custom_tags,
            shared_with_platform=bool(new.shared_with_platform and platform_id),
            created_at=clock.now(),
        ).retagged(await region_names(uow))
        await uow.org_units.add(unit)
        await audit(uow, "org_unit.create", "org_unit", unit.id, None, unit.snapshot(),
                    who=who, clock=clock, ids=ids)
        uow.events.record(ORG_UNIT_CREATED, messages.org_unit_created(unit), unit.id)
        await uow.commit()
    return unit


async def get_org_unit(org_unit_id: str, *, who: Principal,
                       uow: IdentityUnitOfWork) -> OrgUnit:
    async with uow.read():
        return await visible_unit(uow, who, org_unit_id)


async def list_org_units(which: OrgUnitFilter, page: PageRequest, *, who: Principal,
                         uow: IdentityUnitOfWork) -> Page[OrgUnit]:
    """The org units ``who`` may see (of those ``which`` selects), oldest first."""
    async with uow.read():
        seen = await visibility(uow, who)
        return await uow.org_units.page(
            replace(which, visible=None if seen.everything else seen), page)


def _change_violations(unit: OrgUnit, change: OrgUnitChange, values: dict) -> list:
    problems: list[FieldViolation] = []
    if not values["name"]:
        problems.append(FieldViolation("name", "is required"))
    if unit.is_dealer:
        problems += dealer_violations(DealerFields(
            name=values["name"], credit_code=values["credit_code"] or "", tier=values["tier"],
            division_codes=values["division_codes"], product_lines=values["product_lines"],
            city_code=values["city_code"], status=values["status"]))
        if "region_code" in change.paths:
            problems.append(FieldViolation("region_code",
                                           "a dealer's region follows its parent_id"))
    else:
        problems += [FieldViolation(path, "only dealers have this field")
                     for path in DEALER_ONLY
                     if path in change.paths and values[path] != getattr(unit, path)]
        if unit.kind == OrgKind.REGION and not values["region_code"]:
            problems.append(FieldViolation("region_code", "is required for a region"))
        if values["status"] not in STATUSES:
            problems.append(FieldViolation("status", "must be active, suspended or closed"))
    if unit.kind == OrgKind.HQ and "parent_id" in change.paths and values["parent_id"]:
        problems.append(FieldViolation("parent_id", "HQ has no parent"))
    return problems


async def update_org_unit(change: OrgUnitChange, *, who: Principal, uow: IdentityUnitOfWork,
                          clock: Clock, ids: IdSource) -> OrgUnit:
    """Change the fields the mask names. Dealers follow their parent region (code, and
    derived tags); renaming or recoding a region retags its dealers."""
    paths = unique(change.paths)
    violations = [FieldViolation(f"update_mask.paths[{i}]", f"{p!r} cannot be updated")
                  for i, p in enumerate(paths) if p not in UPDATABLE_PATHS]
    if not paths:
        violations.append(FieldViolation("update_mask", "name at least one field"))
    collect(violations)
    async with uow:
        unit = await visible_unit(uow, who, change.org_unit_id)
        require_admin(who, "change the org structure")
        check_version(f"org unit {unit.id}", change.expected_version, unit.version)
        values = {path: getattr(unit, path) for path in UPDATABLE_PATHS}
        values.update({path: change.proposed(path) for path in paths})
        collect(_change_violations(unit, change, values))
        tree = await uow.org_units.tree([unit.id, values["parent_id"],
                                         values["platform_dealer_id"]])
        collect(tree_violations(Node(unit.id, unit.kind, values["parent_id"], values["tier"],
                                     values["platform_dealer_id"]), tree))
        if unit.kind == OrgKind.REGION and values["region_code"] != unit.region_code and \
                await uow.org_units.region(values["region_code"]) is not None:
            raise AlreadyExists("region code in use", violations=[
                FieldViolation("region_code", "already used by another region")])
        if values["credit_code"] and values["credit_code"] != unit.credit_code and \
                await uow.org_units.by_credit_codes([values["credit_code"]]):
            raise AlreadyExists("an org unit with this credit code already exists",
                                violations=[FieldViolation("credit_code", "already used")])
        if unit.is_dealer:
            values["region_code"] = (await uow.org_units.get(values["parent_id"])).region_code
        elif unit.kind != OrgKind.REGION:
            values["region_code"] = unit.region_code
        values["shared_with_platform"] = bool(values["shared_with_platform"]
                                              and values["platform_dealer_id"])
        names = await region_names(uow)
        if unit.kind == OrgKind.REGION:
            names.pop(unit.region_code, None)
            names[values["region_code"]] = values["name"]
        updated = replace(unit, **values).retagged(names)
        before, after = unit.snapshot(), updated.snapshot()
        changed = changed_fields(before, after)
        if not changed:
            return unit
        updated = replace(updated, updated_at=clock.now())
        await uow.org_units.update(updated)
        updated = replace(updated, version=await uow.org_units.next_version(unit))
        await audit(uow, "org_unit.update", "org_unit", unit.id, before, after, change.reason,
                    who=who, clock=clock, ids=ids)
        uow.events.record(ORG_UNIT_UPDATED, messages.org_unit_updated(updated, unit, changed),
                          unit.id)
        if updated.derived_tags != unit.derived_tags:
            uow.events.record(TAGS_CHANGED, messages.tags_changed(
                updated, unit.derived_tags, unit.custom_tags), unit.id)
        if unit.kind == OrgKind.REGION and ("name" in changed or "region_code" in changed):
            await _follow_region(uow, unit.region_code, updated.region_code, names, clock)
        await uow.commit()
    return updated


async def _follow_region(uow: IdentityUnitOfWork, old_code: str, new_code: str,
                         names: dict[str, str], clock: Clock) -> None:
    """A renamed or recoded region's dealers take its code and new derived tags; each
    changed dealer is announced like any other dealer change, so projections follow."""
    for dealer in await uow.org_units.dealers_in_region(old_code):
        moved = replace(dealer, region_code=new_code).retagged(names)
        changed = changed_fields(dealer.snapshot(), moved.snapshot())
        if not changed:
            continue
        moved = replace(moved, updated_at=clock.now())
        await uow.org_units.update(moved)
        uow.events.record(ORG_UNIT_UPDATED, messages.org_unit_updated(moved, dealer, changed),
                          dealer.id)
        if moved.derived_tags != dealer.derived_tags:
            uow.events.record(TAGS_CHANGED, messages.tags_changed(
                moved, dealer.derived_tags, dealer.custom_tags), dealer.id)

