"""Tags and audiences: dealers are grouped by derived tags (region, city, tier, product
line) and custom ones set by HQ admins and region managers, and selected by audience
expressions over those facts, e.g. for a campaign or a policy's target dealers."""

from __future__ import annotations

from dataclasses import replace

from services.identity import messages
from services.identity.domain import audience as audience_rules
from services.identity.domain.audience import DealerSummary
from services.identity.domain.model import OrgUnit, TagCount, TagKind
from services.identity.domain.org import tag_violations
from services.identity.domain.rules import Role
from services.identity.usecases.access import audit, visibility, visible_dealers
from services.identity.usecases.ports import IdentityUnitOfWork, ScopeCache
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FieldViolation, InvalidArgument, PermissionDenied, collect
from shared.events.identity import TAGS_CHANGED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of_all


async def dealer_summaries(uow: IdentityUnitOfWork, cache: ScopeCache) -> list[DealerSummary]:
    """Every dealer's summary, kept until the next change: decoding thousands of dealers'
    JSON columns for every audience query would dominate its time."""
    generation = cache.generation
    summaries = cache.dealer_summaries()
    if summaries is None:
        summaries = await uow.org_units.dealer_summaries()
        cache.remember_dealer_summaries(generation, summaries)
    return summaries


async def _in_scope(uow: IdentityUnitOfWork, who: Principal, cache: ScopeCache,
                    include_inactive: bool = True) -> list[DealerSummary]:
    """The summaries of the dealers ``who`` may see, ordered by name."""
    seen = await visibility(uow, who)
    return [dealer for dealer in await dealer_summaries(uow, cache)
            if (include_inactive or dealer.status == "active")
            and (seen.everything or dealer.facts.id in seen.dealer_ids)]


async def list_tags(prefix: str, kind: TagKind | None, page: PageRequest, *, who: Principal,
                    uow: IdentityUnitOfWork, scope_cache: ScopeCache) -> Page[TagCount]:
    """The tags of the dealers ``who`` may see, with how many of them carry each."""
    async with uow.read():
        dealers = await _in_scope(uow, who, scope_cache)
    counts: dict[tuple[str, TagKind], int] = {}
    for dealer in dealers:
        for tag_kind, tags in ((TagKind.DERIVED, dealer.derived_tags),
                               (TagKind.CUSTOM, dealer.custom_tags)):
            for tag in set(tags):
                counts[(tag, tag_kind)] = counts.get((tag, tag_kind), 0) + 1
    tags = [TagCount(name, tag_kind, count) for (name, tag_kind), count in sorted(
        counts.items(), key=lambda item: (item[0][0], item[0][1] != TagKind.DERIVED))
        if name.startswith(prefix) and (kind is None or tag_kind == kind)]
    return page_of_all(tags, page)


async def change_dealer_tags(dealer_ids: list[str], tags: list[str], add: bool, *,
                             who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                             ids: IdSource) -> int:
    """Add or remove custom tags; derived tags follow the dealer's facts and cannot be
    removed. Returns how many dealers changed."""
    problems = tag_violations(tags)
    if not tags:
        problems.append(FieldViolation("tags", "at least one tag"))
    if not dealer_ids:
        problems.append(FieldViolation("dealer_ids", "at least one dealer"))
    collect(problems)
    changed = 0
    async with uow:
        dealers = await visible_dealers(uow, who, dealer_ids)
        if not who.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
            raise PermissionDenied("only HQ admins and region managers tag dealers")
        for dealer in dealers:
            if add:
                custom = tuple(dict.fromkeys((*dealer.custom_tags, *tags)))
            else:
                derived = [tag for tag in tags if tag in dealer.derived_tags]
                if derived:
                    raise InvalidArgument.field(
                        "tags", f"derived tag {derived[0]} cannot be removed; change the "
                                "dealer's region, city, tier or product lines instead")
                custom = tuple(tag for tag in dealer.custom_tags if tag not in tags)
            if custom == dealer.custom_tags:
                continue
            tagged = replace(dealer, custom_tags=custom, updated_at=clock.now())
            await uow.org_units.update(tagged)
            changed += 1
            await audit(uow, "tag.add" if add else "tag.remove", "org_unit", dealer.id,
                        dealer.snapshot(), tagged.snapshot(), who=who, clock=clock, ids=ids)
            uow.events.record(TAGS_CHANGED, messages.tags_changed(
                tagged, dealer.derived_tags, dealer.custom_tags), dealer.id)
        await uow.commit()
    return changed


async def query_audience(expression: audience_rules.Node, include_inactive: bool,
                         page: PageRequest, *, who: Principal, uow: IdentityUnitOfWork,
                         scope_cache: ScopeCache) -> Page[OrgUnit]:
    """The dealers ``who`` may see that the expression selects, ordered by name."""
    predicate = audience_rules.compile_expression(expression)
    async with uow.read():
        dealers = await _in_scope(uow, who, scope_cache, include_inactive)
        matches = [dealer.facts.id for dealer in dealers if predicate(dealer.facts)]
        chunk = page_of_all(matches, page)
        units = await uow.org_units.get_many(chunk.items)
    return chunk.map(lambda dealer_id: units[dealer_id])
