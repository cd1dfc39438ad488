"""Dealers in bulk from a CSV or XLSX file: all or nothing. Every bad row is reported
(row number as in the file, column, reason in Chinese and English) and nothing is
written; a good file creates and updates its dealers, each audited and announced as a
single change would be."""

from __future__ import annotations

from dataclasses import replace

from services.identity import messages
from services.identity.domain import dealer_import
from services.identity.domain.dealer_import import DealerFile, ImportOutcome, ImportRow
from services.identity.domain.model import OrgUnit, changed_fields
from services.identity.domain.rules import OrgKind
from services.identity.usecases.access import audit, require_admin
from services.identity.usecases.ports import IdentityUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import InvalidArgument
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED, TAGS_CHANGED
from shared.ids import IdSource
from shared.tabular import read_table_isolated

# Dealers are counted in thousands; a larger file is a mistake, not an import.
MAX_IMPORT_ROWS = 20_000


async def _rows(file: DealerFile) -> tuple[list[ImportRow], list[dealer_import.RowProblem]]:
    table = await read_table_isolated(file.content, file.filename, file.file_format,
                                      file.encoding, MAX_IMPORT_ROWS)
    index, problems = dealer_import.map_header(table.header)
    parsed: list[ImportRow] = []
    if problems:
        return parsed, problems
    if not table.rows:
        raise InvalidArgument.field("content", "the file has no dealer rows")
    for number, values in table.rows:
        row, row_problems = dealer_import.parse_row(
            number, [values.get(name, "") for name in table.header], index)
        problems += row_problems
        if row is not None:
            parsed.append(row)
    return parsed, problems + dealer_import.duplicate_problems(parsed)


def _planned(rows: list[ImportRow], regions: dict[str, OrgUnit],
             existing: dict[str, OrgUnit], *, clock: Clock,
             ids: IdSource) -> list[tuple[OrgUnit | None, OrgUnit]]:
    """(the unit as it is or None, the unit as the file makes it) for each row whose
    dealer the file creates or changes; platform dealers first, so that sub-dealers can
    point at them."""
    names = {code: region.name for code, region in regions.items()}
    by_code = dict(existing)
    now = clock.now()
    planned = []
    for row in sorted(rows, key=lambda r: bool(r.platform_credit_code)):
        fields = row.fields
        region = regions[row.region_code]
        platform = by_code.get(row.platform_credit_code) if row.platform_credit_code else None
        current = existing.get(fields.credit_code)
        values = dict(name=fields.name, parent_id=region.id, tier=fields.tier,
                      platform_dealer_id=platform.id if platform else None,
                      region_code=region.region_code, division_codes=fields.division_codes,
                      product_lines=fields.product_lines, status=fields.status,
                      city_code=fields.city_code,
                      shared_with_platform=bool(platform and row.shared_with_platform))
        if current is None:
            unit = OrgUnit(id=ids.new_id(), kind=OrgKind.DEALER, credit_code=fields.credit_code,
                           custom_tags=fields.custom_tags, created_at=now,
                           **values).retagged(names)
            by_code[fields.credit_code] = unit
            planned.append((None, unit))
            continue
        unit = replace(current, custom_tags=tuple(dict.fromkeys(
            (*current.custom_tags, *fields.custom_tags))), **values).retagged(names)
        if unit.snapshot() != current.snapshot():
            planned.append((current, replace(unit, updated_at=now)))
    return planned


async def import_dealers(file: DealerFile, dry_run: bool, *, who: Principal,
                         uow: IdentityUnitOfWork, clock: Clock, ids: IdSource) -> ImportOutcome:
    """Create or update (by credit code) the file's dealers. ``dry_run`` checks and
    counts without writing."""
    require_admin(who, "import dealers")
    rows, problems = await _rows(file)
    async with uow:
        regions = {region.region_code: region for region in await uow.org_units.regions()}
        existing = await uow.org_units.by_credit_codes(
            [row.fields.credit_code for row in rows]
            + [row.platform_credit_code for row in rows if row.platform_credit_code])
        sub_dealers = await uow.org_units.sub_dealers(unit.id for unit in existing.values())
        problems += dealer_import.reference_problems(rows, regions, existing, sub_dealers)
        if problems:
            return ImportOutcome(False, problems=tuple(sorted(
                problems, key=lambda p: (p.row_number, p.column))))
        planned = _planned(rows, regions, existing, clock=clock, ids=ids)
        created = [unit for current, unit in planned if current is None]
        updated = [(current, unit) for current, unit in planned if current is not None]
        outcome = ImportOutcome(True, created=len(created), updated=len(updated),
                                unchanged=len(rows) - len(planned))
        if dry_run:
            return outcome
        await uow.org_units.add_many(created)
        for _current, unit in updated:
            await uow.org_units.update(unit)
        reason = f"import {file.filename}"
        for current, unit in planned:
            verb = "create" if current is None else "update"
            before = current.snapshot() if current is not None else None
            await audit(uow, f"org_unit.import.{verb}", "org_unit", unit.id, before,
                        unit.snapshot(), reason, who=who, clock=clock, ids=ids)
            if current is None:
                uow.events.record(ORG_UNIT_CREATED, messages.org_unit_created(unit), unit.id)
                continue
            uow.events.record(ORG_UNIT_UPDATED, messages.org_unit_updated(
                unit, current, changed_fields(before, unit.snapshot())), unit.id)
            if (unit.derived_tags, unit.custom_tags) != (current.derived_tags,
                                                         current.custom_tags):
                uow.events.record(TAGS_CHANGED, messages.tags_changed(
                    unit, current.derived_tags, current.custom_tags), unit.id)
        await uow.commit()
    return outcome
