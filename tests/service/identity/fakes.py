"""In-memory identity repositories and unit of work for the service-layer tests, and a
small org built through the use cases. Passwords are real argon2id at the cheapest
setting; tokens are really signed (a key made per test)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import jwt
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.adapters.caches import InProcessScopeCache
from services.identity.adapters.passwords import Argon2Passwords
from services.identity.adapters.sheets import XlsxSheets
from services.identity.domain.audience import DealerSummary
from services.identity.domain.materials import Download, Material
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
from services.identity.domain.notices import Notice, Receipt
from services.identity.domain.rules import OrgKind, Role, Tier
from services.identity.domain.throttle import WINDOW, SourceRecord
from services.identity.usecases import org, users
from services.identity.usecases.ports import Deps
from shared.auth import TokenIssuer
from shared.context import Principal
from shared.errors import AlreadyExists, FieldViolation
from shared.pagination import Page, PageRequest, page_of_all
from shared.revocation import RevocationList
from shared.testing import FakeClock, FakeUnitOfWork, SequentialIds
from tests.world import STAFF_PASSWORD, credit_code

ADMIN_PASSWORD = "Admin-Passw0rd!"


def _taken(column: str) -> AlreadyExists:
    return AlreadyExists(f"{column} already used",
                         violations=[FieldViolation(column, "already used")])


def _oldest_first(item) -> tuple:
    return (item.created_at or datetime.min, item.id)


@dataclass
class FakeOrgUnits:
    units: dict[str, OrgUnit] = field(default_factory=dict)

    def _ordered(self) -> list[OrgUnit]:
        return sorted(self.units.values(), key=_oldest_first)

    async def get(self, org_unit_id):
        return self.units.get(org_unit_id)

    async def get_many(self, org_unit_ids):
        return {i: self.units[i] for i in org_unit_ids if i in self.units}

    async def any(self):
        return bool(self.units)

    async def hq(self):
        return next((u for u in self._ordered() if u.kind == OrgKind.HQ), None)

    async def regions(self):
        return [u for u in self._ordered() if u.kind == OrgKind.REGION]

    async def region(self, region_code):
        return next((u for u in await self.regions() if u.region_code == region_code), None)

    async def by_credit_codes(self, codes):
        codes = set(codes)
        return {u.credit_code: u for u in self.units.values() if u.credit_code in codes}

    async def tree(self, org_unit_ids):
        wanted = {i for i in org_unit_ids if i}
        return {u.id: u.node for u in self.units.values()
                if u.kind != OrgKind.DEALER or u.id in wanted or u.platform_dealer_id in wanted}

    async def dealers_in_region(self, region_code):
        return [u for u in self._ordered() if u.is_dealer and u.region_code == region_code]

    async def dealer_ids_under(self, parent_ids):
        parents = set(parent_ids)
        return frozenset(u.id for u in self.units.values()
                         if u.is_dealer and u.parent_id in parents)

    async def sub_dealers(self, platform_dealer_ids):
        platforms = set(platform_dealer_ids)
        return [u for u in self._ordered() if u.platform_dealer_id in platforms]

    async def shared_sub_dealer_ids(self, platform_dealer_id):
        return frozenset(u.id for u in self.units.values()
                         if u.platform_dealer_id == platform_dealer_id
                         and u.shared_with_platform)

    async def dealer_summaries(self):
        return [DealerSummary.of(
            u.id, status=u.status, region_code=u.region_code, tier=u.tier,
            product_lines=u.product_lines, division_codes=u.division_codes,
            derived_tags=u.derived_tags, custom_tags=u.custom_tags)
            for u in sorted(self.units.values(), key=lambda u: (u.name, u.id)) if u.is_dealer]

    async def page(self, which: OrgUnitFilter, page: PageRequest) -> Page[OrgUnit]:
        def keep(u: OrgUnit) -> bool:
            seen = which.visible
            return ((which.kind is None or u.kind == which.kind)
                    and (not which.parent_id or u.parent_id == which.parent_id)
                    and (not which.status or u.status == which.status)
                    and (not which.region_code or u.region_code == which.region_code)
                    and (not which.text or which.text in u.name
                         or u.credit_code == which.text.upper())
                    and (not which.ids or u.id in which.ids)
                    and (seen is None or u.id in seen.dealer_ids | {seen.own_unit}
                         or (seen.structure and not u.is_dealer)))
        return page_of_all([u for u in self._ordered() if keep(u)], page)

    async def add(self, unit):
        await self.add_many([unit])

    async def add_many(self, units):
        for unit in units:
            await self.update(unit)

    async def update(self, unit):
        if unit.credit_code and any(u.credit_code == unit.credit_code and u.id != unit.id
                                    for u in self.units.values()):
            raise _taken("credit_code")
        self.units[unit.id] = unit

    async def next_version(self, unit):
        self.units[unit.id] = replace(self.units[unit.id], version=unit.version + 1)
        return unit.version + 1


@dataclass
class FakeUsers:
    users: dict[str, User] = field(default_factory=dict)

    async def get(self, user_id):
        return self.users.get(user_id)

    async def by_username(self, username):
        return next((u for u in self.users.values() if u.username == username), None)

    async def get_for_update(self, user_id):
        return self.users.get(user_id)

    async def add(self, user):
        if await self.by_username(user.username) is not None:
            raise _taken("username")
        self.users[user.id] = user

    async def update(self, user):
        self.users[user.id] = user

    async def next_version(self, user):
        self.users[user.id] = replace(self.users[user.id], version=user.version + 1)
        return user.version + 1

    async def page(self, which: UserFilter, page: PageRequest) -> Page[User]:
        def keep(u: User) -> bool:
            visible = not which.dealer_staff_only or u.id == which.or_user_id or (
                u.dealer_id and (which.org_unit_ids is None or u.org_unit_id in which.org_unit_ids))
            return bool(visible
                        and (not which.org_unit_id or u.org_unit_id == which.org_unit_id)
                        and (which.include_inactive or u.active)
                        and (not which.text or which.text in u.username
                             or which.text in u.display_name)
                        and (not which.role or which.role in u.roles))
        return page_of_all(sorted((u for u in self.users.values() if keep(u)),
                                  key=_oldest_first), page)

    async def active_of_dealers(self, dealer_ids):
        dealers = set(dealer_ids)
        return sorted((u for u in self.users.values() if u.active and u.dealer_id in dealers),
                      key=lambda u: (u.dealer_id, u.username))

    async def active_per_dealer(self):
        return dict(Counter(u.dealer_id for u in self.users.values()
                            if u.active and u.dealer_id))

    async def deactivated_since(self, moment):
        return [u.id for u in self.users.values()
                if not u.active and u.deactivated_at and u.deactivated_at >= moment]


@dataclass
class FakeRefreshTokens:
    tokens: dict[str, RefreshToken] = field(default_factory=dict)

    async def add(self, token):
        self.tokens[token.token_hash] = token

    async def get(self, token_hash):
        return self.tokens.get(token_hash)

    async def revoke(self, token_hash, at):
        token = self.tokens.get(token_hash)
        if token is None or token.revoked_at is not None:
            return False
        self.tokens[token_hash] = RefreshToken(token.token_hash, token.user_id,
                                               token.expires_at, token.created_at, at)
        return True

    async def delete(self, token_hash):
        self.tokens.pop(token_hash, None)

    async def revoke_all(self, user_id, at):
        for token in list(self.tokens.values()):
            if token.user_id == user_id:
                await self.delete(token.token_hash)


@dataclass
class FakeAssignments:
    held: dict[tuple[str, str, str], Assignment] = field(default_factory=dict)

    async def get(self, key):
        return self.held.get(key)

    async def add(self, assignment):
        self.held[assignment.key] = assignment

    async def remove(self, assignment):
        self.held.pop(assignment.key, None)

    async def of_manager(self, manager_user_id, dealer_ids=(), product_lines=()):
        dealers, lines = set(dealer_ids), set(product_lines)
        return sorted((a for a in self.held.values() if a.manager_user_id == manager_user_id
                       and (not dealers or a.dealer_id in dealers)
                       and (not lines or a.product_line in lines)),
                      key=lambda a: (a.dealer_id, a.product_line))

    async def dealer_ids_of(self, manager_user_id, product_line=""):
        return frozenset(a.dealer_id for a in self.held.values()
                         if a.manager_user_id == manager_user_id
                         and (not product_line or a.product_line == product_line))

    async def count_of(self, manager_user_id):
        return len(await self.of_manager(manager_user_id))

    async def page(self, which: AssignmentFilter, page: PageRequest) -> Page[Assignment]:
        def keep(a: Assignment) -> bool:
            return ((which.dealer_ids is None or a.dealer_id in which.dealer_ids
                     or a.manager_user_id == which.or_manager_user_id)
                    and (not which.manager_user_id or a.manager_user_id == which.manager_user_id)
                    and (not which.dealer_id or a.dealer_id == which.dealer_id)
                    and (not which.product_line or a.product_line == which.product_line))
        return page_of_all(sorted((a for a in self.held.values() if keep(a)),
                                  key=lambda a: (a.assigned_at, a.dealer_id, a.product_line)),
                           page)


@dataclass
class FakeAuditLog:
    entries: list[AuditEntry] = field(default_factory=list)

    async def add(self, entry):
        self.entries.append(entry)

    async def page(self, which: AuditFilter, page: PageRequest) -> Page[AuditEntry]:
        def keep(e: AuditEntry) -> bool:
            return ((not which.actor or e.actor == which.actor)
                    and (not which.action or e.action == which.action)
                    and (not which.target_type or e.target_type == which.target_type)
                    and (not which.target_id or e.target_id == which.target_id)
                    and (which.occurred_after is None or e.occurred_at >= which.occurred_after)
                    and (which.occurred_before is None or e.occurred_at < which.occurred_before))
        matching = sorted((e for e in self.entries if keep(e)), key=lambda e: e.id)
        matching.sort(key=lambda e: e.occurred_at, reverse=True)
        return page_of_all(matching, page)


@dataclass
class FakeNotices:
    # The unit of work's user by id, looked up when counting (copies of the repositories
    # come and go with transactions).
    user_of: Callable = lambda _user_id: None
    notices: dict[str, Notice] = field(default_factory=dict)
    contents: dict[tuple[str, str], bytes] = field(default_factory=dict)
    receipts: dict[tuple[str, str], Receipt] = field(default_factory=dict)

    async def add(self, notice, contents):
        self.notices[notice.id] = notice
        self.contents.update({(notice.id, key): value for key, value in contents.items()})

    async def get(self, notice_id):
        return self.notices.get(notice_id)

    async def newest_first(self):
        return sorted(self.notices.values(), key=lambda n: (n.published_at, n.id), reverse=True)

    async def attachment(self, notice_id, attachment_id):
        return self.contents.get((notice_id, attachment_id))

    async def receipt(self, notice_id, user_id):
        return self.receipts.get((notice_id, user_id))

    async def receipts_of_user(self, user_id):
        return {r.notice_id: r for r in self.receipts.values() if r.user_id == user_id}

    async def receipts_of(self, notice_ids):
        wanted = set(notice_ids)
        return [r for r in self.receipts.values() if r.notice_id in wanted]

    async def receipt_counts(self, notice_ids):
        wanted, counts = set(notice_ids), {}
        for receipt in self.receipts.values():
            user = self.user_of(receipt.user_id)
            if receipt.notice_id in wanted and user and user.active:
                read, confirmed = counts.setdefault(receipt.notice_id, {}).get(
                    user.dealer_id, (0, 0))
                counts[receipt.notice_id][user.dealer_id] = (
                    read + 1, confirmed + bool(receipt.confirmed_at))
        return counts

    async def save_receipt(self, receipt):
        self.receipts[(receipt.notice_id, receipt.user_id)] = receipt


@dataclass
class FakeMaterials:
    materials: dict[str, Material] = field(default_factory=dict)
    contents: dict[tuple[str, int], bytes] = field(default_factory=dict)
    downloads: list[Download] = field(default_factory=list)

    async def add(self, material, content):
        await self.add_version(material, content)

    async def add_version(self, material, content):
        self.materials[material.id] = material
        self.contents[(material.id, material.current.number)] = content

    async def get(self, material_id):
        return self.materials.get(material_id)

    async def newest_first(self):
        return sorted(self.materials.values(),
                      key=lambda m: (m.current.published_at, m.id), reverse=True)

    async def content(self, material_id, version):
        return self.contents.get((material_id, version))

    async def add_download(self, download):
        self.downloads.append(download)

    async def downloads_of(self, material_ids):
        wanted = set(material_ids)
        return [d for d in self.downloads if d.material_id in wanted]


class FakeSignIns:
    def __init__(self) -> None:
        self.sources: dict[tuple[str, str], tuple[SourceRecord, datetime]] = {}
        self.windows: dict[tuple[str, datetime], int] = {}

    async def record(self, source, account):
        return self.sources.get((source, account), (SourceRecord(), None))[0]

    async def save(self, source, account, record, now):
        self.sources[(source, account)] = (record, now)

    async def count_check(self, account, window):
        self.windows[(account, window)] = self.windows.get((account, window), 0) + 1
        return self.windows[(account, window)]

    async def forget(self, now):
        gone = [key for key in self.windows if key[1] < now - WINDOW]
        for key in gone:
            del self.windows[key]
        return len(gone)


class FakeIdentityUnitOfWork(FakeUnitOfWork):
    """Like the SQL one, a commit that wrote an audit entry calls ``on_change``."""

    repositories = ("org_units", "users", "refresh_tokens", "assignments", "audit", "notices",
                    "materials", "sign_ins")

    def __init__(self, on_change=lambda: None) -> None:
        super().__init__()
        self.org_units = FakeOrgUnits()
        self.users = FakeUsers()
        self.refresh_tokens = FakeRefreshTokens()
        self.assignments = FakeAssignments()
        self.audit = FakeAuditLog()
        # Receipts are counted for the users who are active now, as the database joins.
        self.notices = FakeNotices(user_of=lambda user_id: self.users.users.get(user_id))
        self.materials = FakeMaterials()
        self.sign_ins = FakeSignIns()
        self.on_change = on_change
        self._audited = 0

    def _open(self, write):
        opened = super()._open(write)
        self._audited = len(self.audit.entries)
        return opened

    async def commit(self):
        changed = len(self.audit.entries) > self._audited
        await super().commit()
        if changed:
            self.on_change()


def token_issuer(ttl_seconds: int = 900) -> TokenIssuer:
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    return TokenIssuer(key, ttl_seconds=ttl_seconds)


def claims(token: str) -> dict:
    """An access token's claims (the signature is the issuer's business, not the test's)."""
    return jwt.decode(token, options={"verify_signature": False})


def fake_deps() -> tuple[Deps, FakeIdentityUnitOfWork]:
    cache = InProcessScopeCache()
    uow = FakeIdentityUnitOfWork(on_change=cache.invalidate)
    deps = Deps(uow=lambda: uow, clock=FakeClock(), ids=SequentialIds("id"),
                passwords=Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8,
                                                         parallelism=1)),
                tokens=token_issuer(), revocations=RevocationList(), scope_cache=cache,
                sheets=XlsxSheets())
    return deps, uow


class Org:
    """An org built through the use cases, as an HQ admin would: HQ and its first admin,
    then regions, dealers and users on demand."""

    def __init__(self, deps: Deps, uow: FakeIdentityUnitOfWork) -> None:
        self.deps = deps
        self.uow = uow
        self.admin: Principal | None = None
        self.serial = 0

    @classmethod
    async def start(cls) -> Org:
        deps, uow = fake_deps()
        world = cls(deps, uow)
        await users.ensure_bootstrap_admin("admin", ADMIN_PASSWORD, uow=uow,
                                           passwords=deps.passwords, clock=deps.clock,
                                           ids=deps.ids)
        world.admin = (await uow.users.by_username("admin")).principal
        return world

    @property
    def kw(self) -> dict:
        """The collaborators most use cases take, acting as the HQ admin."""
        return dict(who=self.admin, uow=self.uow, clock=self.deps.clock, ids=self.deps.ids)

    async def hq(self) -> OrgUnit:
        return await self.uow.org_units.hq()

    async def region(self, code: str, name: str, parent_id: str = "") -> OrgUnit:
        self.deps.clock.advance(seconds=1)
        return await org.create_org_unit(org.NewOrgUnit(
            OrgKind.REGION, name, region_code=code, parent_id=parent_id), **self.kw)

    async def dealer(self, region: OrgUnit, *, tier: Tier = Tier.ONE,
                     division_codes: tuple[str, ...] = ("310000",),
                     product_lines: tuple[str, ...] = ("A系列",), **fields) -> OrgUnit:
        self.serial += 1
        self.deps.clock.advance(seconds=1)
        fields.setdefault("name", f"测试经销商{self.serial}号")
        fields.setdefault("credit_code", credit_code(self.serial))
        return await org.create_org_unit(org.NewOrgUnit(
            OrgKind.DEALER, parent_id=region.id, tier=tier, division_codes=division_codes,
            product_lines=product_lines, **fields), **self.kw)

    async def user(self, username: str, roles: tuple[Role, ...], unit: OrgUnit,
                   by: Principal | None = None) -> User:
        self.deps.clock.advance(seconds=1)
        return await users.create_user(
            users.NewUser(username, STAFF_PASSWORD, roles, unit.id), who=by or self.admin,
            uow=self.uow, passwords=self.deps.passwords, clock=self.deps.clock,
            ids=self.deps.ids)

    async def as_user(self, username: str) -> Principal:
        """The principal a fresh login of the user carries."""
        return (await self.uow.users.by_username(username)).principal
