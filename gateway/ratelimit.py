"""Sign-in attempts per source address: a moving window of ``rate_limit_per_minute``
attempts (login and token refresh together) for each client address, answered 429 with
Retry-After beyond it, before the attempt reaches identity (which limits attempts per
account as well, services/identity/adapters/throttle.py).

The address is the TCP peer's, or the one a trusted proxy names in X-Forwarded-For
(uvicorn's proxy headers, trusted from FORWARDED_ALLOW_IPS, loopback by default)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import Scope

SIGN_IN_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/refresh"})


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class SignInLimit:
    def __init__(self, per_minute: int) -> None:
        self.rate = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, scope: Scope) -> int:
        """0 when this sign-in attempt may go on (and it is counted), else the seconds
        until the source's window has room again."""
        if scope["method"] != "POST" or scope["path"] not in SIGN_IN_PATHS:
            return 0
        source = client_address(scope)
        if self.limiter.hit(self.rate, "sign-in", source):
            return 0
        reset = self.limiter.get_window_stats(self.rate, "sign-in", source).reset_time
        return max(1, math.ceil(reset - time.time()))
