"""Sessions: login with lockout after repeated failures, refresh-token rotation,
logout, and the revocations that make a deactivated user's or a signed-out token fail at
once, here and (through the events) in every other process."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from qudao.identity.v1 import events_pb2, identity_pb2
from sqlalchemy import select

from services.identity.adapters.orm import RefreshTokenRow, UserRow
from services.identity.domain.rules import LoginState
from services.identity.usecases.common import UseCaseBase, aware, user_to_proto
from shared.context import Principal, current_principal
from shared.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated, collect
from shared.events.identity import SESSION_REVOKED

REFRESH_TTL = timedelta(days=14)
REVOCATION_MEMORY = timedelta(days=1)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionUseCases(UseCaseBase):
    async def _issue(self, session, user: UserRow, dealer_id: str) -> tuple[str, str]:
        access, _ = self.issuer.issue(self._principal(user, dealer_id))
        refresh = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session.add(RefreshTokenRow(token_hash=_hash_token(refresh), user_id=user.id,
                                    expires_at=now + REFRESH_TTL, revoked_at=None, created_at=now))
        return access, refresh

    async def login(self, username: str, password: str) -> identity_pb2.LoginResponse:
        violations = []
        if not username:
            violations.append(FieldViolation("username", "is required"))
        if not password:
            violations.append(FieldViolation("password", "is required"))
        collect(violations)
        now = datetime.now(UTC)
        async with self.db.write() as session:
            user = await session.scalar(select(UserRow).where(UserRow.username == username))
            if user is None:
                # Spend the same time as a real check so usernames cannot be probed.
                await asyncio.to_thread(self._verify, self._dummy_hash, password)
                raise Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")
            state = LoginState(user.failed_logins, aware(user.locked_until))
            if state.is_locked(now):
                raise Unauthenticated(
                    "too many failed logins; try again later", reason="LOCKED_OUT",
                    metadata={"locked_until": state.locked_until.isoformat()})
            if not user.active:
                raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
            if not await asyncio.to_thread(self._verify, user.password_hash, password):
                # The failure is committed with the block; the error is raised after it.
                failed = state.after_failure(now)
                user.failed_logins = failed.failed_attempts
                user.locked_until = failed.locked_until
                response = None
            else:
                user.failed_logins = 0
                user.locked_until = None
                user.last_login_at = now
                dealer_id = await self._dealer_of(session, user.org_unit_id)
                access, refresh = await self._issue(session, user, dealer_id)
                response = identity_pb2.LoginResponse(
                    access_token=access, refresh_token=refresh,
                    expires_in_seconds=self.issuer.ttl_seconds,
                    user=user_to_proto(user, dealer_id))
        if response is None:
            raise Unauthenticated("wrong username or password", reason="BAD_CREDENTIALS")
        return response

    async def refresh(self, refresh_token: str) -> identity_pb2.RefreshTokenResponse:
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        now = datetime.now(UTC)
        async with self.db.write() as session:
            row = await session.get(RefreshTokenRow, _hash_token(refresh_token))
            if row is None or row.revoked_at is not None or aware(row.expires_at) <= now:
                raise Unauthenticated("refresh token is invalid or expired",
                                      reason="REFRESH_INVALID")
            user = await session.get(UserRow, row.user_id)
            if user is None or not user.active:
                raise Unauthenticated("this account is deactivated", reason="DEACTIVATED")
            row.revoked_at = now  # rotation: each refresh token works once
            dealer_id = await self._dealer_of(session, user.org_unit_id)
            access, refresh = await self._issue(session, user, dealer_id)
        return identity_pb2.RefreshTokenResponse(access_token=access, refresh_token=refresh,
                                                 expires_in_seconds=self.issuer.ttl_seconds)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token and, when the caller sent its access token too, that
        token everywhere at once (SessionRevoked)."""
        if not refresh_token:
            raise InvalidArgument.field("refresh_token", "is required")
        principal = current_principal()
        async with self.db.write() as session:
            row = await session.get(RefreshTokenRow, _hash_token(refresh_token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            if principal.token_id and principal.user_id:
                await self.outbox.record(session, SESSION_REVOKED, events_pb2.SessionRevoked(
                    user_id=principal.user_id, token_id=principal.token_id, reason="logout"),
                    principal.user_id)
        if principal.token_id and principal.user_id:
            self.revocations.revoke_token(principal.token_id)

    async def who_am_i(self) -> identity_pb2.User:
        principal = current_principal()
        async with self.db.read() as session:
            user = await session.get(UserRow, principal.user_id)
            if user is None:
                raise NotFound("user not found")
            return user_to_proto(user, await self._dealer_of(session, user.org_unit_id))

    def is_revoked(self, principal: Principal) -> bool:
        return principal.user_id in self.revoked_users or self.revocations.is_revoked(principal)

    async def load_revocations(self) -> None:
        """Users deactivated recently enough that a token of theirs may still be valid."""
        since = datetime.now(UTC) - REVOCATION_MEMORY
        async with self.db.read() as session:
            ids = (await session.scalars(select(UserRow.id).where(
                UserRow.active.is_(False), UserRow.deactivated_at >= since))).all()
        self.revoked_users.update(ids)
