"""The customer master every registration points at, and the duplicate check that keeps
it to one customer per hospital: exact matches (credit code anywhere, name or alias
within a city) are refused, fuzzy look-alikes are reported, before a customer is
created, edited, imported or registered.

Customers are shared master data: anyone signed in reads them and the duplicate check;
HQ and channel managers edit and import them. Who holds a claim on a look-alike is
shown only to a viewer whose scope covers that dealer."""

from __future__ import annotations

from dataclasses import replace

from services.registration import messages
from services.registration.domain.customers import (
    EDITABLE,
    Candidate,
    CreatedCustomer,
    Customer,
    CustomerInput,
    CustomerQuery,
    CustomerType,
    CustomerValues,
    CustomerVisibility,
    DuplicateCheck,
    DuplicateQuery,
    NameQuery,
    match_kind_code,
)
from services.registration.domain.imports import ImportReport, RowError, row_error
from services.registration.domain.registrations import AlreadyStored
from services.registration.domain.roles import CUSTOMER_EDITORS
from services.registration.domain.rules import (
    Policy,
    clean_credit_code,
    credit_code_violations,
)
from services.registration.usecases.ports import Names, Places, RegistrationUnitOfWork
from shared import divisions
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_version,
    collect,
)
from shared.events.registration import CUSTOMER_CREATED, CUSTOMER_UPDATED
from shared.ids import IdSource
from shared.names.address import address_key
from shared.names.matching import Match, MatchKind, Reason, Verdict, rank, verdict_of
from shared.pagination import Page, PageRequest
from shared.scope import Scopes
from shared.tabular import Table
from shared.text import campus_of, is_traditional, main_hospital, normalize_name

# Import headers accepted per field (English or Chinese).
CUSTOMER_COLUMNS = {"name": ("name", "名称", "医院名称", "客户名称"),
                    "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
                    "address": ("address", "地址"),
                    "division_code": ("division_code", "行政区划代码", "区划代码"),
                    "grade": ("grade", "等级"), "aliases": ("aliases", "别名"),
                    "departments": ("departments", "科室")}


def place_division(address: str, override: str, field_name: str, places: Places,
                   violations: list[FieldViolation]) -> tuple[str, bool]:
    """The division of a customer: the override (a known city or district code) or the
    one its address places; (code, overridden). What cannot be placed is not guessed."""
    if override:
        if not (divisions.is_code(override) and places.is_known(override)):
            violations.append(FieldViolation(
                field_name, f"{override!r} is not a GB/T 2260 division code"))
            return "", True
        if not divisions.city_of(override):
            violations.append(FieldViolation(
                field_name, f"{override} is a province: pick a city or district"))
        return override, True
    placement = places.place(address)
    if not placement.code:
        violations.append(FieldViolation(
            field_name, f"the address {placement.problem}: pick the division "
                        f"(GB/T 2260 code) in {field_name}"))
        return "", False
    if not divisions.city_of(placement.code):
        violations.append(FieldViolation(
            field_name, f"the address names only a province ({placement.code}): pick a "
                        f"city or district in {field_name}"))
    return placement.code, False


def prepare_customer(data: CustomerInput, where: str, places: Places) -> CustomerValues:
    """Validate a customer input (every bad field named under ``where``) and derive its
    normalized name, division and city."""
    violations: list[FieldViolation] = []
    name = " ".join((data.name or "").split())
    normalized = normalize_name(name)
    if not name:
        violations.append(FieldViolation(f"{where}.name", "is required"))
    elif not normalized:
        violations.append(FieldViolation(
            f"{where}.name", f"{name!r} normalizes to nothing: give the customer's name"))
    elif len(name) > 200:
        violations.append(FieldViolation(f"{where}.name", "must be at most 200 characters"))
    credit_code = clean_credit_code(data.credit_code)
    violations += credit_code_violations(credit_code, f"{where}.credit_code")
    address = " ".join((data.address or "").split())
    division_code, overridden = place_division(address, data.division_code.strip(),
                                               f"{where}.division_code", places, violations)
    aliases: list[str] = []
    for index, alias in enumerate(data.aliases):
        alias = " ".join(alias.split())
        if alias and not normalize_name(alias):
            violations.append(FieldViolation(f"{where}.aliases[{index}]",
                                             "normalizes to nothing"))
        elif alias and alias not in aliases and alias != name:
            aliases.append(alias)
    departments = tuple(dict.fromkeys(d.strip() for d in data.departments if d.strip()))
    collect(violations)
    return CustomerValues(
        name=name, normalized_name=normalized, aliases=tuple(aliases),
        credit_code=credit_code or None, address=address, division_code=division_code,
        division_overridden=overridden, city_code=divisions.city_of(division_code),
        customer_type=data.customer_type or CustomerType.HOSPITAL, grade=data.grade.strip(),
        departments=departments, address_key=address_key(address, division_code))


def names_in_memory(names: Names, policy: Policy, query: NameQuery) -> list[Match]:
    """What the index finds of a name in memory: the same name, alias or canonical form
    in the city, look-alikes, customers at the same address, and the same institution in
    other cities."""
    if not query.city_code:
        return []
    found: list[Match] = []
    if query.normalized:
        found += names.exact(query.city_code, query.normalized)
        found += names.fuzzy(query.city_code, query.normalized, policy.fuzzy_threshold_bps,
                             division_code=query.division_code)
        found += names.other_cities(query.city_code, main_hospital(query.normalized),
                                    campus=bool(query.campus))
    found += names.at_address(query.city_code, query.address_key, query.normalized)
    main = main_hospital(query.normalized)
    if main != query.normalized:
        # A branch may be a customer of its own: its main hospital is for review.
        found += [replace(m, kind=MatchKind.FUZZY_NAME).because(Reason.CAMPUS)
                  for m in names.exact(query.city_code, main)]
    return _explained(found, query)


def _explained(matches: list[Match], query: NameQuery) -> list[Match]:
    """Matches with what the query itself adds to why they matched: it was written in
    traditional script, or named a campus."""
    extra = ((Reason.TRADITIONAL,) if query.traditional else ()) + (
        (Reason.CAMPUS,) if query.campus else ())
    if not extra:
        return matches
    return [m.because(*extra) if m.kind != MatchKind.CREDIT_CODE
            and m.kind != MatchKind.ADDRESS else m for m in matches]


async def find_matches(uow: RegistrationUnitOfWork, names: Names, policy: Policy,
                       query: NameQuery, *, exclude: str = "",
                       from_memory: list[Match] | None = None) -> list[Match]:
    """Every customer the name or code may duplicate, best first. Writes also ask the
    database for the exact name and alias matches (the index may be a refresh interval
    behind another replica's writes); the read-only check answers from the index's
    memory alone (``from_memory``: what ``names_in_memory`` found)."""
    found: list[Match] = []
    if query.credit_code:
        found += [Match(i, MatchKind.CREDIT_CODE, 10000, (Reason.CREDIT_CODE,))
                  for i in await uow.customers.ids_with_credit_code(query.credit_code)]
    if from_memory is not None:
        found += from_memory
    else:
        if query.normalized and query.city_code:
            found += _explained(
                [Match(i, MatchKind.NORMALIZED_NAME, 10000, (Reason.NAME,))
                 for i in await uow.customers.ids_named(query.city_code, query.normalized)]
                + [Match(i, MatchKind.ALIAS, 10000, (Reason.ALIAS,))
                   for i in await uow.customers.ids_with_alias(query.city_code,
                                                               query.normalized)], query)
        found += names_in_memory(names, policy, query)
    return [m for m in rank(found) if m.customer_id != exclude]


def exact_only(matches: list[Match]) -> list[Match]:
    return [m for m in matches if m.exact]


async def evidence(uow: RegistrationUnitOfWork, matches: list[Match], product_line: str,
                   limit: int = 10) -> tuple[Candidate, ...]:
    """The matched customers, each with why it matched and the claims registrations hold
    on it for the product line."""
    matches = matches[:limit]
    if not matches:
        return ()
    ids = [m.customer_id for m in matches]
    customers = await uow.customers.get_many(ids)
    claims: dict[str, list] = {}
    if product_line:
        for holder in await uow.registrations.holders(ids, product_line):
            claims.setdefault(holder.customer_id, []).append(holder.claim())
    return tuple(Candidate(customers[m.customer_id], m.kind, m.score_bps,
                           tuple(claims.get(m.customer_id, ())), m.reasons)
                 for m in matches if m.customer_id in customers)


def duplicate_error(match: Match) -> AlreadyExists:
    kind = match_kind_code(match.kind)
    return AlreadyExists(f"duplicate of customer {match.customer_id} ({kind})",
                         reason="DUPLICATE_CUSTOMER",
                         metadata={"customer_id": match.customer_id, "match_kind": kind})


async def add_customer(uow: RegistrationUnitOfWork, customer: Customer) -> None:
    await uow.customers.add(customer)
    uow.events.record(CUSTOMER_CREATED, messages.customer_created(customer), customer.id)


def remember(names: Names, customers: list[Customer]) -> None:
    """Committed customers into this replica's name index at once (other replicas pick
    them up on their next refresh)."""
    for customer in customers:
        names.put(customer.id, customer.city_code, customer.normalized_name,
                  list(customer.alias_keys), customer.address_key, customer.division_code)


async def check_duplicates(query: DuplicateQuery, *, who: Principal,
                           uow: RegistrationUnitOfWork, scopes: Scopes, names: Names,
                           places: Places, policy: Policy) -> DuplicateCheck:
    """What a registration of this name would meet, writing nothing. A name with no
    match in memory and no credit code is answered without the database."""
    violations: list[FieldViolation] = []
    normalized = normalize_name(query.name)
    credit_code = clean_credit_code(query.credit_code)
    violations += credit_code_violations(credit_code, "credit_code")
    if not normalized and not credit_code:
        violations.append(FieldViolation("name", "give a name that does not normalize to "
                                                 "nothing, or a credit code"))
    division_code = ""
    override = query.division_code.strip()
    if override:
        if not (divisions.is_code(override) and places.is_known(override)):
            violations.append(FieldViolation("division_code",
                                             f"{override!r} is not a GB/T 2260 code"))
        division_code = override
    elif query.address.strip():
        division_code = places.place(query.address).code
    collect(violations)
    name_query = NameQuery(normalized, credit_code or None, divisions.city_of(division_code),
                           division_code, address_key(query.address, division_code),
                           campus_of(query.name), is_traditional(query.name))
    in_memory = names_in_memory(names, policy, name_query)
    if not credit_code and not in_memory:
        return DuplicateCheck(Verdict.NONE, (), normalized, division_code)
    async with uow.read():
        matches = await find_matches(uow, names, policy, name_query, from_memory=in_memory)
        candidates = await evidence(uow, matches, query.product_line.strip())
    viewer = await scopes.resolve(who, "registration.read")
    return DuplicateCheck(verdict_of(matches), candidates, normalized,
                          division_code).seen_by(viewer)


async def create_customer(data: CustomerInput, *, who: Principal, uow: RegistrationUnitOfWork,
                          clock: Clock, ids: IdSource, names: Names, places: Places,
                          policy: Policy) -> CreatedCustomer:
    """A new customer, refused (naming the existing one) when it duplicates one exactly;
    its fuzzy look-alikes come back for information."""
    values = prepare_customer(data, "customer", places)
    try:
        async with uow:
            matches = await find_matches(uow, names, policy, values.name_query())
            if exact := exact_only(matches):
                raise duplicate_error(exact[0])
            customer = values.create(ids.new_id(), clock.now(), who.subject)
            await add_customer(uow, customer)
            possible = await evidence(uow, matches, "")
            await uow.commit()
    except AlreadyStored:
        # Another request created it meanwhile: name the one it created.
        async with uow.read():
            matches = await find_matches(uow, names, policy, values.name_query())
        if exact := exact_only(matches):
            raise duplicate_error(exact[0]) from None
        raise FailedPrecondition("another change touched this customer meanwhile; create it "
                                 "again", reason="CONCURRENT_CHANGE") from None
    remember(names, [customer])
    return CreatedCustomer(customer, possible)


async def visibility(who: Principal, scopes: Scopes) -> CustomerVisibility:
    viewer = await scopes.resolve(who, "registration.read")
    return CustomerVisibility.of(viewer, who.has_role(*CUSTOMER_EDITORS))


async def visible_customer(uow: RegistrationUnitOfWork, customer_id: str,
                           visible: CustomerVisibility) -> Customer:
    """The customer, or NOT_FOUND when the viewer may not see it (never 403: ids leak
    nothing)."""
    customer = await uow.customers.get(customer_id)
    if customer is None or not (visible.everything or visible.allows(
            await uow.customers.tied_dealers(customer_id))):
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def get_customer(customer_id: str, *, who: Principal, uow: RegistrationUnitOfWork,
                       scopes: Scopes) -> Customer:
    visible = await visibility(who, scopes)
    async with uow.read():
        return await visible_customer(uow, customer_id, visible)


async def list_customers(query: CustomerQuery, page: PageRequest, *, who: Principal,
                         uow: RegistrationUnitOfWork, scopes: Scopes) -> Page[Customer]:
    """The customers the viewer may see (``CustomerVisibility``)."""
    code = query.division_code.strip()
    if code and not divisions.is_code(code):
        raise InvalidArgument.field("division_code", f"{code!r} is not a division code")
    visible = await visibility(who, scopes)
    async with uow.read():
        return await uow.customers.page(replace(query, text=query.text.strip(),
                                                division_code=code), page, visible)


async def update_customer(customer_id: str, values: CustomerInput, paths: list[str], *,
                          who: Principal, uow: RegistrationUnitOfWork, clock: Clock,
                          scopes: Scopes, names: Names, places: Places,
                          policy: Policy, expected_version: int = 0) -> Customer:
    """Change the fields named in ``paths``; naming division_code overrides the division,
    changing only the address places it again. A customer the editor may not see is not
    found; one no longer at ``expected_version`` (If-Match; 0: none) is StaleVersion."""
    unknown = [p for p in paths if p not in EDITABLE]
    if not paths or unknown:
        raise InvalidArgument.field("update_mask", f"give paths among {sorted(EDITABLE)}"
                                    + (f"; unknown {unknown}" if unknown else ""))
    visible = await visibility(who, scopes)
    async with uow:
        current = await visible_customer(uow, customer_id, visible)
        if not who.has_role(*CUSTOMER_EDITORS):
            raise PermissionDenied("only HQ and channel managers edit the customer master")
        check_version(f"customer {current.id}", expected_version, current.version)
        changes = {path: getattr(values, path) for path in paths}
        if "address" in paths and "division_code" not in paths:
            changes["division_code"] = ""
        prepared = prepare_customer(current.as_input(**changes), "customer", places)
        matches = await find_matches(uow, names, policy, prepared.name_query(),
                                     exclude=current.id)
        if exact := exact_only(matches):
            raise duplicate_error(exact[0])
        customer, changed = current.revised(prepared, clock.now())
        try:
            customer = replace(customer, version=await uow.customers.save(customer))
        except AlreadyStored as exc:
            raise FailedPrecondition("another change took this name or credit code "
                                     "meanwhile; edit again", reason="CONCURRENT_CHANGE"
                                     ) from exc
        uow.events.record(CUSTOMER_UPDATED, messages.customer_updated(customer, changed),
                          customer.id)
        await uow.commit()
    remember(names, [customer])
    return customer


def _split_list(cell: str) -> tuple[str, ...]:
    return tuple(part for part in cell.replace("；", ";").split(";") if part.strip())


async def import_customers(table: Table, *, dry_run: bool, who: Principal,
                           uow: RegistrationUnitOfWork, clock: Clock, ids: IdSource,
                           names: Names, places: Places, policy: Policy) -> ImportReport:
    """All or nothing: every row is checked (its fields, duplicates within the file and
    of known customers) and either all are created or none, with every failing row
    reported."""
    if not who.has_role(*CUSTOMER_EDITORS):
        raise PermissionDenied("only HQ and channel managers import customers")
    mapping = {key: table.column(*headers) or "" for key, headers in CUSTOMER_COLUMNS.items()}
    if not mapping["name"]:
        raise InvalidArgument.field("content", "the header has no name column "
                                               "(name / 名称 / 医院名称)")
    errors: list[RowError] = []
    prepared: list[tuple[int, CustomerValues]] = []
    seen: dict[tuple[str, str], int] = {}
    seen_codes: dict[str, int] = {}
    for number, row in table.rows:
        def cell(key: str, row=row) -> str:
            return row.get(mapping[key], "") if mapping[key] else ""

        data = CustomerInput(
            name=cell("name"), credit_code=cell("credit_code"), address=cell("address"),
            division_code=cell("division_code"), grade=cell("grade"),
            aliases=_split_list(cell("aliases")), departments=_split_list(cell("departments")))
        try:
            values = prepare_customer(data, "row", places)
        except InvalidArgument as error:
            for violation in error.violations:
                key = violation.field.split(".", 1)[1].split("[")[0]
                errors.append(row_error(number, mapping.get(key, ""), violation,
                                        cell(key) if key in mapping else ""))
            continue
        key = (values.city_code, values.normalized_name)
        if key in seen or (values.credit_code and values.credit_code in seen_codes):
            other = seen.get(key) or seen_codes.get(values.credit_code or "")
            errors.append(RowError(number, mapping["name"], "DUPLICATE_IN_FILE",
                                   f"与第 {other} 行重复", f"duplicates row {other}",
                                   values.name))
            continue
        seen[key] = number
        if values.credit_code:
            seen_codes[values.credit_code] = number
        prepared.append((number, values))
    async with uow.read():
        for number, values in prepared:
            matches = await find_matches(uow, names, policy, values.name_query())
            if exact := exact_only(matches):
                errors.append(RowError(
                    number, mapping["name"], "DUPLICATE",
                    f"与已有客户 {exact[0].customer_id} 重复",
                    f"duplicate of customer {exact[0].customer_id} "
                    f"({match_kind_code(exact[0].kind)})", values.name))
    errors.sort(key=lambda e: (e.row_number, e.column))
    if errors or dry_run:
        return ImportReport(accepted=not errors, errors=tuple(errors))
    now = clock.now()
    created = [values.create(ids.new_id(), now, who.subject) for _, values in prepared]
    try:
        async with uow:
            for customer in created:
                await add_customer(uow, customer)
            await uow.commit()
    except AlreadyStored as exc:
        raise FailedPrecondition("another change created one of these customers while "
                                 "importing; nothing was written, import again",
                                 reason="CONCURRENT_CHANGE") from exc
    remember(names, created)
    return ImportReport(accepted=True, created=len(created))


async def target_customer(uow: RegistrationUnitOfWork, customer_id: str,
                          values: CustomerValues | None, *, who: Principal, clock: Clock,
                          ids: IdSource, names: Names,
                          policy: Policy) -> tuple[Customer, bool, list[Match]]:
    """The customer a registration names: an existing one by id, or the known customer
    a new one duplicates exactly, or the new one (not stored yet). Returns (customer, is
    new, the fuzzy look-alikes of a new one)."""
    if values is None:
        customer = await uow.customers.get(customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer, False, []
    matches = await find_matches(uow, names, policy, values.name_query())
    if exact := exact_only(matches):
        return await uow.customers.get(exact[0].customer_id), False, []
    return values.create(ids.new_id(), clock.now(), who.subject), True, matches
