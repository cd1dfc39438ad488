"""Sessions: login with lockout after repeated failures, refresh-token rotation and
logout. A signed-out access token is refused at once here and, through SessionRevoked,
in every other process. The password is checked outside the write transaction; the
transaction then judges the attempt against the user as it is by then."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from services.identity import messages
from services.identity.domain.model import RefreshToken, Session, Tokens, User
from services.identity.usecases.ports import (
    IdentityUnitOfWork,
    Passwords,
    Revocations,
    TokenIssuer,
)
from shared.clock import Clock
from shared.context import Principal
from shared.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated, collect
from shared.events.identity import SESSION_REVOKED, USER_LOGGED_IN

REFRESH_TTL = timedelta(days=14)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bad_credentials() -> Unauthenticated:
    return Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")


def _refuse_if_closed(user: User, clock: Clock) -> None:
    state = user.login_state
    if state.is_locked(clock.now()):
        raise Unauthenticated("too many failed logins; try again later", reason="LOCKED_OUT",
                              metadata={"locked_until": state.locked_until.isoformat()})
    if not user.active:
        raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")


async def _issue(uow: IdentityUnitOfWork, user: User, *, tokens: TokenIssuer,
                 clock: Clock) -> Tokens:
    """A new access token and a new refresh token (kept as its hash) for the user."""
    now = clock.now()
    access, _ = tokens.issue(user.principal, now=now.timestamp())
    refresh = secrets.token_urlsafe(32)
    await uow.refresh_tokens.add(RefreshToken(hash_token(refresh), user.id,
                                              expires_at=now + REFRESH_TTL, created_at=now))
    return Tokens(access, refresh, tokens.ttl_seconds)


async def login(username: str, password: str, *, uow: IdentityUnitOfWork,
                passwords: Passwords, tokens: TokenIssuer, clock: Clock) -> Session:
    """Five wrong passwords in a row lock the account for 15 minutes, each further
    failure doubles it (up to a day); the lock holds even against the right password."""
    username = username.strip().lower()
    violations = []
    if not username:
        violations.append(FieldViolation("username", "is required"))
    if not password:
        violations.append(FieldViolation("password", "is required"))
    collect(violations)
    async with uow.read():
        user = await uow.users.by_username(username)
    if user is None:
        # Spend the time of a real check so usernames cannot be probed.
        await passwords.verify(None, password)
        raise _bad_credentials()
    _refuse_if_closed(user, clock)
    checked = user.password_hash
    matches = await passwords.verify(checked, password)
    async with uow:
        # Judged against the user as it is now (locked: concurrent failures all count).
        user = await uow.users.get_for_update(user.id)
        if user is None or user.password_hash != checked:
            raise _bad_credentials()
        _refuse_if_closed(user, clock)
        if not matches:
            failed = user.login_state.after_failure(clock.now())
            await uow.users.update(replace(user, failed_logins=failed.failed_attempts,
                                           locked_until=failed.locked_until))
            await uow.commit()
            session = None
        else:
            user = replace(user, failed_logins=0, locked_until=None,
                           last_login_at=clock.now())
            await uow.users.update(user)
            session = Session(await _issue(uow, user, tokens=tokens, clock=clock), user)
            uow.events.record(USER_LOGGED_IN, messages.user_logged_in(user), user.id)
            await uow.commit()
    if session is None:
        raise _bad_credentials()
    return session


async def refresh(refresh_token: str, *, uow: IdentityUnitOfWork, tokens: TokenIssuer,
                  clock: Clock) -> Tokens:
    """Rotation: each refresh token works once, and brings the user's roles as they are
    now."""
    if not refresh_token:
        raise InvalidArgument.field("refresh_token", "is required")
    token_hash = hash_token(refresh_token)
    async with uow:
        stored = await uow.refresh_tokens.get(token_hash)
        if stored is None or not stored.usable(clock.now()):
            raise Unauthenticated("refresh token is invalid or expired", reason="REFRESH_INVALID")
        user = await uow.users.get(stored.user_id)
        if user is None or not user.active:
            raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
        # Of two refreshes with the same token, one revokes it; the other fails.
        if not await uow.refresh_tokens.revoke(token_hash, clock.now()):
            raise Unauthenticated("refresh token is invalid or expired", reason="REFRESH_INVALID")
        issued = await _issue(uow, user, tokens=tokens, clock=clock)
        await uow.commit()
    return issued


async def logout(refresh_token: str, *, who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                 revocations: Revocations) -> None:
    """Revoke the refresh token and, when the caller sent its access token too, that
    token everywhere at once (SessionRevoked)."""
    if not refresh_token:
        raise InvalidArgument.field("refresh_token", "is required")
    signed_out = bool(who.token_id and who.user_id)
    async with uow:
        await uow.refresh_tokens.revoke(hash_token(refresh_token), clock.now())
        if signed_out:
            uow.events.record(SESSION_REVOKED,
                              messages.token_signed_out(who.user_id, who.token_id), who.user_id)
        await uow.commit()
    if signed_out:
        revocations.revoke_token(who.token_id)


async def who_am_i(*, who: Principal, uow: IdentityUnitOfWork) -> User:
    async with uow.read():
        user = await uow.users.get(who.user_id) if who.user_id else None
    if user is None:
        raise NotFound("user not found")
    return user
