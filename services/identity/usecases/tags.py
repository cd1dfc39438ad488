"""Tags and audiences: dealers are grouped by derived tags (region, city, tier, product
line) and custom ones set by HQ and region managers, and selected by audience expressions
over those facts, e.g. for a campaign or a policy's target dealers."""

from __future__ import annotations

from datetime import UTC, datetime

from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import select

from services.identity.adapters.orm import OrgUnitRow
from services.identity.domain import audience as audience_rules
from services.identity.domain.org import tag_violations
from services.identity.domain.rules import OrgKind, Role
from services.identity.usecases.common import (
    PROTO_TO_TIER,
    UseCaseBase,
    org_unit_to_proto,
    paginate,
    unit_snapshot,
)
from shared.context import Principal, current_principal
from shared.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied, collect
from shared.events.identity import TAGS_CHANGED


class TagUseCases(UseCaseBase):
    async def _tags_changed(self, session, row: OrgUnitRow, old_derived: list[str],
                            old_custom: list[str]) -> None:
        old = set(old_derived) | set(old_custom)
        new = set(row.derived_tags or []) | set(row.custom_tags or [])
        await self.outbox.record(session, TAGS_CHANGED, events_pb2.TagsChanged(
            dealer_id=row.id, added=sorted(new - old), removed=sorted(old - new),
            derived_tags=list(row.derived_tags or []), custom_tags=list(row.custom_tags or [])),
            row.id)


    async def _scoped_dealer_facts(self, session, principal: Principal,
                                   include_inactive: bool = True) -> list:
        """Only the columns tags and audiences need (id, status, region, tier, product
        lines, territory, tags) of the dealers in the principal's scope, ordered by name.
        The rows of all dealers are kept per generation (like scope answers): decoding
        thousands of JSON columns for every audience query would dominate its time."""
        visibility = await self._visibility(session, principal)
        generation = self._scope_generation
        if self._facts_cache is None or self._facts_cache[0] != generation:
            rows = (await session.execute(
                select(OrgUnitRow.id, OrgUnitRow.status, OrgUnitRow.region_code,
                       OrgUnitRow.tier, OrgUnitRow.product_lines, OrgUnitRow.division_codes,
                       OrgUnitRow.derived_tags, OrgUnitRow.custom_tags)
                .where(OrgUnitRow.kind == OrgKind.DEALER)
                .order_by(OrgUnitRow.name, OrgUnitRow.id))).all()
            self._facts_cache = (generation, [tuple(row) for row in rows])
        facts = self._facts_cache[1]
        return [row for row in facts
                if (include_inactive or row[1] == "active")
                and (visibility.everything or row[0] in visibility.dealer_ids)]

    async def list_tags(self, prefix: str, kind_value: int, size: int, token: str):
        async with self.db.read() as session:
            dealers = await self._scoped_dealer_facts(session, current_principal())
        counts: dict[tuple[str, int], int] = {}
        for *_, derived, custom in dealers:
            for kind, tags in ((identity_pb2.TAG_KIND_DERIVED, derived),
                               (identity_pb2.TAG_KIND_CUSTOM, custom)):
                for tag in set(tags or []):
                    counts[(tag, kind)] = counts.get((tag, kind), 0) + 1
        tags = [identity_pb2.Tag(name=name, kind=kind, dealer_count=count)
                for (name, kind), count in sorted(counts.items())
                if name.startswith(prefix) and (not kind_value or kind == kind_value)]
        return paginate(tags, token, size)

    async def change_dealer_tags(self, dealer_ids: list[str], tags: list[str], add: bool) -> int:
        principal = current_principal()
        problems = tag_violations(tags)
        if not tags:
            problems.append(FieldViolation("tags", "at least one tag"))
        if not dealer_ids:
            problems.append(FieldViolation("dealer_ids", "at least one dealer"))
        collect(problems)
        changed = 0
        async with self.db.write() as session:
            visibility = await self._visibility(session, principal)
            rows = []
            for index, dealer_id in enumerate(dict.fromkeys(dealer_ids)):
                row = await session.get(OrgUnitRow, dealer_id)
                if row is None or row.kind != OrgKind.DEALER or not visibility.sees(row):
                    raise NotFound(f"dealer {dealer_id} not found",
                                   violations=[FieldViolation(f"dealer_ids[{index}]",
                                                              "not found")])
                rows.append(row)
            if not principal.has_role(Role.HQ_ADMIN, Role.REGION_MANAGER):
                raise PermissionDenied("only HQ admins and region managers tag dealers")
            for row in rows:
                before_custom = list(row.custom_tags or [])
                if add:
                    new = list(dict.fromkeys([*before_custom, *tags]))
                else:
                    derived = [t for t in tags if t in (row.derived_tags or [])]
                    if derived:
                        raise InvalidArgument.field(
                            "tags", f"derived tag {derived[0]} cannot be removed; change the "
                                    "dealer's region, city, tier or product lines instead")
                    new = [t for t in before_custom if t not in tags]
                if new == before_custom:
                    continue
                before = unit_snapshot(row)
                row.custom_tags = new
                row.updated_at = datetime.now(UTC)
                changed += 1
                await self._audit(session, "tag.add" if add else "tag.remove", "org_unit",
                                  row.id, before, unit_snapshot(row))
                await self._tags_changed(session, row, row.derived_tags, before_custom)
        return changed

    async def query_audience(self, expression: identity_pb2.AudienceExpression,
                             include_inactive: bool, size: int, token: str):
        predicate = audience_rules.compile_expression(expression_from_proto(expression))
        async with self.db.read() as session:
            dealers = await self._scoped_dealer_facts(session, current_principal(),
                                                      include_inactive)
            matches = [
                dealer_id for dealer_id, _, region, tier, lines, codes, derived, custom in dealers
                if predicate(audience_rules.DealerFacts(
                    id=dealer_id, region_code=region, tier=tier,
                    product_lines=frozenset(lines or []), division_codes=tuple(codes or []),
                    tags=frozenset([*(derived or []), *(custom or [])])))]
            chunk, next_token, total = paginate(matches, token, size)
            rows = {r.id: r for r in (await session.scalars(
                select(OrgUnitRow).where(OrgUnitRow.id.in_(chunk)))).all()}
        return [org_unit_to_proto(rows[i]) for i in chunk], next_token, total


def expression_from_proto(expression: identity_pb2.AudienceExpression) -> audience_rules.Node:
    which = expression.WhichOneof("expression")
    if which == "term":
        kind = expression.term.WhichOneof("term")
        if kind is None:
            raise InvalidArgument.field("expression.term", "is empty")
        value = getattr(expression.term, kind)
        if kind == "tier":
            tier = PROTO_TO_TIER.get(value)
            if tier is None:
                raise InvalidArgument.field("expression.term.tier", "unknown tier")
            value = tier.value
        return audience_rules.Node("term", kind=kind, value=value)
    if which in ("all_of", "any_of"):
        return audience_rules.Node("all" if which == "all_of" else "any", tuple(
            expression_from_proto(e) for e in getattr(expression, which).expressions))
    if which == "negate":
        return audience_rules.Node("not", (expression_from_proto(expression.negate),))
    raise InvalidArgument.field("expression", "an expression is required")
