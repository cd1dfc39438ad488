"""Sessions: login slowed per source and account (domain/throttle.py), refresh-token
rotation with reuse detection, and logout. A signed-out access token is refused at once
here and, through SessionRevoked, in every other process.

Every failed login answers the same (BAD_CREDENTIALS) in the same time, whether the
username is unknown, the account deactivated or the password wrong: each checks a
password hash (a dummy one for an unknown name) and writes the same thing, the failure
of that address for that name."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from services.identity import messages
from services.identity.domain.model import RefreshToken, Session, Tokens, User
from services.identity.domain.throttle import (
    SIGNED_IN,
    SignInLimits,
    account_key,
    locked_for,
    over_account_limit,
    window_of,
)
from services.identity.usecases.ports import (
    IdentityUnitOfWork,
    Passwords,
    Revocations,
    TokenIssuer,
)
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    collect,
)
from shared.events.identity import SESSION_REVOKED, USER_LOGGED_IN
from shared.logging import get_logger

log = get_logger(__name__)
REFRESH_TTL = timedelta(days=14)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bad_credentials() -> Unauthenticated:
    return Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")


def _refresh_invalid() -> Unauthenticated:
    return Unauthenticated("refresh token is invalid or expired", reason="REFRESH_INVALID")


async def _issue(uow: IdentityUnitOfWork, user: User, *, tokens: TokenIssuer,
                 clock: Clock) -> Tokens:
    """A new access token and a new refresh token (kept as its hash) for the user."""
    now = clock.now()
    access, _ = tokens.issue(user.principal, now=now.timestamp())
    refresh = secrets.token_urlsafe(32)
    await uow.refresh_tokens.add(RefreshToken(hash_token(refresh), user.id,
                                              expires_at=now + REFRESH_TTL, created_at=now))
    return Tokens(access, refresh, tokens.ttl_seconds)


async def _admit(source: str, account: str, *, uow: IdentityUnitOfWork, now,
                 limits: SignInLimits) -> None:
    """Count this attempt's password check, or refuse it (429 with Retry-After)."""
    async with uow:
        record = await uow.sign_ins.record(source, account)
        wait = locked_for(record, now)
        if not wait:
            checks = await uow.sign_ins.count_check(account, window_of(now))
            wait = over_account_limit(record, checks, limits, now)
        await uow.commit()
    if wait:
        raise ResourceExhausted("too many sign-in attempts; try again later", wait)


async def _failed(source: str, account: str, *, uow: IdentityUnitOfWork, now) -> None:
    async with uow:
        record = await uow.sign_ins.record(source, account)
        await uow.sign_ins.save(source, account, record.after_failure(now), now)
        await uow.commit()


async def forget_sign_ins(*, uow: IdentityUnitOfWork, clock: Clock) -> dict:
    """Drop sign-in records that no longer slow anyone (bootstrap runs it on a timer)."""
    async with uow:
        dropped = await uow.sign_ins.forget(clock.now())
        await uow.commit()
    return {"dropped": dropped}


async def login(username: str, password: str, *, source: str, uow: IdentityUnitOfWork,
                passwords: Passwords, tokens: TokenIssuer, clock: Clock,
                limits: SignInLimits) -> Session:
    """``source`` is the address the attempt came from (the gateway's client)."""
    username = username.strip().lower()
    violations = []
    if not username:
        violations.append(FieldViolation("username", "is required"))
    if not password:
        violations.append(FieldViolation("password", "is required"))
    collect(violations)
    now = clock.now()
    account = account_key(username)
    await _admit(source, account, uow=uow, now=now, limits=limits)
    async with uow.read():
        user = await uow.users.by_username(username)
    checked = user.password_hash if user is not None else None
    # Unknown names are checked against a dummy hash, at the cost of a real one.
    matches = await passwords.verify(checked, password)
    if not matches or user is None or not user.active:
        await _failed(source, account, uow=uow, now=now)
        raise _bad_credentials()
    async with uow:
        # The user as it is by now: deactivated or given a new password meanwhile, the
        # password checked no longer opens it.
        user = await uow.users.get_for_update(user.id)
        if user is None or not user.active or user.password_hash != checked:
            raise _bad_credentials()
        user = replace(user, failed_logins=0, locked_until=None, last_login_at=clock.now())
        await uow.users.update(user)
        session = Session(await _issue(uow, user, tokens=tokens, clock=clock), user)
        uow.events.record(USER_LOGGED_IN, messages.user_logged_in(user), user.id)
        await uow.sign_ins.save(source, account, SIGNED_IN, clock.now())
        await uow.commit()
    return session


async def refresh(refresh_token: str, *, uow: IdentityUnitOfWork, tokens: TokenIssuer,
                  clock: Clock, revocations: Revocations) -> Tokens:
    """Rotation: each refresh token works once, and brings the user's roles as they are
    now. A used token coming back means it was copied: whoever holds it, the thief or
    the owner, the session cannot be trusted, so all of the user's sessions end (their
    refresh tokens, and their access tokens everywhere) and the owner signs in again."""
    if not refresh_token:
        raise InvalidArgument.field("refresh_token", "is required")
    token_hash = hash_token(refresh_token)
    async with uow:
        stored = await uow.refresh_tokens.get(token_hash)
        if stored is None or stored.expires_at <= clock.now():
            raise _refresh_invalid()
        user = await uow.users.get(stored.user_id)
        if user is None or not user.active:
            raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
        # Of two refreshes with the same token, one rotates it; the other is a reuse.
        if stored.revoked_at is None and await uow.refresh_tokens.revoke(token_hash,
                                                                         clock.now()):
            issued = await _issue(uow, user, tokens=tokens, clock=clock)
            await uow.commit()
            return issued
        await uow.refresh_tokens.revoke_all(user.id, clock.now())
        moment = clock.now()
        uow.events.record(SESSION_REVOKED, messages.tokens_issued_before(
            user.id, moment, "refresh_token_reused"), user.id)
        await uow.commit()
    log.warning("refresh_token_reused", user_id=user.id)
    revocations.revoke_issued_before(user.id, moment.timestamp())
    raise _refresh_invalid()


async def logout(refresh_token: str, *, who: Principal, uow: IdentityUnitOfWork, clock: Clock,
                 revocations: Revocations) -> None:
    """Revoke the refresh token and, when the caller sent its access token too, that
    token everywhere at once (SessionRevoked)."""
    if not refresh_token:
        raise InvalidArgument.field("refresh_token", "is required")
    signed_out = bool(who.token_id and who.user_id)
    async with uow:
        await uow.refresh_tokens.delete(hash_token(refresh_token))
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
