"""The identity repositories over SQL: domain objects in, domain objects out. Only this
module (and orm.py) knows identity's tables."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import String, and_, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.adapters.orm import (
    AssignmentRow,
    AuditRow,
    MaterialDownloadRow,
    MaterialFileRow,
    MaterialRow,
    NoticeAttachmentRow,
    NoticeReceiptRow,
    NoticeRow,
    OrgUnitRow,
    RefreshTokenRow,
    SignInSourceRow,
    SignInWindowRow,
    UserRow,
)
from services.identity.domain.audience import DealerSummary
from services.identity.domain.audience import Node as AudienceNode
from services.identity.domain.materials import Download, Material, MaterialKind, Version
from services.identity.domain.model import (
    Assignment,
    AssignmentFilter,
    AuditEntry,
    AuditFilter,
    OrgUnit,
    OrgUnitFilter,
    RefreshToken,
    User,
    UserFilter,
)
from services.identity.domain.notices import Attachment, Audience, Category, Notice, Receipt
from services.identity.domain.org import Node
from services.identity.domain.rules import LoginState, OrgKind
from services.identity.domain.throttle import STREAK_KEPT, TRUST_KEPT, WINDOW, SourceRecord
from shared.clock import aware
from shared.context import current_request_id
from shared.db import dialect_insert, fetch_page
from shared.errors import AlreadyExists, FieldViolation
from shared.pagination import Page, PageRequest
from shared.versioning import update_versioned

# Bound parameters per IN list, well below SQLite's limit.
CHUNK = 5_000


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    values = list(dict.fromkeys(v for v in values if v))
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _equal(query, *pairs):
    """``query`` narrowed to rows where each column equals its value, for the values
    given (an empty or None value does not narrow)."""
    for column, value in pairs:
        if value is not None and value != "":
            query = query.where(column == value)
    return query


def _taken(exc: IntegrityError, column: str, what: str) -> AlreadyExists | IntegrityError:
    """A unique constraint on ``column`` (its name is in the message on SQLite and
    PostgreSQL alike) as the caller's error; anything else as it was."""
    if column in str(exc.orig):
        return AlreadyExists(f"{what} already exists",
                             violations=[FieldViolation(column, "already used")])
    return exc


# ---- org units -------------------------------------------------------------------------

def _unit(row: OrgUnitRow) -> OrgUnit:
    return OrgUnit(
        id=row.id, kind=OrgKind(row.kind), name=row.name, parent_id=row.parent_id,
        credit_code=row.credit_code, tier=row.tier or "",
        platform_dealer_id=row.platform_dealer_id, region_code=row.region_code or "",
        division_codes=tuple(row.division_codes or ()),
        product_lines=tuple(row.product_lines or ()), status=row.status,
        city_code=row.city_code or "", derived_tags=tuple(row.derived_tags or ()),
        custom_tags=tuple(row.custom_tags or ()),
        shared_with_platform=bool(row.shared_with_platform),
        created_at=aware(row.created_at) if row.created_at else None,
        updated_at=aware(row.updated_at) if row.updated_at else None, version=row.version)


def _unit_columns(unit: OrgUnit) -> dict:
    return dict(
        kind=unit.kind.value, name=unit.name, parent_id=unit.parent_id,
        credit_code=unit.credit_code, tier=unit.tier,
        platform_dealer_id=unit.platform_dealer_id, region_code=unit.region_code,
        division_codes=list(unit.division_codes), product_lines=list(unit.product_lines),
        status=unit.status, city_code=unit.city_code, derived_tags=list(unit.derived_tags),
        custom_tags=list(unit.custom_tags), shared_with_platform=unit.shared_with_platform,
        created_at=unit.created_at, updated_at=unit.updated_at)


class SqlOrgUnits:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, query) -> list[OrgUnit]:
        return [_unit(row) for row in (await self.session.scalars(query)).all()]

    async def _ids(self, query) -> frozenset[str]:
        return frozenset((await self.session.scalars(query)).all())

    async def get(self, org_unit_id: str) -> OrgUnit | None:
        row = await self.session.get(OrgUnitRow, org_unit_id)
        return _unit(row) if row else None

    async def get_many(self, org_unit_ids: Iterable[str]) -> dict[str, OrgUnit]:
        found: dict[str, OrgUnit] = {}
        for chunk in _chunks(org_unit_ids):
            found.update((u.id, u) for u in await self._all(
                select(OrgUnitRow).where(OrgUnitRow.id.in_(chunk))))
        return found

    async def any(self) -> bool:
        return await self.session.scalar(select(OrgUnitRow.id).limit(1)) is not None

    async def hq(self) -> OrgUnit | None:
        units = await self._all(select(OrgUnitRow).where(OrgUnitRow.kind == OrgKind.HQ)
                                .order_by(OrgUnitRow.created_at).limit(1))
        return units[0] if units else None

    async def regions(self) -> list[OrgUnit]:
        return await self._all(select(OrgUnitRow).where(OrgUnitRow.kind == OrgKind.REGION)
                               .order_by(OrgUnitRow.created_at, OrgUnitRow.id))

    async def region(self, region_code: str) -> OrgUnit | None:
        units = await self._all(select(OrgUnitRow).where(
            OrgUnitRow.kind == OrgKind.REGION, OrgUnitRow.region_code == region_code))
        return units[0] if units else None

    async def by_credit_codes(self, codes: Iterable[str]) -> dict[str, OrgUnit]:
        found: dict[str, OrgUnit] = {}
        for chunk in _chunks(codes):
            found.update((u.credit_code, u) for u in await self._all(
                select(OrgUnitRow).where(OrgUnitRow.credit_code.in_(chunk))))
        return found

    async def tree(self, org_unit_ids: Iterable[str | None]) -> dict[str, Node]:
        wanted = [i for i in org_unit_ids if i]
        rows = (await self.session.execute(
            select(OrgUnitRow.id, OrgUnitRow.kind, OrgUnitRow.parent_id, OrgUnitRow.tier,
                   OrgUnitRow.platform_dealer_id).where(or_(
                       OrgUnitRow.kind != OrgKind.DEALER, OrgUnitRow.id.in_(wanted),
                       OrgUnitRow.platform_dealer_id.in_(wanted))))).all()
        return {row.id: Node(row.id, row.kind, row.parent_id, row.tier or "",
                             row.platform_dealer_id) for row in rows}

    async def dealers_in_region(self, region_code: str) -> list[OrgUnit]:
        return await self._all(select(OrgUnitRow).where(
            OrgUnitRow.kind == OrgKind.DEALER, OrgUnitRow.region_code == region_code)
            .order_by(OrgUnitRow.created_at, OrgUnitRow.id))

    async def dealer_ids_under(self, parent_ids: Iterable[str]) -> frozenset[str]:
        found: set[str] = set()
        for chunk in _chunks(parent_ids):
            found |= await self._ids(select(OrgUnitRow.id).where(
                OrgUnitRow.parent_id.in_(chunk), OrgUnitRow.kind == OrgKind.DEALER))
        return frozenset(found)

    async def sub_dealers(self, platform_dealer_ids: Iterable[str]) -> list[OrgUnit]:
        found: list[OrgUnit] = []
        for chunk in _chunks(platform_dealer_ids):
            found += await self._all(select(OrgUnitRow).where(
                OrgUnitRow.platform_dealer_id.in_(chunk)))
        return found

    async def shared_sub_dealer_ids(self, platform_dealer_id: str) -> frozenset[str]:
        return await self._ids(select(OrgUnitRow.id).where(
            OrgUnitRow.platform_dealer_id == platform_dealer_id,
            OrgUnitRow.shared_with_platform.is_(True)))

    async def dealer_summaries(self) -> list[DealerSummary]:
        rows = (await self.session.execute(
            select(OrgUnitRow.id, OrgUnitRow.status, OrgUnitRow.region_code, OrgUnitRow.tier,
                   OrgUnitRow.product_lines, OrgUnitRow.division_codes,
                   OrgUnitRow.derived_tags, OrgUnitRow.custom_tags)
            .where(OrgUnitRow.kind == OrgKind.DEALER)
            .order_by(OrgUnitRow.name, OrgUnitRow.id))).all()
        return [DealerSummary.of(
            row.id, status=row.status, region_code=row.region_code, tier=row.tier,
            product_lines=row.product_lines or (), division_codes=row.division_codes or (),
            derived_tags=row.derived_tags or (), custom_tags=row.custom_tags or ())
            for row in rows]

    async def page(self, which: OrgUnitFilter, page: PageRequest) -> Page[OrgUnit]:
        query = _equal(select(OrgUnitRow).order_by(OrgUnitRow.created_at, OrgUnitRow.id),
                       (OrgUnitRow.kind, which.kind), (OrgUnitRow.parent_id, which.parent_id),
                       (OrgUnitRow.status, which.status),
                       (OrgUnitRow.region_code, which.region_code))
        if which.text:
            query = query.where(or_(OrgUnitRow.name.contains(which.text, autoescape=True),
                                    OrgUnitRow.credit_code == which.text.upper()))
        if which.ids:
            query = query.where(OrgUnitRow.id.in_(sorted(which.ids)))
        if (seen := which.visible) is not None:
            clauses = [OrgUnitRow.id.in_(seen.dealer_ids | {seen.own_unit})]
            if seen.structure:
                clauses.append(OrgUnitRow.kind != OrgKind.DEALER)
            query = query.where(or_(*clauses))
        return (await fetch_page(self.session, query, page, count=True, keyset=True)).map(_unit)

    async def add(self, unit: OrgUnit) -> None:
        await self.add_many([unit])

    async def add_many(self, units: list[OrgUnit]) -> None:
        self.session.add_all([OrgUnitRow(id=unit.id, **_unit_columns(unit)) for unit in units])
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise _taken(exc, "credit_code", "an org unit with this credit code") from exc

    async def update(self, unit: OrgUnit) -> None:
        row = await self.session.get(OrgUnitRow, unit.id)
        for key, value in _unit_columns(unit).items():
            setattr(row, key, value)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise _taken(exc, "credit_code", "an org unit with this credit code") from exc

    async def next_version(self, unit: OrgUnit) -> int:
        """The unit's version moved on from the one ``unit`` was read at (StaleVersion
        when another change moved it first)."""
        return await update_versioned(self.session, OrgUnitRow.__table__, unit.id,
                                      unit.version, {}, f"org unit {unit.id}")


# ---- users and sessions ----------------------------------------------------------------

_USERS = select(UserRow, OrgUnitRow.kind).join(OrgUnitRow, OrgUnitRow.id == UserRow.org_unit_id)


def _user(row: UserRow, unit_kind: str) -> User:
    return User(
        id=row.id, username=row.username, password_hash=row.password_hash,
        roles=tuple(row.roles or ()), org_unit_id=row.org_unit_id,
        display_name=row.display_name or "",
        dealer_id=row.org_unit_id if unit_kind == OrgKind.DEALER else "", active=row.active,
        failed_logins=row.failed_logins or 0,
        locked_until=aware(row.locked_until) if row.locked_until else None,
        created_at=aware(row.created_at) if row.created_at else None,
        deactivated_at=aware(row.deactivated_at) if row.deactivated_at else None,
        last_login_at=aware(row.last_login_at) if row.last_login_at else None,
        version=row.version)


def _user_columns(user: User) -> dict:
    return dict(username=user.username, display_name=user.display_name,
                password_hash=user.password_hash, roles=list(user.roles),
                org_unit_id=user.org_unit_id, active=user.active,
                failed_logins=user.failed_logins, locked_until=user.locked_until,
                created_at=user.created_at, deactivated_at=user.deactivated_at,
                last_login_at=user.last_login_at)


class SqlUsers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _one(self, query) -> User | None:
        row = (await self.session.execute(query)).first()
        return _user(*row) if row else None

    async def get(self, user_id: str) -> User | None:
        return await self._one(_USERS.where(UserRow.id == user_id))

    async def by_username(self, username: str) -> User | None:
        return await self._one(_USERS.where(UserRow.username == username))

    async def get_for_update(self, user_id: str) -> User | None:
        # A row lock on PostgreSQL; SQLite renders no FOR UPDATE (its writer is one at a
        # time anyway).
        return await self._one(_USERS.where(UserRow.id == user_id).with_for_update(of=UserRow))

    async def add(self, user: User) -> None:
        self.session.add(UserRow(id=user.id, **_user_columns(user)))
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise _taken(exc, "username", f"username {user.username}") from exc

    async def update(self, user: User) -> None:
        row = await self.session.get(UserRow, user.id)
        for key, value in _user_columns(user).items():
            setattr(row, key, value)

    async def next_version(self, user: User) -> int:
        """The user's version moved on from the one ``user`` was read at (StaleVersion
        when another change of roles moved it first)."""
        return await update_versioned(self.session, UserRow.__table__, user.id,
                                      user.version, {}, f"user {user.id}")

    async def page(self, which: UserFilter, page: PageRequest) -> Page[User]:
        query = _equal(_USERS.order_by(UserRow.created_at, UserRow.id),
                       (UserRow.org_unit_id, which.org_unit_id))
        if which.dealer_staff_only:
            visible = OrgUnitRow.kind == OrgKind.DEALER
            if which.org_unit_ids is not None:
                visible = and_(visible, UserRow.org_unit_id.in_(which.org_unit_ids))
            query = query.where(or_(visible, UserRow.id == which.or_user_id))
        if not which.include_inactive:
            query = query.where(UserRow.active.is_(True))
        if which.text:
            query = query.where(or_(UserRow.username.contains(which.text, autoescape=True),
                                    UserRow.display_name.contains(which.text,
                                                                  autoescape=True)))
        if which.role:
            # Roles are a JSON list of plain names: "name" (quoted) appears in its text
            # exactly when the list holds it, on SQLite and PostgreSQL alike.
            query = query.where(cast(UserRow.roles, String).contains(f'"{which.role}"',
                                                                     autoescape=True))
        result = await fetch_page(self.session, query, page, count=True, scalars=False,
                                  keyset=True)
        return result.map(lambda row: _user(*row))

    async def active_of_dealers(self, dealer_ids: Iterable[str]) -> list[User]:
        found: list[User] = []
        for chunk in _chunks(dealer_ids):
            rows = (await self.session.execute(_USERS.where(
                UserRow.org_unit_id.in_(chunk), OrgUnitRow.kind == OrgKind.DEALER,
                UserRow.active.is_(True)))).all()
            found += [_user(*row) for row in rows]
        return sorted(found, key=lambda user: (user.dealer_id, user.username))

    async def active_per_dealer(self) -> dict[str, int]:
        return dict((await self.session.execute(
            select(UserRow.org_unit_id, func.count())
            .join(OrgUnitRow, OrgUnitRow.id == UserRow.org_unit_id)
            .where(OrgUnitRow.kind == OrgKind.DEALER, UserRow.active.is_(True))
            .group_by(UserRow.org_unit_id))).all())

    async def deactivated_since(self, moment: datetime) -> list[str]:
        return list((await self.session.scalars(select(UserRow.id).where(
            UserRow.active.is_(False), UserRow.deactivated_at >= moment))).all())


class SqlRefreshTokens:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        self.session.add(RefreshTokenRow(
            token_hash=token.token_hash, user_id=token.user_id, expires_at=token.expires_at,
            revoked_at=token.revoked_at, created_at=token.created_at))

    async def get(self, token_hash: str) -> RefreshToken | None:
        row = await self.session.get(RefreshTokenRow, token_hash)
        if row is None:
            return None
        return RefreshToken(row.token_hash, row.user_id, aware(row.expires_at),
                            aware(row.created_at),
                            aware(row.revoked_at) if row.revoked_at else None)

    async def revoke(self, token_hash: str, at: datetime) -> bool:
        # Conditional, so that of two transactions revoking the same token one wins.
        result = await self.session.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.token_hash == token_hash,
                   RefreshTokenRow.revoked_at.is_(None))
            .values(revoked_at=at).execution_options(synchronize_session="fetch"))
        return result.rowcount == 1

    async def delete(self, token_hash: str) -> None:
        await self.session.execute(
            delete(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)
            .execution_options(synchronize_session="fetch"))

    async def revoke_all(self, user_id: str, at: datetime) -> None:
        # Deleted, not marked: only a rotation marks a token, so that a marked token
        # coming back is a reuse (sessions.refresh).
        await self.session.execute(
            delete(RefreshTokenRow).where(RefreshTokenRow.user_id == user_id)
            .execution_options(synchronize_session="fetch"))


# ---- assignments -----------------------------------------------------------------------

def _assignment(row: AssignmentRow) -> Assignment:
    return Assignment(row.manager_user_id, row.dealer_id, row.product_line,
                      aware(row.created_at) if row.created_at else None, row.assigned_by or "")


class SqlAssignments:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: tuple[str, str, str]) -> Assignment | None:
        row = await self.session.get(AssignmentRow, key)
        return _assignment(row) if row else None

    async def add(self, assignment: Assignment) -> None:
        self.session.add(AssignmentRow(
            manager_user_id=assignment.manager_user_id, dealer_id=assignment.dealer_id,
            product_line=assignment.product_line, created_at=assignment.assigned_at,
            assigned_by=assignment.assigned_by))
        await self.session.flush()

    async def remove(self, assignment: Assignment) -> None:
        await self.session.execute(delete(AssignmentRow).where(
            AssignmentRow.manager_user_id == assignment.manager_user_id,
            AssignmentRow.dealer_id == assignment.dealer_id,
            AssignmentRow.product_line == assignment.product_line
        ).execution_options(synchronize_session="fetch"))

    async def of_manager(self, manager_user_id: str, dealer_ids: Iterable[str] = (),
                         product_lines: Iterable[str] = ()) -> list[Assignment]:
        query = select(AssignmentRow).where(
            AssignmentRow.manager_user_id == manager_user_id
        ).order_by(AssignmentRow.dealer_id, AssignmentRow.product_line)
        if dealers := list(dealer_ids):
            query = query.where(AssignmentRow.dealer_id.in_(dealers))
        if lines := list(product_lines):
            query = query.where(AssignmentRow.product_line.in_(lines))
        return [_assignment(row) for row in (await self.session.scalars(query)).all()]

    async def dealer_ids_of(self, manager_user_id: str,
                            product_line: str = "") -> frozenset[str]:
        query = select(AssignmentRow.dealer_id).where(
            AssignmentRow.manager_user_id == manager_user_id)
        if product_line:
            query = query.where(AssignmentRow.product_line == product_line)
        return frozenset((await self.session.scalars(query)).all())

    async def count_of(self, manager_user_id: str) -> int:
        return await self.session.scalar(select(func.count()).select_from(AssignmentRow).where(
            AssignmentRow.manager_user_id == manager_user_id))

    async def page(self, which: AssignmentFilter, page: PageRequest) -> Page[Assignment]:
        query = _equal(select(AssignmentRow).order_by(
            AssignmentRow.created_at, AssignmentRow.dealer_id, AssignmentRow.product_line),
            (AssignmentRow.manager_user_id, which.manager_user_id),
            (AssignmentRow.dealer_id, which.dealer_id),
            (AssignmentRow.product_line, which.product_line))
        if which.dealer_ids is not None:
            query = query.where(or_(AssignmentRow.dealer_id.in_(which.dealer_ids),
                                    AssignmentRow.manager_user_id == which.or_manager_user_id))
        return (await fetch_page(self.session, query, page, count=True)).map(_assignment)


# ---- audit -----------------------------------------------------------------------------

def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, occurred_at=aware(row.occurred_at), actor=row.actor, action=row.action,
        target_type=row.target_type, target_id=row.target_id, before_json=row.before_json,
        after_json=row.after_json, reason=row.reason, request_id=row.request_id)


class SqlAuditLog:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Whether this transaction wrote an entry (a change the scope cache must forget).
        self.written = False

    async def add(self, entry: AuditEntry) -> None:
        self.session.add(AuditRow(
            id=entry.id, occurred_at=entry.occurred_at, actor=entry.actor,
            action=entry.action, target_type=entry.target_type, target_id=entry.target_id,
            before_json=entry.before_json, after_json=entry.after_json, reason=entry.reason,
            request_id=(entry.request_id or current_request_id())[:64]))
        self.written = True

    async def page(self, which: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        query = _equal(select(AuditRow).order_by(AuditRow.occurred_at.desc(), AuditRow.id),
                       (AuditRow.actor, which.actor), (AuditRow.action, which.action),
                       (AuditRow.target_type, which.target_type),
                       (AuditRow.target_id, which.target_id))
        if which.occurred_after is not None:
            query = query.where(AuditRow.occurred_at >= which.occurred_after)
        if which.occurred_before is not None:
            query = query.where(AuditRow.occurred_at < which.occurred_before)
        return (await fetch_page(self.session, query, page, count=True, keyset=True)).map(_entry)


# ---- notices ---------------------------------------------------------------------------

def _expression_json(node: AudienceNode) -> dict:
    return {"op": node.op, "kind": node.kind, "value": node.value,
            "children": [_expression_json(child) for child in node.children]}


def _expression(value: dict) -> AudienceNode:
    return AudienceNode(value["op"], tuple(_expression(child) for child in value["children"]),
                        value["kind"], value["value"])


def _notice(row: NoticeRow) -> Notice:
    return Notice(
        id=row.id, title=row.title, body=row.body, category=Category(row.category),
        must_confirm=row.must_confirm,
        in_force_until=aware(row.in_force_until) if row.in_force_until else None,
        audience=Audience(_expression(row.expression) if row.expression else None,
                          tuple(row.dealer_ids or ()), tuple(row.region_codes or ())),
        reached_dealer_ids=frozenset(row.reached_dealer_ids or ()),
        attachments=tuple(Attachment(**item) for item in row.attachments or ()),
        published_by=row.published_by, published_at=aware(row.published_at))


def _receipt(row: NoticeReceiptRow) -> Receipt:
    return Receipt(row.notice_id, row.user_id, row.dealer_id, aware(row.read_at),
                   aware(row.confirmed_at) if row.confirmed_at else None)


class SqlNotices:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, notice: Notice, contents: dict[str, bytes]) -> None:
        audience = notice.audience
        self.session.add(NoticeRow(
            id=notice.id, title=notice.title, body=notice.body, category=notice.category.value,
            must_confirm=notice.must_confirm, in_force_until=notice.in_force_until,
            expression=_expression_json(audience.expression) if audience.expression else None,
            dealer_ids=list(audience.dealer_ids), region_codes=list(audience.region_codes),
            reached_dealer_ids=sorted(notice.reached_dealer_ids),
            attachments=[{"id": a.id, "filename": a.filename, "content_type": a.content_type,
                          "size_bytes": a.size_bytes} for a in notice.attachments],
            published_by=notice.published_by, published_at=notice.published_at))
        await self.session.flush()
        self.session.add_all(NoticeAttachmentRow(id=key, notice_id=notice.id, content=value)
                             for key, value in contents.items())
        await self.session.flush()

    async def get(self, notice_id: str) -> Notice | None:
        row = await self.session.get(NoticeRow, notice_id)
        return _notice(row) if row else None

    async def newest_first(self) -> list[Notice]:
        rows = await self.session.scalars(select(NoticeRow).order_by(
            NoticeRow.published_at.desc(), NoticeRow.id.desc()))
        return [_notice(row) for row in rows.all()]

    async def attachment(self, notice_id: str, attachment_id: str) -> bytes | None:
        return await self.session.scalar(select(NoticeAttachmentRow.content).where(
            NoticeAttachmentRow.id == attachment_id,
            NoticeAttachmentRow.notice_id == notice_id))

    async def receipt(self, notice_id: str, user_id: str) -> Receipt | None:
        row = await self.session.get(NoticeReceiptRow, (notice_id, user_id))
        return _receipt(row) if row else None

    async def receipts_of_user(self, user_id: str) -> dict[str, Receipt]:
        rows = await self.session.scalars(select(NoticeReceiptRow).where(
            NoticeReceiptRow.user_id == user_id))
        return {row.notice_id: _receipt(row) for row in rows.all()}

    async def receipts_of(self, notice_ids: Iterable[str]) -> list[Receipt]:
        found: list[Receipt] = []
        for chunk in _chunks(notice_ids):
            rows = await self.session.scalars(select(NoticeReceiptRow).where(
                NoticeReceiptRow.notice_id.in_(chunk)))
            found += [_receipt(row) for row in rows.all()]
        return found

    async def receipt_counts(self, notice_ids: Iterable[str]) -> dict[str, dict[str, tuple[
            int, int]]]:
        counts: dict[str, dict[str, tuple[int, int]]] = {}
        receipt = NoticeReceiptRow
        for chunk in _chunks(notice_ids):
            for notice_id, dealer_id, read, confirmed in (await self.session.execute(
                    select(receipt.notice_id, UserRow.org_unit_id, func.count(),
                           func.count(receipt.confirmed_at))
                    .join(UserRow, UserRow.id == receipt.user_id)
                    .where(receipt.notice_id.in_(chunk), UserRow.active.is_(True))
                    .group_by(receipt.notice_id, UserRow.org_unit_id))).all():
                counts.setdefault(notice_id, {})[dealer_id] = (read, confirmed)
        return counts

    async def save_receipt(self, receipt: Receipt) -> None:
        row = await self.session.get(NoticeReceiptRow, (receipt.notice_id, receipt.user_id))
        if row is None:
            self.session.add(NoticeReceiptRow(
                notice_id=receipt.notice_id, user_id=receipt.user_id,
                dealer_id=receipt.dealer_id, read_at=receipt.read_at,
                confirmed_at=receipt.confirmed_at))
        else:
            row.confirmed_at = receipt.confirmed_at
        await self.session.flush()


# ---- materials -------------------------------------------------------------------------

def _material(row: MaterialRow) -> Material:
    return Material(
        id=row.id, title=row.title, description=row.description or "",
        kind=MaterialKind(row.kind),
        audience=Audience(_expression(row.expression) if row.expression else None,
                          tuple(row.dealer_ids or ()), tuple(row.region_codes or ())),
        versions=tuple(Version(**{**item, "published_at": aware(datetime.fromisoformat(
            item["published_at"]))}) for item in row.versions),
        published_by=row.published_by)


def _material_columns(material: Material) -> dict:
    audience = material.audience
    return dict(
        title=material.title, description=material.description, kind=material.kind.value,
        expression=_expression_json(audience.expression) if audience.expression else None,
        dealer_ids=list(audience.dealer_ids), region_codes=list(audience.region_codes),
        versions=[{"number": v.number, "filename": v.filename, "content_type": v.content_type,
                   "size_bytes": v.size_bytes, "note": v.note, "published_by": v.published_by,
                   "published_at": v.published_at.isoformat()} for v in material.versions],
        published_by=material.published_by, updated_at=material.current.published_at)


class SqlMaterials:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _file(self, material: Material, content: bytes) -> None:
        self.session.add(MaterialFileRow(material_id=material.id,
                                         version=material.current.number, content=content))
        await self.session.flush()

    async def add(self, material: Material, content: bytes) -> None:
        self.session.add(MaterialRow(id=material.id, **_material_columns(material)))
        await self.session.flush()
        await self._file(material, content)

    async def add_version(self, material: Material, content: bytes) -> None:
        await self.session.execute(update(MaterialRow).where(MaterialRow.id == material.id)
                                   .values(**_material_columns(material)))
        await self._file(material, content)

    async def get(self, material_id: str) -> Material | None:
        row = await self.session.get(MaterialRow, material_id)
        return _material(row) if row else None

    async def newest_first(self) -> list[Material]:
        rows = await self.session.scalars(select(MaterialRow).order_by(
            MaterialRow.updated_at.desc(), MaterialRow.id.desc()))
        return [_material(row) for row in rows.all()]

    async def content(self, material_id: str, version: int) -> bytes | None:
        return await self.session.scalar(select(MaterialFileRow.content).where(
            MaterialFileRow.material_id == material_id, MaterialFileRow.version == version))

    async def add_download(self, download: Download) -> None:
        self.session.add(MaterialDownloadRow(
            material_id=download.material_id, version=download.version,
            user_id=download.user_id, dealer_id=download.dealer_id,
            downloaded_at=download.downloaded_at))
        await self.session.flush()

    async def downloads_of(self, material_ids: Iterable[str]) -> list[Download]:
        found: list[Download] = []
        for chunk in _chunks(material_ids):
            rows = await self.session.scalars(select(MaterialDownloadRow).where(
                MaterialDownloadRow.material_id.in_(chunk)).order_by(MaterialDownloadRow.id))
            found += [Download(row.material_id, row.version, row.user_id, row.dealer_id,
                               aware(row.downloaded_at)) for row in rows.all()]
        return found


class SqlSignIns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, source: str, account: str) -> SourceRecord:
        row = (await self.session.execute(select(SignInSourceRow).where(
            SignInSourceRow.source == source[:64], SignInSourceRow.account == account)
            .with_for_update())).scalar_one_or_none()
        if row is None:
            return SourceRecord()
        return SourceRecord(LoginState(row.failed_attempts,
                                       aware(row.locked_until) if row.locked_until else None),
                            row.trusted)

    async def save(self, source: str, account: str, record: SourceRecord,
                   now: datetime) -> None:
        values = dict(failed_attempts=record.state.failed_attempts,
                      locked_until=record.state.locked_until, trusted=record.trusted,
                      updated_at=now)
        statement = dialect_insert(self.session, SignInSourceRow).values(
            source=source[:64], account=account, **values)
        await self.session.execute(statement.on_conflict_do_update(
            index_elements=["source", "account"], set_=values))

    async def count_check(self, account: str, window: datetime) -> int:
        statement = dialect_insert(self.session, SignInWindowRow).values(
            account=account, window_start=window, checks=1)
        statement = statement.on_conflict_do_update(
            index_elements=["account", "window_start"],
            set_={"checks": SignInWindowRow.checks + 1}).returning(SignInWindowRow.checks)
        return (await self.session.execute(statement)).scalar_one()

    async def forget(self, now: datetime) -> int:
        windows = await self.session.execute(delete(SignInWindowRow).where(
            SignInWindowRow.window_start < now - WINDOW))
        streaks = await self.session.execute(delete(SignInSourceRow).where(
            SignInSourceRow.trusted.is_(False), SignInSourceRow.updated_at < now - STREAK_KEPT,
            or_(SignInSourceRow.locked_until.is_(None), SignInSourceRow.locked_until < now)))
        trust = await self.session.execute(delete(SignInSourceRow).where(
            SignInSourceRow.trusted.is_(True), SignInSourceRow.updated_at < now - TRUST_KEPT))
        return windows.rowcount + streaks.rowcount + trust.rowcount
