"""How sign-in attempts are slowed, so that guessing a password costs an attacker time
while the account's owner keeps signing in:

- per source and account: five wrong passwords in a row from one address lock that
  address out of that account for 15 minutes, each further failure doubling it (up to
  a day) — the owner, from any other address, is not locked;
- per account: at most ``attempts_per_minute`` password checks a minute from all
  addresses together (a spread-out guessing run), except from an address where the
  account's owner signed in before (the owner at the office is never held back).

Refusals say when to come back (429 Retry-After) and are the same for every username,
known or not, so they tell nothing about which accounts exist. The state lives in
identity's database, so every replica counts the same attempts; accounts are kept as
digests of the typed name (people type passwords into the username field)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.identity.domain.rules import LoginState

WINDOW = timedelta(minutes=1)
NO_FAILURES = LoginState(0, None)
# How long an address the owner signed in from stays trusted, and a failure streak
# without a lock is remembered.
TRUST_KEPT = timedelta(days=90)
STREAK_KEPT = timedelta(days=1)


@dataclass
class SignInLimits:
    attempts_per_minute: int = 20


@dataclass(frozen=True)
class SourceRecord:
    """One address's history with one account."""

    state: LoginState = NO_FAILURES
    trusted: bool = False

    def after_failure(self, now: datetime) -> SourceRecord:
        return SourceRecord(self.state.after_failure(now), self.trusted)


SIGNED_IN = SourceRecord(NO_FAILURES, trusted=True)


def account_key(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()


def window_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def locked_for(record: SourceRecord, now: datetime) -> int:
    """Seconds this address must wait before trying this account again, 0 if none."""
    if record.state.is_locked(now):
        return _seconds_until(record.state.locked_until, now)
    return 0


def over_account_limit(record: SourceRecord, checks: int, limits: SignInLimits,
                       now: datetime) -> int:
    """``checks``: the account's password checks this window, this one included.
    Seconds until the next window when over the limit (never for a trusted address)."""
    if record.trusted or checks <= limits.attempts_per_minute:
        return 0
    return _seconds_until(window_of(now) + WINDOW, now)
