"""How sign-in attempts are slowed, so that guessing a password costs an attacker time
while the account's owner keeps signing in:

- per source and account: five wrong passwords in a row from one address lock that
  address out of that account for 15 minutes, each further failure doubling it (up to
  a day) — the owner, from any other address, is not locked;
- per account: at most ``attempts_per_minute`` password checks a minute from all
  addresses together (a spread-out guessing run), except from an address where the
  account's owner signed in before (the owner at the office is never held back).

Refusals say when to come back (429 Retry-After) and are the same for every username,
known or not, so they tell nothing about which accounts exist. State is per process,
bounded in size (the oldest entries are dropped first), and forgotten at restart."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.identity.domain.rules import LoginState

WINDOW = timedelta(minutes=1)
MAX_TRACKED = 100_000


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


@dataclass
class SignInThrottle:
    attempts_per_minute: int = 20
    # (source, username) → failures in a row and the lock they earned.
    _pairs: OrderedDict[tuple[str, str], LoginState] = field(default_factory=OrderedDict)
    # username → when its recent password checks were made (the last minute's).
    _checks: OrderedDict[str, deque[datetime]] = field(default_factory=OrderedDict)
    # (source, username) pairs the owner signed in from.
    _trusted: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)

    def retry_after(self, source: str, username: str, now: datetime) -> int:
        """0 if this attempt may check a password now, else the seconds to wait."""
        pair = self._pairs.get((source, username))
        if pair is not None and pair.is_locked(now):
            return _seconds_until(pair.locked_until, now)
        if (source, username) in self._trusted:
            return 0
        checks = self._recent_checks(username, now)
        if len(checks) >= self.attempts_per_minute:
            return _seconds_until(checks[0] + WINDOW, now)
        return 0

    def checking(self, username: str, now: datetime) -> None:
        """A password of this account is being checked."""
        self._recent_checks(username, now).append(now)
        _remember(self._checks, username, self._checks[username])

    def failed(self, source: str, username: str, now: datetime) -> None:
        state = self._pairs.get((source, username), LoginState(0, None))
        _remember(self._pairs, (source, username), state.after_failure(now))

    def succeeded(self, source: str, username: str) -> None:
        self._pairs.pop((source, username), None)
        _remember(self._trusted, (source, username), None)

    def _recent_checks(self, username: str, now: datetime) -> deque[datetime]:
        checks = self._checks.setdefault(username, deque())
        while checks and checks[0] <= now - WINDOW:
            checks.popleft()
        return checks


def _remember(table: OrderedDict, key, value) -> None:
    """Set ``key`` as the newest entry, dropping the oldest beyond MAX_TRACKED."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_TRACKED:
        table.popitem(last=False)
