"""Identity rules: roles, password policy, lockout, dealer validation and scope. Pure
Python, no I/O."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from stdnum.cn import uscc

from shared.errors import FieldViolation


class Role(enum.StrEnum):
    HQ_ADMIN = "hq_admin"
    REGION_MANAGER = "region_manager"
    CHANNEL_MANAGER = "channel_manager"
    FINANCE = "finance"
    CUSTOMER_SERVICE = "customer_service"
    DEALER_ADMIN = "dealer_admin"
    DEALER_SALES = "dealer_sales"
    ERP = "erp"


HQ_ROLES = frozenset({Role.HQ_ADMIN, Role.REGION_MANAGER, Role.CHANNEL_MANAGER, Role.FINANCE,
                      Role.CUSTOMER_SERVICE})
DEALER_ROLES = frozenset({Role.DEALER_ADMIN, Role.DEALER_SALES})
ALL_DEALER_ROLES = frozenset({Role.HQ_ADMIN, Role.FINANCE, Role.CUSTOMER_SERVICE})
# A service account (ERP) is narrow: every dealer, but only for the actions it feeds.
ERP_ACTION_PREFIXES = ("order.", "shipment.", "invoice.", "payment.", "product.", "erp.",
                       "org.read", "dealer.read")


class OrgKind(enum.StrEnum):
    HQ = "hq"
    REGION = "region"
    DEALER = "dealer"


class Tier(enum.StrEnum):
    PLATFORM = "platform"
    ONE = "tier1"
    TWO = "tier2"


USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


def password_violations(password: str, username: str) -> list[FieldViolation]:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    classes = sum(bool(re.search(pattern, password))
                  for pattern in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        problems.append("must mix at least three of: lower case, upper case, digits, symbols")
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    return [FieldViolation("password", problem) for problem in problems]


def username_violations(username: str) -> list[FieldViolation]:
    if not USERNAME.match(username):
        return [FieldViolation("username", "3-64 characters: lower-case letters, digits, . _ @ -"
                                           " starting with a letter or digit")]
    return []


def credit_code_violations(code: str, field: str = "credit_code") -> list[FieldViolation]:
    if not code:
        return [FieldViolation(field, "is required for a dealer")]
    if not uscc.is_valid(code):
        return [FieldViolation(field, f"{code!r} is not a valid unified social credit code")]
    return []


@dataclass(frozen=True)
class LoginState:
    failed_attempts: int
    locked_until: datetime | None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def after_failure(self, now: datetime) -> LoginState:
        attempts = self.failed_attempts + 1
        if attempts >= MAX_FAILED_LOGINS:
            # Each lockout beyond the first doubles, up to a day.
            exponent = min(attempts - MAX_FAILED_LOGINS, 6)
            return LoginState(attempts, now + min(LOCKOUT * 2**exponent, timedelta(days=1)))
        return LoginState(attempts, None)


@dataclass(frozen=True)
class ScopeAnswer:
    all_dealers: bool
    dealer_ids: frozenset[str]

    @cached_property
    def ordered_ids(self) -> tuple[str, ...]:
        """The dealer ids in order, sorted once per answer (a cached answer is sent many
        times, with thousands of ids for a region manager)."""
        return tuple(sorted(self.dealer_ids))


def erp_may(action: str) -> bool:
    return not action or action.startswith(ERP_ACTION_PREFIXES)


def scope_for(roles: frozenset[str], own_dealer_id: str, assigned: frozenset[str],
              region_dealers: frozenset[str], sub_dealers: frozenset[str],
              action: str = "") -> ScopeAnswer:
    """Which dealers a principal with these roles may act on. ``sub_dealers`` are only
    the sub-dealers whose data is shared with their platform dealer (the grant)."""
    if roles & ALL_DEALER_ROLES:
        return ScopeAnswer(True, frozenset())
    if Role.ERP in roles and erp_may(action):
        return ScopeAnswer(True, frozenset())
    dealers: set[str] = set()
    if roles & DEALER_ROLES and own_dealer_id:
        dealers.add(own_dealer_id)
        dealers |= sub_dealers
    if Role.CHANNEL_MANAGER in roles:
        dealers |= assigned
    if Role.REGION_MANAGER in roles:
        dealers |= region_dealers
    return ScopeAnswer(False, frozenset(dealers))
