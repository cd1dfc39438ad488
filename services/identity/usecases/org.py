"""The org structure: HQ, regions and dealers (tier, platform dealer, territory, product
lines) and their bulk import from a CSV/XLSX file. A dealer's derived tags follow its
region, city, tier and product lines, so every change here may retag dealers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from qudao.common.v1 import files_pb2
from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from services.identity.adapters.orm import OrgUnitRow
from services.identity.domain import dealer_import
from services.identity.domain.org import (
    DealerFields,
    Node,
    dealer_violations,
    derived_tags,
    home_city,
    tree_violations,
)
from services.identity.domain.rules import OrgKind, Tier
from services.identity.usecases.common import (
    PROTO_TO_KIND,
    PROTO_TO_STATUS,
    PROTO_TO_TIER,
    org_unit_to_proto,
    unit_snapshot,
)
from services.identity.usecases.tags import TagUseCases
from shared.context import current_principal
from shared.errors import AlreadyExists, FieldViolation, InvalidArgument, collect
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED
from shared.pagination import decode_page_token, encode_page_token
from shared.tabular import read_table

UPDATABLE_PATHS = frozenset({"name", "parent_id", "credit_code", "tier", "platform_dealer_id",
                             "division_codes", "product_lines", "status", "region_code",
                             "city_code", "shared_with_platform"})


# Dealers are counted in thousands; a larger file is a mistake, not an import.
MAX_IMPORT_ROWS = 20_000


class OrgUseCases(TagUseCases):
    """Extends the tag use cases: an org change that retags a dealer announces it
    (TagsChanged) the way a tag change does."""

    async def _region_names(self, session) -> dict[str, str]:
        rows = (await session.execute(select(OrgUnitRow.region_code, OrgUnitRow.name).where(
            OrgUnitRow.kind == OrgKind.REGION))).all()
        return {code: name for code, name in rows}

    @staticmethod
    def _retag(row: OrgUnitRow, region_names: dict[str, str]) -> None:
        if row.kind != OrgKind.DEALER:
            row.derived_tags = []
            return
        row.derived_tags = derived_tags(region_names.get(row.region_code, row.region_code),
                                        home_city(row.division_codes, row.city_code), row.tier,
                                        row.product_lines)

    async def _tree(self, session, *ids: str | None) -> dict[str, Node]:
        """The non-dealer structure plus the named units and the sub-dealers of any
        dealer among them: all that tree_violations needs."""
        wanted = {i for i in ids if i}
        rows = (await session.scalars(select(OrgUnitRow).where(or_(
            OrgUnitRow.kind != OrgKind.DEALER, OrgUnitRow.id.in_(wanted),
            OrgUnitRow.platform_dealer_id.in_(wanted))))).all()
        return {r.id: Node(r.id, r.kind, r.parent_id, r.tier, r.platform_dealer_id)
                for r in rows}

    # ---- org units -------------------------------------------------------------------

    async def create_org_unit(self, request: identity_pb2.CreateOrgUnitRequest):
        principal = current_principal()
        self._require_admin(principal, "change the org structure")
        kind = PROTO_TO_KIND.get(request.kind)
        violations: list[FieldViolation] = []
        if kind is None or kind == OrgKind.HQ:
            violations.append(FieldViolation("kind", "must be REGION or DEALER"))
        name = request.name.strip()
        if not name:
            violations.append(FieldViolation("name", "is required"))
        tier = PROTO_TO_TIER.get(request.tier)
        if kind == OrgKind.DEALER:
            fields = DealerFields(
                name=name, credit_code=request.credit_code.strip().upper(),
                tier=tier.value if tier else "", division_codes=tuple(request.division_codes),
                product_lines=tuple(request.product_lines), city_code=request.city_code.strip(),
                custom_tags=tuple(dict.fromkeys(request.custom_tags)))
            violations += [v for v in dealer_violations(fields) if v.field != "name"]
        elif kind == OrgKind.REGION and not request.region_code.strip():
            violations.append(FieldViolation("region_code", "is required for a region"))
        collect(violations)
        async with self.db.write() as session:
            parent_id = request.parent_id or None
            if parent_id is None:
                if kind == OrgKind.DEALER:
                    parent = await session.scalar(select(OrgUnitRow).where(
                        OrgUnitRow.kind == OrgKind.REGION,
                        OrgUnitRow.region_code == request.region_code.strip()))
                    if parent is None:
                        raise InvalidArgument.field("region_code", "must name an existing region")
                else:
                    parent = await session.scalar(select(OrgUnitRow).where(
                        OrgUnitRow.kind == OrgKind.HQ))
                parent_id = parent.id
            new_id = str(uuid.uuid4())
            node = Node(new_id, kind, parent_id, tier.value if tier else "",
                        request.platform_dealer_id or None)
            tree = await self._tree(session, parent_id, request.platform_dealer_id)
            collect(tree_violations(node, tree))
            parent = await session.get(OrgUnitRow, parent_id)
            if kind == OrgKind.REGION:
                region_code = request.region_code.strip()
                if await session.scalar(select(OrgUnitRow.id).where(
                        OrgUnitRow.kind == OrgKind.REGION, OrgUnitRow.region_code == region_code)):
                    raise AlreadyExists(f"region {region_code} exists", violations=[
                        FieldViolation("region_code", "already used by another region")])
            else:
                region_code = parent.region_code
            row = OrgUnitRow(
                id=new_id, kind=kind, name=name, parent_id=parent_id,
                credit_code=request.credit_code.strip().upper() or None,
                tier=tier.value if tier and kind == OrgKind.DEALER else "",
                platform_dealer_id=request.platform_dealer_id or None,
                region_code=region_code, division_codes=list(request.division_codes),
                product_lines=list(dict.fromkeys(request.product_lines)), status="active",
                created_at=datetime.now(UTC), city_code=request.city_code.strip(),
                custom_tags=list(dict.fromkeys(request.custom_tags)), derived_tags=[],
                shared_with_platform=bool(request.shared_with_platform
                                          and request.platform_dealer_id))
            self._retag(row, await self._region_names(session))
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")]
                                    ) from exc
            unit = org_unit_to_proto(row)
            await self._audit(session, "org_unit.create", "org_unit", row.id, None,
                              unit_snapshot(row))
            await self.outbox.record(session, ORG_UNIT_CREATED,
                                     events_pb2.OrgUnitCreated(org_unit=unit), row.id)
        return unit

    async def get_org_unit(self, org_unit_id: str) -> identity_pb2.OrgUnit:
        async with self.db.read() as session:
            return org_unit_to_proto(await self._visible_unit(session, org_unit_id,
                                                              current_principal()))

    async def list_org_units(self, kind_value: int, parent_id: str, size: int, token: str,
                             query_text: str = "", status_value: int = 0, region_code: str = ""):
        offset = decode_page_token(token)
        async with self.db.read() as session:
            visibility = await self._visibility(session, current_principal())
            query = select(OrgUnitRow).order_by(OrgUnitRow.created_at, OrgUnitRow.id)
            if kind_value:
                kind = PROTO_TO_KIND.get(kind_value)
                if kind is None:
                    raise InvalidArgument.field("kind", "unknown org unit kind")
                query = query.where(OrgUnitRow.kind == kind)
            if parent_id:
                query = query.where(OrgUnitRow.parent_id == parent_id)
            if status_value:
                status = PROTO_TO_STATUS.get(status_value)
                if status is None:
                    raise InvalidArgument.field("status", "unknown status")
                query = query.where(OrgUnitRow.status == status)
            if region_code:
                query = query.where(OrgUnitRow.region_code == region_code)
            if query_text:
                query = query.where(or_(OrgUnitRow.name.contains(query_text, autoescape=True),
                                        OrgUnitRow.credit_code == query_text.upper()))
            if (clause := visibility.clause()) is not None:
                query = query.where(clause)
            total = await session.scalar(select(func.count()).select_from(
                query.order_by(None).subquery()))
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([org_unit_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def update_org_unit(self, request: identity_pb2.UpdateOrgUnitRequest):
        principal = current_principal()
        paths = list(dict.fromkeys(request.update_mask.paths))
        violations = [FieldViolation(f"update_mask.paths[{i}]", f"{p!r} cannot be updated")
                      for i, p in enumerate(paths) if p not in UPDATABLE_PATHS]
        if not paths:
            violations.append(FieldViolation("update_mask", "name at least one field"))
        collect(violations)
        new = request.org_unit
        async with self.db.write() as session:
            row = await self._visible_unit(session, request.id, principal)
            self._require_admin(principal, "change the org structure")
            before = unit_snapshot(row)
            previous = org_unit_to_proto(row)
            values = dict(before)
            for path in paths:
                if path == "tier":
                    tier = PROTO_TO_TIER.get(new.tier)
                    values["tier"] = tier.value if tier else ""
                elif path == "status":
                    values["status"] = PROTO_TO_STATUS.get(new.status, "")
                elif path in ("division_codes", "product_lines"):
                    values[path] = list(dict.fromkeys(getattr(new, path)))
                elif path in ("parent_id", "platform_dealer_id"):
                    values[path] = getattr(new, path) or None
                elif path == "credit_code":
                    values[path] = new.credit_code.strip().upper() or None
                elif path == "shared_with_platform":
                    values[path] = new.shared_with_platform
                else:
                    values[path] = getattr(new, path).strip()
            problems: list[FieldViolation] = []
            if not values["name"]:
                problems.append(FieldViolation("name", "is required"))
            if row.kind == OrgKind.DEALER:
                problems += dealer_violations(DealerFields(
                    name=values["name"], credit_code=values["credit_code"] or "",
                    tier=values["tier"], division_codes=tuple(values["division_codes"]),
                    product_lines=tuple(values["product_lines"]), city_code=values["city_code"],
                    status=values["status"]))
                if "region_code" in paths:
                    problems.append(FieldViolation(
                        "region_code", "a dealer's region follows its parent_id"))
            else:
                for path in ("credit_code", "tier", "platform_dealer_id", "division_codes",
                             "product_lines", "city_code", "shared_with_platform"):
                    if path in paths and values[path] != before[path]:
                        problems.append(FieldViolation(path, "only dealers have this field"))
                if row.kind == OrgKind.REGION and not values["region_code"]:
                    problems.append(FieldViolation("region_code", "is required for a region"))
                if values["status"] not in ("active", "suspended", "closed"):
                    problems.append(FieldViolation("status", "must be active, suspended or closed"))
            if row.kind == OrgKind.HQ and "parent_id" in paths and values["parent_id"]:
                problems.append(FieldViolation("parent_id", "HQ has no parent"))
            collect(problems)
            tree = await self._tree(session, row.id, values["parent_id"],
                                    values["platform_dealer_id"])
            node = Node(row.id, row.kind, values["parent_id"], values["tier"],
                        values["platform_dealer_id"])
            collect(tree_violations(node, tree))
            if (row.kind == OrgKind.REGION and values["region_code"] != row.region_code
                    and await session.scalar(select(OrgUnitRow.id).where(
                        OrgUnitRow.kind == OrgKind.REGION,
                        OrgUnitRow.region_code == values["region_code"]))):
                    raise AlreadyExists("region code in use", violations=[
                        FieldViolation("region_code", "already used by another region")])
            old_region_code = row.region_code
            for key in ("name", "parent_id", "credit_code", "tier", "platform_dealer_id",
                        "division_codes", "product_lines", "status", "city_code"):
                setattr(row, key, values[key])
            row.shared_with_platform = bool(values["shared_with_platform"]
                                            and values["platform_dealer_id"])
            if row.kind == OrgKind.DEALER:
                parent = await session.get(OrgUnitRow, row.parent_id)
                row.region_code = parent.region_code
            elif row.kind == OrgKind.REGION:
                row.region_code = values["region_code"]
            row.updated_at = datetime.now(UTC)
            region_names = await self._region_names(session)
            region_names[row.region_code] = row.name if row.kind == OrgKind.REGION else \
                region_names.get(row.region_code, "")
            self._retag(row, region_names)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AlreadyExists("an org unit with this credit code already exists",
                                    violations=[FieldViolation("credit_code", "already used")]
                                    ) from exc
            after = unit_snapshot(row)
            changed = [key for key in after if after[key] != before[key]]
            unit = org_unit_to_proto(row)
            if changed:
                await self._audit(session, "org_unit.update", "org_unit", row.id, before, after,
                                  request.reason)
                await self.outbox.record(session, ORG_UNIT_UPDATED, events_pb2.OrgUnitUpdated(
                    org_unit=unit, previous=previous, changed_fields=changed), row.id)
                if row.kind == OrgKind.DEALER and before["derived_tags"] != after["derived_tags"]:
                    await self._tags_changed(session, row, before["derived_tags"],
                                             before["custom_tags"])
            if row.kind == OrgKind.REGION and ("name" in changed or "region_code" in changed):
                await self._retag_region(session, old_region_code, row.region_code, region_names)
        return unit

    async def _retag_region(self, session, old_code: str, new_code: str,
                            region_names: dict[str, str]) -> None:
        dealers = (await session.scalars(select(OrgUnitRow).where(
            OrgUnitRow.kind == OrgKind.DEALER, OrgUnitRow.region_code == old_code))).all()
        for dealer in dealers:
            before = list(dealer.derived_tags or [])
            dealer.region_code = new_code
            self._retag(dealer, region_names)
            if before != dealer.derived_tags:
                await self._tags_changed(session, dealer, before, dealer.custom_tags)

    # ---- bulk import -----------------------------------------------------------------

    async def import_dealers(self, request: identity_pb2.ImportDealersRequest):
        principal = current_principal()
        self._require_admin(principal, "import dealers")
        table = await asyncio.to_thread(read_table, request.content, request.filename,
                                        request.format, request.encoding, MAX_IMPORT_ROWS)
        index, problems = dealer_import.map_header(table.header)
        parsed: list[dealer_import.ImportRow] = []
        if not problems:
            if not table.rows:
                raise InvalidArgument.field("content", "the file has no dealer rows")
            for number, values in table.rows:
                cells = [values.get(name, "") for name in table.header]
                row, row_problems = dealer_import.parse_row(number, cells, index)
                problems += row_problems
                if row is not None:
                    parsed.append(row)
        seen: dict[str, int] = {}
        for row in parsed:
            code = row.fields.credit_code
            if code in seen:
                problems.append(dealer_import.RowProblem(
                    row.row_number, "credit_code", "DUPLICATE_IN_FILE", code,
                    f"also on row {seen[code]}"))
            seen.setdefault(code, row.row_number)
        created = updated = unchanged = 0
        async with self.db.write() as session:
            regions = {r.region_code: r for r in (await session.scalars(
                select(OrgUnitRow).where(OrgUnitRow.kind == OrgKind.REGION))).all()}
            codes = [row.fields.credit_code for row in parsed] + [
                row.platform_credit_code for row in parsed if row.platform_credit_code]
            existing = {r.credit_code: r for r in (await session.scalars(select(OrgUnitRow).where(
                OrgUnitRow.credit_code.in_(codes)))).all()}
            in_file = {row.fields.credit_code: row for row in parsed}
            for row in parsed:
                if row.region_code not in regions:
                    problems.append(dealer_import.RowProblem(
                        row.row_number, "region_code", "UNKNOWN_REGION", row.region_code))
                platform_code = row.platform_credit_code
                if platform_code:
                    target_tier = (in_file[platform_code].fields.tier if platform_code in in_file
                                   else existing[platform_code].tier
                                   if platform_code in existing else None)
                    target_is_sub = (bool(in_file[platform_code].platform_credit_code)
                                     if platform_code in in_file
                                     else bool(existing[platform_code].platform_dealer_id)
                                     if platform_code in existing else False)
                    if (target_tier != Tier.PLATFORM or target_is_sub
                            or platform_code == row.fields.credit_code
                            or row.fields.tier == Tier.PLATFORM):
                        problems.append(dealer_import.RowProblem(
                            row.row_number, "platform_credit_code", "INVALID_PLATFORM",
                            platform_code))
            if problems:
                problems.sort(key=lambda p: (p.row_number, p.column))
                return identity_pb2.ImportDealersResponse(accepted=False, errors=[
                    files_pb2.RowError(row_number=p.row_number, column=p.column, code=p.code,
                                       message_zh=p.message_zh, message_en=p.message_en,
                                       value=p.value) for p in problems])
            if request.dry_run:
                created = sum(1 for r in parsed if r.fields.credit_code not in existing)
                await session.rollback()
                return identity_pb2.ImportDealersResponse(
                    accepted=True, created=created, updated=len(parsed) - created)
            region_names = {code: region.name for code, region in regions.items()}
            now = datetime.now(UTC)
            by_code = dict(existing)
            # Platform dealers first, so sub-dealers can point at them.
            ordered = sorted(parsed, key=lambda r: bool(r.platform_credit_code))
            pending_events = []
            for row in ordered:
                f = row.fields
                region = regions[row.region_code]
                platform = by_code.get(row.platform_credit_code) if row.platform_credit_code \
                    else None
                target = existing.get(f.credit_code)
                values = {"name": f.name, "parent_id": region.id, "tier": f.tier,
                          "platform_dealer_id": platform.id if platform else None,
                          "region_code": region.region_code,
                          "division_codes": list(f.division_codes),
                          "product_lines": list(f.product_lines), "status": f.status,
                          "city_code": f.city_code,
                          "shared_with_platform": bool(platform and row.shared_with_platform)}
                if target is None:
                    target = OrgUnitRow(id=str(uuid.uuid4()), kind=OrgKind.DEALER,
                                        credit_code=f.credit_code, created_at=now,
                                        custom_tags=list(f.custom_tags), derived_tags=[],
                                        **values)
                    self._retag(target, region_names)
                    session.add(target)
                    by_code[f.credit_code] = target
                    created += 1
                    pending_events.append(("created", target, None, None))
                    continue
                if target.kind != OrgKind.DEALER:
                    raise InvalidArgument.field("credit_code", f"row {row.row_number}: used by a"
                                                               " non-dealer org unit")
                before = unit_snapshot(target)
                previous = org_unit_to_proto(target)
                for key, value in values.items():
                    setattr(target, key, value)
                target.custom_tags = list(dict.fromkeys([*(target.custom_tags or []),
                                                         *f.custom_tags]))
                self._retag(target, region_names)
                if unit_snapshot(target) == before:
                    unchanged += 1
                    continue
                target.updated_at = now
                updated += 1
                pending_events.append(("updated", target, before, previous))
            await session.flush()
            for verb, target, before, previous in pending_events:
                after = unit_snapshot(target)
                unit = org_unit_to_proto(target)
                await self._audit(session, f"org_unit.import.{verb[:-1]}", "org_unit", target.id,
                                  before, after, f"import {request.filename}"[:500])
                if verb == "created":
                    payload = events_pb2.OrgUnitCreated(org_unit=unit)
                else:
                    payload = events_pb2.OrgUnitUpdated(
                        org_unit=unit, previous=previous,
                        changed_fields=[k for k in after if after[k] != before[k]])
                await self.outbox.record(
                    session, ORG_UNIT_CREATED if verb == "created" else ORG_UNIT_UPDATED,
                    payload, target.id)
        return identity_pb2.ImportDealersResponse(accepted=True, created=created, updated=updated,
                                                  unchanged=unchanged)
