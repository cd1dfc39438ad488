"""How the duplicate check learns other names of customers: HQ imports alias lists
(name, alias, source), and every HQ decision that two customers are one — a merge, or a
conflict decided as "the same customer" — keeps the losing spelling as an alias of the
customer that stays. Aliases are indexed like names from then on."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.customers import Customer
from services.registration.domain.imports import ImportReport, RowError
from services.registration.domain.registrations import SlotTaken
from services.registration.domain.roles import ALIAS_EDITORS, HQ_DECIDERS
from services.registration.usecases.customers import remember, visibility, visible_customer
from services.registration.usecases.ports import Names, RegistrationUnitOfWork
from shared import divisions
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    collect,
)
from shared.events.registration import CUSTOMER_MERGED, CUSTOMER_UPDATED
from shared.scope import Scopes
from shared.tabular import Table
from shared.text import normalize_name

ALIAS_COLUMNS = {"name": ("name", "名称", "客户名称", "医院名称"), "alias": ("alias", "别名"),
                 "source": ("source", "来源"),
                 "division_code": ("division_code", "行政区划代码", "区划代码")}


def _with_aliases(customer: Customer, spellings: list[str]) -> Customer:
    aliases = list(customer.aliases)
    for spelling in spellings:
        spelling = " ".join(spelling.split())
        if (spelling and spelling not in aliases
                and normalize_name(spelling) != customer.normalized_name):
            aliases.append(spelling)
    return replace(customer, aliases=tuple(aliases))


async def import_aliases(table: Table, *, dry_run: bool, who: Principal,
                         uow: RegistrationUnitOfWork, clock: Clock,
                         names: Names) -> ImportReport:
    """All or nothing: each row names a known customer (by name, or name and division
    where the name is not unique) and an alias that is no other customer's name or
    alias in its city; any failing row means nothing is written."""
    if not who.has_role(*ALIAS_EDITORS):
        raise PermissionDenied("only HQ imports alias lists")
    mapping = {key: table.column(*headers) or "" for key, headers in ALIAS_COLUMNS.items()}
    missing = [key for key in ("name", "alias") if not mapping[key]]
    if missing:
        raise InvalidArgument.field("content", f"the header has no {' and no '.join(missing)} "
                                               "column (name / 名称, alias / 别名)")
    errors: list[RowError] = []
    added: dict[str, tuple[Customer, list[str], str]] = {}
    async with uow.read():
        for number, row in table.rows:
            def cell(key: str, row=row) -> str:
                return " ".join(row.get(mapping[key], "").split()) if mapping[key] else ""

            def fail(key: str, code: str, zh: str, en: str, number=number) -> None:
                errors.append(RowError(number, mapping[key], code, zh, en, cell(key)))

            name, alias, code = cell("name"), cell("alias"), cell("division_code")
            if not normalize_name(name):
                fail("name", "REQUIRED", "名称必填", "name is required")
                continue
            if not normalize_name(alias):
                fail("alias", "REQUIRED", "别名必填", "alias is required")
                continue
            if code and not divisions.is_known(code):
                fail("division_code", "INVALID_VALUE", f"区划代码 {code} 不存在",
                     f"{code} is not a GB/T 2260 division code")
                continue
            found = await uow.customers.ids_named_anywhere(normalize_name(name),
                                                           divisions.city_of(code))
            if len(found) != 1:
                fail("name", "NOT_FOUND" if not found else "AMBIGUOUS",
                     f"没有名为 {name} 的客户" if not found
                     else f"{len(found)} 个客户名为 {name}：请填写区划代码",
                     f"no customer is named {name}" if not found
                     else f"{len(found)} customers are named {name}: give division_code")
                continue
            customer, spellings, source = added.get(found[0]) or (
                await uow.customers.get(found[0]), [], cell("source"))
            key = normalize_name(alias)
            others = {*await uow.customers.ids_named(customer.city_code, key),
                      *await uow.customers.ids_with_alias(customer.city_code, key)}
            others.discard(customer.id)
            if others:
                fail("alias", "DUPLICATE", f"别名 {alias} 已是另一客户的名称或别名",
                     f"{alias} is the name or alias of customer {sorted(others)[0]}")
                continue
            if alias not in customer.aliases and key != customer.normalized_name:
                spellings.append(alias)
            added[customer.id] = (customer, spellings, source)
    errors.sort(key=lambda e: (e.row_number, e.column))
    count = sum(len(spellings) for _, spellings, _ in added.values())
    if errors or dry_run:
        return ImportReport(accepted=not errors, created=0 if errors else count,
                            errors=tuple(errors))
    now = clock.now()
    saved = []
    async with uow:
        for customer, spellings, source in added.values():
            if not spellings:
                continue
            updated = replace(_with_aliases(customer, spellings), updated_at=now)
            updated = replace(updated, version=await uow.customers.save(
                updated, alias_source=f"import:{source or 'HQ'}"))
            uow.events.record(CUSTOMER_UPDATED, messages.customer_updated(updated, ["aliases"]),
                              updated.id)
            saved.append(updated)
        await uow.commit()
    remember(names, saved)
    return ImportReport(accepted=True, created=count)


async def merge_into(uow: RegistrationUnitOfWork, kept: Customer, merged: Customer,
                     source: str, now) -> Customer:
    """Fold ``merged`` into ``kept`` inside the caller's unit of work: its name and
    aliases become aliases of ``kept``, its registrations, grants and leads move over.
    Refused when both hold the same product line (HQ decides that conflict first)."""
    registrations = await uow.registrations.of_customer(merged.id)
    if any(r.conflict_id for r in registrations if r.holds_slot):
        raise FailedPrecondition(f"customer {merged.id} is part of an open conflict: resolve "
                                 "it first", reason="CONFLICT_OPEN")
    await uow.customers.remove(merged.id)
    result = replace(_with_aliases(kept, [merged.name, *merged.aliases]), updated_at=now)
    result = replace(result, version=await uow.customers.save(result, alias_source=source))
    for registration in registrations:
        try:
            await uow.registrations.save(replace(registration, customer_id=kept.id,
                                                 customer_name=kept.name))
        except SlotTaken:
            raise FailedPrecondition(
                f"both customers are held for {registration.product_line}: decide which "
                "claim wins first", reason="CUSTOMER_HELD") from None
    await uow.authorizations.move_customer(merged.id, kept.id, kept.name)
    await uow.leads.move_customer(merged.id, kept.id)
    uow.events.record(CUSTOMER_UPDATED, messages.customer_updated(result, ["aliases"]),
                      result.id)
    # Registrations, grants and leads moved without events of their own: this one tells
    # the projections of other services to follow.
    uow.events.record(CUSTOMER_MERGED, messages.customer_merged(result, merged), result.id)
    return result


async def merge_customers(customer_id: str, merged_customer_id: str, note: str, *,
                          who: Principal, uow: RegistrationUnitOfWork, clock: Clock,
                          scopes: Scopes, names: Names) -> Customer:
    """HQ says two customers are one: the second is folded into the first. Both must be
    customers the caller sees."""
    if not who.has_role(*HQ_DECIDERS):
        raise PermissionDenied("only HQ merges customers")
    violations = []
    for field_name, value in (("customer_id", customer_id),
                              ("merged_customer_id", merged_customer_id),
                              ("note", note.strip())):
        if not value:
            violations.append(FieldViolation(field_name, "is required"))
    if customer_id and customer_id == merged_customer_id:
        violations.append(FieldViolation("merged_customer_id", "is the customer kept"))
    collect(violations)
    visible = await visibility(who, scopes)
    async with uow:
        kept = await visible_customer(uow, customer_id, visible)
        merged = await visible_customer(uow, merged_customer_id, visible)
        result = await merge_into(uow, kept, merged, "merge", clock.now())
        await uow.commit()
    names.remove(merged.id)
    remember(names, [result])
    return result
