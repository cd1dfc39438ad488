"""What the identity use cases need from the world, as protocols: the unit of work with
its repositories, the password hasher, the token issuer, the revocation list and the
scope cache, and ``Deps``, the bundle bootstrap.py wires. The adapters implement them
over SQL, argon2 and Ed25519; tests/service/identity/fakes.py in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Self

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
from services.identity.domain.org import Node
from services.identity.domain.rules import ScopeAnswer
from services.identity.domain.throttle import SignInLimits, SourceRecord
from shared.clock import Clock
from shared.context import Principal
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.uow import EventLog


class OrgUnitRepository(Protocol):
    async def get(self, org_unit_id: str) -> OrgUnit | None: ...

    async def get_many(self, org_unit_ids: Iterable[str]) -> dict[str, OrgUnit]: ...

    async def any(self) -> bool:
        """Whether any org unit exists (an empty database has none, not even HQ)."""

    async def hq(self) -> OrgUnit | None: ...

    async def regions(self) -> list[OrgUnit]: ...

    async def region(self, region_code: str) -> OrgUnit | None: ...

    async def by_credit_codes(self, codes: Iterable[str]) -> dict[str, OrgUnit]: ...

    async def tree(self, org_unit_ids: Iterable[str | None]) -> dict[str, Node]:
        """The non-dealer structure plus the named units and the sub-dealers of any dealer
        among them: all that the tree rules need to judge a change to those units."""

    async def dealers_in_region(self, region_code: str) -> list[OrgUnit]: ...

    async def dealer_ids_under(self, parent_ids: Iterable[str]) -> frozenset[str]:
        """The dealers whose parent is one of ``parent_ids``."""

    async def sub_dealers(self, platform_dealer_ids: Iterable[str]) -> list[OrgUnit]: ...

    async def shared_sub_dealer_ids(self, platform_dealer_id: str) -> frozenset[str]:
        """The sub-dealers of a platform dealer that share their data with it."""

    async def dealer_ids(self) -> frozenset[str]: ...

    async def dealer_summaries(self) -> list[DealerSummary]:
        """Every dealer's facts, status and tags, ordered by name."""

    async def page(self, which: OrgUnitFilter, page: PageRequest) -> Page[OrgUnit]: ...

    async def add(self, unit: OrgUnit) -> None:
        """Raises AlreadyExists (credit_code) when another unit has the credit code."""

    async def add_many(self, units: list[OrgUnit]) -> None: ...

    async def update(self, unit: OrgUnit) -> None: ...

    async def next_version(self, unit: OrgUnit) -> int:
        """Moves the stored version on from ``unit.version``; StaleVersion when another
        change moved it first."""


class UserRepository(Protocol):
    async def get(self, user_id: str) -> User | None: ...

    async def by_username(self, username: str) -> User | None: ...

    async def get_for_update(self, user_id: str) -> User | None:
        """The user, locked against concurrent changes until the transaction ends."""

    async def add(self, user: User) -> None:
        """Raises AlreadyExists (username) when the username is taken."""

    async def update(self, user: User) -> None: ...

    async def next_version(self, user: User) -> int:
        """Moves the stored version on from ``user.version``; StaleVersion when another
        change of roles moved it first."""

    async def page(self, which: UserFilter, page: PageRequest) -> Page[User]: ...

    async def deactivated_since(self, moment: datetime) -> list[str]: ...

    async def active_of_dealers(self, dealer_ids: Iterable[str]) -> list[User]:
        """The active users working for those dealers, by dealer and username."""

    async def active_per_dealer(self) -> dict[str, int]:
        """How many active users each dealer has (dealers without any left out)."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: str) -> RefreshToken | None: ...

    async def revoke(self, token_hash: str, at: datetime) -> bool:
        """Mark the token used up by a rotation; False if it already was (a reuse)."""

    async def delete(self, token_hash: str) -> None:
        """Forget the token (signed out): using it again is no reuse, just invalid."""

    async def revoke_all(self, user_id: str, at: datetime) -> None:
        """End every session of the user: forget all its refresh tokens."""


class AssignmentRepository(Protocol):
    async def get(self, key: tuple[str, str, str]) -> Assignment | None: ...

    async def add(self, assignment: Assignment) -> None: ...

    async def remove(self, assignment: Assignment) -> None: ...

    async def of_manager(self, manager_user_id: str, dealer_ids: Iterable[str] = (),
                         product_lines: Iterable[str] = ()) -> list[Assignment]:
        """The manager's assignments (of those dealers and product lines, where named),
        ordered by dealer and product line."""

    async def dealer_ids_of(self, manager_user_id: str,
                            product_line: str = "") -> frozenset[str]: ...

    async def count_of(self, manager_user_id: str) -> int: ...

    async def page(self, which: AssignmentFilter,
                   page: PageRequest) -> Page[Assignment]: ...


class AuditLog(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...

    async def page(self, which: AuditFilter, page: PageRequest) -> Page[AuditEntry]: ...


class NoticeRepository(Protocol):
    async def add(self, notice: Notice, contents: dict[str, bytes]) -> None:
        """The notice with its attachments' contents (by attachment id)."""

    async def get(self, notice_id: str) -> Notice | None: ...

    async def newest_first(self) -> list[Notice]:
        """Every notice, newest first (audiences are judged on the dealers as they are
        now, so the list is filtered in the use case)."""

    async def attachment(self, notice_id: str, attachment_id: str) -> bytes | None: ...

    async def receipt(self, notice_id: str, user_id: str) -> Receipt | None: ...

    async def receipts_of_user(self, user_id: str) -> dict[str, Receipt]:
        """The user's receipts by notice id."""

    async def receipts_of(self, notice_ids: Iterable[str]) -> list[Receipt]: ...

    async def receipt_counts(self, notice_ids: Iterable[str]) -> dict[str, dict[str, tuple[
            int, int]]]:
        """Per notice, per dealer: (read, confirmed) by the dealer's active users."""

    async def save_receipt(self, receipt: Receipt) -> None:
        """Add or replace the user's receipt of the notice."""


class MaterialRepository(Protocol):
    async def add(self, material: Material, content: bytes) -> None:
        """The material with its first version's file."""

    async def add_version(self, material: Material, content: bytes) -> None:
        """The material as it is now, its current version's file new."""

    async def get(self, material_id: str) -> Material | None: ...

    async def newest_first(self) -> list[Material]:
        """Every material, the most recently versioned first."""

    async def content(self, material_id: str, version: int) -> bytes | None: ...

    async def add_download(self, download: Download) -> None: ...

    async def downloads_of(self, material_ids: Iterable[str]) -> list[Download]: ...


class SignInRepository(Protocol):
    """Sign-in attempts, shared by every replica (domain/throttle.py)."""

    async def record(self, source: str, account: str) -> SourceRecord:
        """This address's history with the account, locked until the transaction ends."""

    async def save(self, source: str, account: str, record: SourceRecord,
                   now: datetime) -> None: ...

    async def count_check(self, account: str, window: datetime) -> int:
        """Count one password check of the account in ``window``; the count after it."""

    async def forget(self, now: datetime) -> int:
        """Drop windows gone by, lapsed failure streaks and trust not renewed."""


class IdentityUnitOfWork(Protocol):
    """One transaction over identity's data. A commit that wrote an audit entry (every
    change of the org, users, tags or assignments does) also clears the scope cache."""

    org_units: OrgUnitRepository
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    assignments: AssignmentRepository
    audit: AuditLog
    notices: NoticeRepository
    materials: MaterialRepository
    sign_ins: SignInRepository
    events: EventLog

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc) -> None: ...

    def read(self) -> AbstractAsyncContextManager[Self]: ...

    async def commit(self) -> None: ...


class Passwords(Protocol):
    """The password hasher (argon2id)."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches. With no hash (an unknown username) it spends the
        time of a real check and answers False, so timing does not tell which usernames
        exist."""


class TokenIssuer(Protocol):
    """Signs access tokens (shared.auth.TokenIssuer)."""

    ttl_seconds: int

    def issue(self, principal: Principal, *, now: float | None = None) -> tuple[str, str]:
        """(token, token id)."""


class Revocations(Protocol):
    """The tokens this process refuses at once (shared.revocation.RevocationList); the
    other processes learn of the same revocations from identity's events."""

    def revoke(self, user_id: str) -> None: ...

    def revoke_token(self, token_id: str) -> None: ...

    def revoke_issued_before(self, user_id: str, moment: float) -> None: ...


class ScopeCache(Protocol):
    """ResolveScope answers and dealer summaries, valid while no change has committed
    since they were computed. ``generation`` moves on with every change (``invalidate``,
    here after a commit, on other replicas on the change's event); an answer is kept
    under the generation read before its queries ran, so a change committed meanwhile
    makes it stale at once."""

    generation: int

    def answer(self, key: tuple[str, str, str]) -> ScopeAnswer | None: ...

    def remember(self, key: tuple[str, str, str], generation: int,
                 answer: ScopeAnswer) -> None: ...

    def dealer_summaries(self) -> list[DealerSummary] | None: ...

    def remember_dealer_summaries(self, generation: int,
                                  summaries: list[DealerSummary]) -> None: ...

    def invalidate(self) -> None: ...


class Sheets(Protocol):
    """Writes reports as XLSX."""

    def xlsx(self, header: list[str], rows: list[list[str]]) -> bytes:
        """One sheet of text cells; the caller has made them formula-safe."""


@dataclass(frozen=True)
class Deps:
    """The collaborators bootstrap.py wires, for the api to pass on."""

    uow: Callable[[], IdentityUnitOfWork]
    clock: Clock
    ids: IdSource
    passwords: Passwords
    tokens: TokenIssuer
    revocations: Revocations
    scope_cache: ScopeCache
    sheets: Sheets
    sign_in: SignInLimits = field(default_factory=SignInLimits)
