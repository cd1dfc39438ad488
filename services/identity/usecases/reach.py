"""Who what HQ hands to dealers (notices, materials) reaches: the audience a publisher
may address, and the dealers' facts audiences are judged on."""

from __future__ import annotations

from services.identity.domain.audience import DealerFacts, Node
from services.identity.domain.notices import Audience
from services.identity.domain.org import subtree
from services.identity.domain.rules import Role
from services.identity.usecases.access import as_now, visible_dealers
from services.identity.usecases.ports import IdentityUnitOfWork, ScopeCache
from services.identity.usecases.tags import dealer_summaries
from shared.context import Principal
from shared.errors import PermissionDenied


def is_dealer_user(who: Principal) -> bool:
    return bool(who.dealer_id)


async def dealer_facts(uow: IdentityUnitOfWork, cache: ScopeCache) -> dict[str, DealerFacts]:
    return {summary.facts.id: summary.facts for summary in await dealer_summaries(uow, cache)}


async def region_codes_of(uow: IdentityUnitOfWork, who: Principal) -> tuple[str, ...]:
    """The regions a region manager publishes to: theirs and those below it."""
    regions = await uow.org_units.regions()
    mine = subtree(who.org_unit_id, {region.id: region.parent_id for region in regions})
    return tuple(sorted(region.region_code for region in regions if region.id in mine))


async def publishers_audience(expression: Node | None, dealer_ids: tuple[str, ...],
                              what: str, *, who: Principal,
                              uow: IdentityUnitOfWork) -> Audience:
    """The audience ``who`` may address: HQ admins any dealers, region managers the
    dealers of their regions (an expression is limited to them, named dealers must be
    theirs). Named dealers out of scope are NOT_FOUND before any role is judged."""
    publisher = await as_now(uow, who)
    named = await visible_dealers(uow, who, dealer_ids)
    if not publisher.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
        raise PermissionDenied(f"only HQ admins and region managers publish {what}")
    region_codes: tuple[str, ...] = ()
    if not publisher.has_role(Role.HQ_ADMIN):
        region_codes = await region_codes_of(uow, publisher)
        if not region_codes:
            raise PermissionDenied("a region manager publishes to a region's dealers; "
                                   "yours belongs to no region")
    return Audience(expression, tuple(dealer.id for dealer in named), region_codes)
