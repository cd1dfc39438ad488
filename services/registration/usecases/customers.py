"""The customer master every registration points at, and the duplicate check that
keeps it to one customer per hospital: exact matches (credit code anywhere, name or alias
within a city) are refused, fuzzy look-alikes are reported, before a customer is created,
edited, imported or registered."""

from __future__ import annotations

import asyncio
from datetime import datetime

from qudao.common.v1 import files_pb2
from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from services.registration.adapters import places
from services.registration.adapters.orm import CustomerAliasRow, CustomerRow, RegistrationRow
from services.registration.domain.rules import Status, clean_credit_code, credit_code_violations
from services.registration.usecases.common import (
    CUSTOMER_EDITORS,
    KIND_TO_PROTO,
    STATUS_TO_PROTO,
    VERDICT_TO_PROTO,
    UseCaseBase,
    _hide_dealers,
    _new_id,
    _now,
    _row_error,
    _set_ts,
    customer_to_proto,
    page_args,
)
from shared import divisions
from shared.context import current_principal
from shared.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.registration import CUSTOMER_CREATED, CUSTOMER_UPDATED
from shared.names.matching import Match, MatchKind, Verdict, rank, verdict_of
from shared.pagination import decode_page_token, encode_page_token
from shared.tabular import read_table
from shared.text import normalize_name


class PreparedCustomer:
    """A customer input validated and derived: normalized name, division, city."""

    def __init__(self, **values) -> None:
        self.values = values

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class CustomerUseCases(UseCaseBase):
    def prepare_customer(self, data: pb.CustomerInput, where: str = "customer"
                         ) -> PreparedCustomer:
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
        division_code, overridden = self._division(address, data.division_code.strip(), where,
                                                   violations)
        aliases = []
        for index, alias in enumerate(data.aliases):
            alias = " ".join(alias.split())
            if alias and not normalize_name(alias):
                violations.append(FieldViolation(f"{where}.aliases[{index}]",
                                                 "normalizes to nothing"))
            elif alias and alias not in aliases and alias != name:
                aliases.append(alias)
        departments = list(dict.fromkeys(d.strip() for d in data.departments if d.strip()))
        collect(violations)
        return PreparedCustomer(
            name=name, normalized=normalized, credit_code=credit_code or None, address=address,
            division_code=division_code, overridden=overridden,
            city_code=divisions.city_of(division_code), aliases=aliases,
            customer_type=data.customer_type or pb.CUSTOMER_TYPE_HOSPITAL,
            grade=data.grade.strip(), departments=departments)

    def _division(self, address: str, override: str, where: str,
                  violations: list[FieldViolation]) -> tuple[str, bool]:
        field_name = f"{where}.division_code"
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

    def _name_matches_in_memory(self, normalized: str, city_code: str) -> list[Match]:
        if not (normalized and city_code):
            return []
        return (self.index.exact(city_code, normalized)
                + self.index.fuzzy(city_code, normalized, self.policy.fuzzy_threshold_bps))

    async def _matches(self, session, normalized: str, credit_code: str | None, city_code: str,
                       exclude: str = "", from_memory: bool = False) -> list[Match]:
        """Every customer the name or code may duplicate. Writes ask the database for the
        exact matches; the read-only check may answer them from the index's memory
        (``from_memory``), which is at most a refresh interval behind."""
        found: list[Match] = []
        if credit_code:
            ids = (await session.scalars(select(CustomerRow.id).where(
                CustomerRow.credit_code == credit_code))).all()
            found += [Match(i, MatchKind.CREDIT_CODE, 10000) for i in ids]
        if from_memory:
            found += self._name_matches_in_memory(normalized, city_code)
        elif normalized and city_code:
            ids = (await session.scalars(select(CustomerRow.id).where(
                CustomerRow.city_code == city_code,
                CustomerRow.normalized_name == normalized))).all()
            found += [Match(i, MatchKind.NORMALIZED_NAME, 10000) for i in ids]
            ids = (await session.scalars(select(CustomerAliasRow.customer_id).where(
                CustomerAliasRow.city_code == city_code,
                CustomerAliasRow.normalized_alias == normalized))).all()
            found += [Match(i, MatchKind.ALIAS, 10000) for i in ids]
            found += self.index.fuzzy(city_code, normalized, self.policy.fuzzy_threshold_bps)
        return [m for m in rank(found) if m.customer_id != exclude]

    async def _evidence(self, session, matches: list[Match], product_line: str,
                        limit: int = 10) -> list[pb.DuplicateCandidate]:
        matches = matches[:limit]
        if not matches:
            return []
        ids = [m.customer_id for m in matches]
        customers = {row.id: row for row in (await session.scalars(
            select(CustomerRow).where(CustomerRow.id.in_(ids)))).all()}
        claims: dict[str, list[RegistrationRow]] = {}
        if product_line:
            for row in (await session.scalars(select(RegistrationRow).where(
                    RegistrationRow.customer_id.in_(ids),
                    RegistrationRow.product_line == product_line,
                    RegistrationRow.active_key.is_not(None)))).all():
                claims.setdefault(row.customer_id, []).append(row)
        result = []
        for match in matches:
            customer = customers.get(match.customer_id)
            if customer is None:
                continue
            candidate = pb.DuplicateCandidate(customer=customer_to_proto(customer),
                                              match_kind=KIND_TO_PROTO[match.kind],
                                              score_bps=match.score_bps)
            for claim in claims.get(match.customer_id, []):
                summary = pb.ClaimSummary(registration_id=claim.id, dealer_id=claim.dealer_id,
                                          product_line=claim.product_line,
                                          status=STATUS_TO_PROTO[Status(claim.status)])
                _set_ts(summary.submitted_at, claim.submitted_at)
                _set_ts(summary.protected_until, claim.protected_until)
                candidate.claims.append(summary)
            result.append(candidate)
        return result

    async def check_duplicates(self, request: pb.CheckDuplicatesRequest
                               ) -> pb.CheckDuplicatesResponse:
        violations: list[FieldViolation] = []
        normalized = normalize_name(request.name)
        credit_code = clean_credit_code(request.credit_code)
        violations += credit_code_violations(credit_code, "credit_code")
        if not normalized and not credit_code:
            violations.append(FieldViolation("name", "give a name that does not normalize to "
                                                     "nothing, or a credit code"))
        division_code = ""
        override = request.division_code.strip()
        if override:
            if not (divisions.is_code(override) and places.is_known(override)):
                violations.append(FieldViolation("division_code",
                                                 f"{override!r} is not a GB/T 2260 code"))
            division_code = override
        elif request.address.strip():
            division_code = places.place(request.address).code
        collect(violations)
        city_code = divisions.city_of(division_code)
        if not credit_code and not self._name_matches_in_memory(normalized, city_code):
            # A new customer, as most checks are: answered without touching the database.
            return pb.CheckDuplicatesResponse(verdict=VERDICT_TO_PROTO[Verdict.NONE],
                                              normalized_name=normalized,
                                              division_code=division_code)
        async with self.db.read() as session:
            matches = await self._matches(session, normalized, credit_code or None, city_code,
                                          from_memory=True)
            candidates = await self._evidence(session, matches, request.product_line.strip())
        viewer = await self._scope("registration.read")
        if not viewer.all_dealers:
            candidates = [_hide_dealers(c, viewer) for c in candidates]
        return pb.CheckDuplicatesResponse(verdict=VERDICT_TO_PROTO[verdict_of(matches)],
                                          candidates=candidates, normalized_name=normalized,
                                          division_code=division_code)

    def _customer_row(self, prepared: PreparedCustomer, now: datetime) -> CustomerRow:
        return CustomerRow(
            id=_new_id(), name=prepared.name, normalized_name=prepared.normalized,
            aliases=prepared.aliases, credit_code=prepared.credit_code,
            address=prepared.address, division_code=prepared.division_code,
            division_overridden=prepared.overridden, city_code=prepared.city_code,
            customer_type=prepared.customer_type, grade=prepared.grade,
            departments=prepared.departments, created_at=now, updated_at=now,
            created_by=current_principal().subject)

    async def _insert_customer(self, session, row: CustomerRow) -> None:
        session.add(row)
        await session.flush()
        for alias in row.aliases:
            normalized = normalize_name(alias)
            if normalized and normalized != row.normalized_name and await session.get(
                    CustomerAliasRow, (row.city_code, normalized)) is None:
                session.add(CustomerAliasRow(city_code=row.city_code,
                                             normalized_alias=normalized, customer_id=row.id))
        await session.flush()
        await self._event(session, CUSTOMER_CREATED,
                          events_pb2.CustomerCreated(customer=customer_to_proto(row)), row.id)

    async def create_customer(self, data: pb.CustomerInput) -> pb.CreateCustomerResponse:
        prepared = self.prepare_customer(data)
        try:
            async with self.db.write() as session:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
                exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
                if exact:
                    raise self._duplicate_error(exact[0])
                row = self._customer_row(prepared, _now())
                await self._insert_customer(session, row)
                possible = await self._evidence(session, matches, "")
        except IntegrityError:
            async with self.db.read() as session:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
            exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
            if exact:
                raise self._duplicate_error(exact[0]) from None
            raise
        self._after_commit_index([row])
        return pb.CreateCustomerResponse(customer=customer_to_proto(row),
                                         possible_duplicates=possible)

    @staticmethod
    def _duplicate_error(match: Match) -> AlreadyExists:
        kind = pb.MatchKind.Name(KIND_TO_PROTO[match.kind])
        return AlreadyExists(f"duplicate of customer {match.customer_id} ({kind})",
                             reason="DUPLICATE_CUSTOMER",
                             metadata={"customer_id": match.customer_id, "match_kind": kind})

    async def get_customer(self, customer_id: str) -> pb.Customer:
        async with self.db.read() as session:
            row = await session.get(CustomerRow, customer_id)
        if row is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer_to_proto(row)

    async def _customer_or_404(self, customer_id: str) -> CustomerRow:
        async with self.db.read() as session:
            customer = await session.get(CustomerRow, customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer

    async def list_customers(self, request: pb.ListCustomersRequest):
        size, token = page_args(request.page)
        offset = decode_page_token(token)
        query = select(CustomerRow).order_by(CustomerRow.name, CustomerRow.id)
        text = request.query.strip()
        if text:
            normalized = normalize_name(text) or text
            query = query.where(or_(CustomerRow.name.contains(text),
                                    CustomerRow.normalized_name.contains(normalized),
                                    CustomerRow.credit_code == clean_credit_code(text)))
        if request.division_code:
            code = request.division_code.strip()
            if not divisions.is_code(code):
                raise InvalidArgument.field("division_code", f"{code!r} is not a division code")
            query = query.where(CustomerRow.division_code.startswith(divisions.prefix(code)))
        if request.customer_type:
            query = query.where(CustomerRow.customer_type == request.customer_type)
        async with self.db.read() as session:
            total = (await session.execute(select(func.count()).select_from(
                query.order_by(None).subquery()))).scalar_one()
            rows = (await session.scalars(query.offset(offset).limit(size + 1))).all()
        more = len(rows) > size
        return ([customer_to_proto(r) for r in rows[:size]],
                encode_page_token(offset + size) if more else "", total)

    async def update_customer(self, customer_id: str, values: pb.Customer,
                              paths: list[str]) -> pb.Customer:
        if not current_principal().has_role(*CUSTOMER_EDITORS):
            raise PermissionDenied("only HQ and channel managers edit the customer master")
        allowed = {"name", "aliases", "credit_code", "address", "division_code",
                   "customer_type", "grade", "departments"}
        unknown = [p for p in paths if p not in allowed]
        if not paths or unknown:
            raise InvalidArgument.field("update_mask", f"give paths among {sorted(allowed)}"
                                        + (f"; unknown {unknown}" if unknown else ""))
        async with self.db.write() as session:
            row = await session.get(CustomerRow, customer_id)
            if row is None:
                raise NotFound(f"customer {customer_id} not found")
            merged = pb.CustomerInput(
                name=values.name if "name" in paths else row.name,
                aliases=values.aliases if "aliases" in paths else row.aliases,
                credit_code=values.credit_code if "credit_code" in paths else (
                    row.credit_code or ""),
                address=values.address if "address" in paths else row.address,
                division_code=(values.division_code if "division_code" in paths
                               else (row.division_code if row.division_overridden
                                     and "address" not in paths else "")),
                customer_type=(values.customer_type if "customer_type" in paths
                               else row.customer_type),
                grade=values.grade if "grade" in paths else row.grade,
                departments=values.departments if "departments" in paths else row.departments)
            prepared = self.prepare_customer(merged, "customer")
            matches = await self._matches(session, prepared.normalized, prepared.credit_code,
                                          prepared.city_code, exclude=row.id)
            exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
            if exact:
                raise self._duplicate_error(exact[0])
            changed = []
            for attribute, value in (("name", prepared.name), ("aliases", prepared.aliases),
                                     ("credit_code", prepared.credit_code),
                                     ("address", prepared.address),
                                     ("division_code", prepared.division_code),
                                     ("customer_type", prepared.customer_type),
                                     ("grade", prepared.grade),
                                     ("departments", prepared.departments)):
                if getattr(row, attribute) != value:
                    setattr(row, attribute, value)
                    changed.append(attribute)
            row.normalized_name = prepared.normalized
            row.city_code = prepared.city_code
            row.division_overridden = prepared.overridden
            row.updated_at = _now()
            if "aliases" in changed or "division_code" in changed:
                for alias in (await session.scalars(select(CustomerAliasRow).where(
                        CustomerAliasRow.customer_id == row.id))).all():
                    await session.delete(alias)
                await session.flush()
                for alias in row.aliases:
                    normalized = normalize_name(alias)
                    if normalized and await session.get(
                            CustomerAliasRow, (row.city_code, normalized)) is None:
                        session.add(CustomerAliasRow(city_code=row.city_code,
                                                     normalized_alias=normalized,
                                                     customer_id=row.id))
            await session.flush()
            await self._event(session, CUSTOMER_UPDATED, events_pb2.CustomerUpdated(
                customer=customer_to_proto(row), changed_fields=changed), row.id)
        self._after_commit_index([row])
        return customer_to_proto(row)

    async def import_customers(self, request: pb.ImportCustomersRequest
                               ) -> pb.ImportCustomersResponse:
        if not current_principal().has_role(*CUSTOMER_EDITORS):
            raise PermissionDenied("only HQ and channel managers import customers")
        table = await asyncio.to_thread(read_table, request.content, request.filename,
                                        request.format, request.encoding)
        columns = {"name": ("name", "名称", "医院名称", "客户名称"),
                   "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
                   "address": ("address", "地址"),
                   "division_code": ("division_code", "行政区划代码", "区划代码"),
                   "grade": ("grade", "等级"), "aliases": ("aliases", "别名"),
                   "departments": ("departments", "科室")}
        mapping = {key: table.column(*names) or "" for key, names in columns.items()}
        if not mapping["name"]:
            raise InvalidArgument.field("content", "the header has no name column "
                                                   "(name / 名称 / 医院名称)")
        errors: list = []
        prepared_rows: list[tuple[int, PreparedCustomer]] = []
        seen: dict[tuple[str, str], int] = {}
        seen_codes: dict[str, int] = {}
        for number, row in table.rows:
            def cell(key: str, row=row) -> str:
                return row.get(mapping[key], "") if mapping[key] else ""
            data = pb.CustomerInput(
                name=cell("name"), credit_code=cell("credit_code"), address=cell("address"),
                division_code=cell("division_code"), grade=cell("grade"),
                aliases=[a for a in cell("aliases").replace("；", ";").split(";") if a.strip()],
                departments=[d for d in cell("departments").replace("；", ";").split(";")
                             if d.strip()])
            try:
                prepared = self.prepare_customer(data, "row")
            except InvalidArgument as error:
                for violation in error.violations:
                    key = violation.field.split(".", 1)[1].split("[")[0]
                    errors.append(_row_error(number, mapping.get(key, ""), violation,
                                             cell(key) if key in mapping else ""))
                continue
            key = (prepared.city_code, prepared.normalized)
            if key in seen or (prepared.credit_code and prepared.credit_code in seen_codes):
                other = seen.get(key) or seen_codes.get(prepared.credit_code or "")
                errors.append(files_pb2.RowError(
                    row_number=number, column=mapping["name"], code="DUPLICATE_IN_FILE",
                    message_zh=f"与第 {other} 行重复", message_en=f"duplicates row {other}",
                    value=prepared.name))
                continue
            seen[key] = number
            if prepared.credit_code:
                seen_codes[prepared.credit_code] = number
            prepared_rows.append((number, prepared))
        async with self.db.read() as session:
            for number, prepared in prepared_rows:
                matches = await self._matches(session, prepared.normalized,
                                              prepared.credit_code, prepared.city_code)
                exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
                if exact:
                    errors.append(files_pb2.RowError(
                        row_number=number, column=mapping["name"], code="DUPLICATE",
                        message_zh=f"与已有客户 {exact[0].customer_id} 重复",
                        message_en=f"duplicate of customer {exact[0].customer_id} "
                                   f"({pb.MatchKind.Name(KIND_TO_PROTO[exact[0].kind])})",
                        value=prepared.name))
        errors.sort(key=lambda e: (e.row_number, e.column))
        if errors or request.dry_run:
            return pb.ImportCustomersResponse(accepted=not errors, errors=errors)
        created_rows = []
        now = _now()
        try:
            async with self.db.write() as session:
                for _, prepared in prepared_rows:
                    row = self._customer_row(prepared, now)
                    await self._insert_customer(session, row)
                    created_rows.append(row)
        except IntegrityError as exc:
            raise FailedPrecondition("another change created one of these customers while "
                                     "importing; nothing was written, import again",
                                     reason="CONCURRENT_CHANGE") from exc
        self._after_commit_index(created_rows)
        return pb.ImportCustomersResponse(accepted=True, created=len(created_rows))

    async def _target_customer(self, session, request, prepared: PreparedCustomer | None
                               ) -> tuple[CustomerRow, bool, list[Match]]:
        """The customer registered: (row, is new, fuzzy matches of a new one)."""
        if prepared is None:
            row = await session.get(CustomerRow, request.customer_id)
            if row is None:
                raise NotFound(f"customer {request.customer_id} not found")
            return row, False, []
        matches = await self._matches(session, prepared.normalized, prepared.credit_code,
                                      prepared.city_code)
        exact = [m for m in matches if m.kind != MatchKind.FUZZY_NAME]
        if exact:
            return await session.get(CustomerRow, exact[0].customer_id), False, []
        return self._customer_row(prepared, _now()), True, matches
