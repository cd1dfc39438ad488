"""What identity keeps: org units, users and their refresh tokens, channel-manager
assignments and the audit trail, with the filters its lists take. Pure Python."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from services.identity.domain.org import Node, derived_tags, home_city
from services.identity.domain.rules import LoginState, OrgKind, Role
from shared.context import Principal


@dataclass(frozen=True)
class OrgUnit:
    """HQ, a region or a dealer. Only dealers have a credit code, tier, platform dealer,
    territory (GB/T 2260 division codes), product lines and tags."""

    id: str
    kind: OrgKind
    name: str
    parent_id: str | None = None
    credit_code: str | None = None
    tier: str = ""
    platform_dealer_id: str | None = None
    # A region's own code; a dealer's is its region's.
    region_code: str = ""
    division_codes: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    status: str = "active"
    city_code: str = ""
    derived_tags: tuple[str, ...] = ()
    custom_tags: tuple[str, ...] = ()
    # The grant: a sub-dealer's data is visible to its platform dealer's staff.
    shared_with_platform: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Increases with every update (the REST API's ETag).
    version: int = 1

    @property
    def is_dealer(self) -> bool:
        return self.kind == OrgKind.DEALER

    @property
    def node(self) -> Node:
        return Node(self.id, self.kind, self.parent_id, self.tier, self.platform_dealer_id)

    def retagged(self, region_names: dict[str, str]) -> OrgUnit:
        """With its derived tags following its region's name, city, tier and product
        lines (a non-dealer has none)."""
        if not self.is_dealer:
            return replace(self, derived_tags=())
        return replace(self, derived_tags=tuple(derived_tags(
            region_names.get(self.region_code, self.region_code),
            home_city(self.division_codes, self.city_code), self.tier, self.product_lines)))

    def snapshot(self) -> dict:
        """The unit as the audit trail records it (and what "changed" compares)."""
        return {"id": self.id, "kind": str(self.kind), "name": self.name,
                "parent_id": self.parent_id, "credit_code": self.credit_code,
                "tier": self.tier, "platform_dealer_id": self.platform_dealer_id,
                "region_code": self.region_code, "division_codes": list(self.division_codes),
                "product_lines": list(self.product_lines), "status": self.status,
                "city_code": self.city_code, "shared_with_platform": self.shared_with_platform,
                "derived_tags": list(self.derived_tags), "custom_tags": list(self.custom_tags)}


def changed_fields(before: dict, after: dict) -> list[str]:
    return [key for key in after if after[key] != before.get(key)]


@dataclass(frozen=True)
class User:
    id: str
    username: str
    password_hash: str
    roles: tuple[str, ...]
    org_unit_id: str
    display_name: str = ""
    # The user's org unit when that is a dealer (dealer staff), else "".
    dealer_id: str = ""
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    deactivated_at: datetime | None = None
    last_login_at: datetime | None = None
    # Increases with every change of roles (the ETag of PUT /users/{id}/roles).
    version: int = 1

    @property
    def principal(self) -> Principal:
        """The user as a principal with the roles and org unit it has now."""
        return Principal(subject=f"user:{self.id}", user_id=self.id, username=self.username,
                         roles=frozenset(self.roles), org_unit_id=self.org_unit_id,
                         dealer_id=self.dealer_id)

    @property
    def login_state(self) -> LoginState:
        return LoginState(self.failed_logins, self.locked_until)

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    def snapshot(self) -> dict:
        # Never the password hash.
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "roles": list(self.roles), "org_unit_id": self.org_unit_id,
                "active": self.active}


@dataclass(frozen=True)
class RefreshToken:
    # SHA-256 of the token: a leaked table does not leak sessions.
    token_hash: str
    user_id: str
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class Tokens:
    """What a login or refresh hands out."""

    access_token: str
    refresh_token: str
    expires_in_seconds: int


@dataclass(frozen=True)
class Session:
    tokens: Tokens
    user: User


@dataclass(frozen=True)
class Assignment:
    """A channel manager looks after a dealer for one product line."""

    manager_user_id: str
    dealer_id: str
    product_line: str
    assigned_at: datetime | None = None
    assigned_by: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager_user_id, self.dealer_id, self.product_line)

    def snapshot(self) -> dict:
        return {"manager_user_id": self.manager_user_id, "dealer_id": self.dealer_id,
                "product_line": self.product_line}


class AssignmentChange(enum.StrEnum):
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    TRANSFERRED = "transferred"


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when, with the target before and after (JSON snapshots)."""

    id: str
    occurred_at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    before_json: str = ""
    after_json: str = ""
    reason: str = ""
    request_id: str = ""


class TagKind(enum.StrEnum):
    DERIVED = "derived"
    CUSTOM = "custom"


@dataclass(frozen=True)
class TagCount:
    name: str
    kind: TagKind
    dealer_count: int


@dataclass(frozen=True)
class Visibility:
    """Which org units a principal may see: ``everything``, or its own unit, the dealers
    in its scope, and (for HQ staff) the non-dealer structure."""

    everything: bool
    dealer_ids: frozenset[str]
    own_unit: str = ""
    structure: bool = False

    def sees(self, unit: OrgUnit | None) -> bool:
        if unit is None:
            return False
        if self.everything or unit.id == self.own_unit or unit.id in self.dealer_ids:
            return True
        return self.structure and not unit.is_dealer


@dataclass(frozen=True)
class OrgUnitFilter:
    kind: OrgKind | None = None
    parent_id: str = ""
    status: str = ""
    region_code: str = ""
    # Part of the name, or the exact credit code.
    text: str = ""
    # Only these units; empty: any.
    ids: frozenset[str] = frozenset()
    # None: every unit.
    visible: Visibility | None = None


@dataclass(frozen=True)
class UserFilter:
    """Which users a list shows. The visibility part: with ``dealer_staff_only``, only
    dealers' staff (of ``org_unit_ids`` when given), and the user ``or_user_id``."""

    dealer_staff_only: bool = False
    org_unit_ids: frozenset[str] | None = None
    or_user_id: str = ""
    org_unit_id: str = ""
    include_inactive: bool = False
    # Part of the username or display name.
    text: str = ""
    role: str = ""


@dataclass(frozen=True)
class AssignmentFilter:
    # None: assignments of every dealer; else of these dealers, and those of
    # ``or_manager_user_id``.
    dealer_ids: frozenset[str] | None = None
    or_manager_user_id: str = ""
    manager_user_id: str = ""
    dealer_id: str = ""
    product_line: str = ""


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
