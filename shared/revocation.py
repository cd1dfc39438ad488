"""Session revocation and scope-cache invalidation from identity's events, in every
process (services and gateway).

Identity publishes ``UserDeactivated`` and ``SessionRevoked`` (a logout, or every token
of a user issued before a password or role change), and every other
scope-changing event, through its outbox. Each process keeps a plain core-NATS
subscription to ``qudao.identity.>``: core subscribers receive what the relay publishes
into JetStream within milliseconds, with no durable consumer to manage. On start, the
process first replays the recent ``user.deactivated`` and ``session.revoked`` events
from identity's stream (an ordered, ephemeral consumer), so a process that was down when
a user left still refuses that user's old tokens until they expire.

    revocations = RevocationList()
    watcher = IdentityEvents(nc, revocations, on_scope_change=[resolver.invalidate])
    await watcher.start()            # then pass revocations.is_revoked to the interceptor
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy
from qudao.identity.v1 import events_pb2

from shared.bus.envelope import UndecodableEvent, decode_envelope, stream_name
from shared.events.identity import (
    ASSIGNMENT_CHANGED,
    ORG_UNIT_CREATED,
    ORG_UNIT_UPDATED,
    SESSION_REVOKED,
    USER_DEACTIVATED,
    USER_ROLES_CHANGED,
)
from shared.logging import get_logger

log = get_logger(__name__)

IDENTITY_SUBJECTS = "qudao.identity.>"
REVOKING = (USER_DEACTIVATED, SESSION_REVOKED)
DEACTIVATED_SUBJECT = USER_DEACTIVATED.subject
SESSION_REVOKED_SUBJECT = SESSION_REVOKED.subject
# Events after which a cached ResolveScope answer may be wrong.
SCOPE_CHANGES = (ORG_UNIT_CREATED, ORG_UNIT_UPDATED, USER_DEACTIVATED, USER_ROLES_CHANGED,
                 ASSIGNMENT_CHANGED)
SCOPE_SUBJECT_PREFIXES = tuple(event.subject for event in SCOPE_CHANGES)
# Longer than any access token lives (identity's default TTL is 15 minutes).
DEFAULT_MEMORY_SECONDS = 24 * 3600.0


class RevocationList:
    """User ids whose sessions are all revoked (deactivation), single token ids (logout),
    and per user a moment before which its tokens were issued in vain (password or role
    change); each remembered long enough to outlive every token issued before."""

    def __init__(self, memory_seconds: float = DEFAULT_MEMORY_SECONDS) -> None:
        self.memory_seconds = memory_seconds
        self._until: dict[str, float] = {}
        self._tokens: dict[str, float] = {}
        # user id → (issued-before moment, epoch seconds; remembered until, monotonic)
        self._issued_before: dict[str, tuple[float, float]] = {}

    def revoke(self, user_id: str) -> None:
        if user_id:
            self._until[user_id] = time.monotonic() + self.memory_seconds

    def revoke_token(self, token_id: str) -> None:
        if token_id:
            self._tokens[token_id] = time.monotonic() + self.memory_seconds

    def revoke_issued_before(self, user_id: str, moment: float) -> None:
        if user_id:
            previous = self._issued_before.get(user_id, (0.0, 0.0))[0]
            self._issued_before[user_id] = (max(previous, moment),
                                            time.monotonic() + self.memory_seconds)

    def _issued_too_early(self, principal) -> bool:
        entry = self._issued_before.get(getattr(principal, "user_id", "") or "")
        if entry is None:
            return False
        moment, until = entry
        if until < time.monotonic():
            del self._issued_before[principal.user_id]
            return False
        return getattr(principal, "issued_at", 0.0) < moment

    @staticmethod
    def _held(table: dict[str, float], key: str) -> bool:
        until = table.get(key) if key else None
        if until is None:
            return False
        if until < time.monotonic():
            del table[key]
            return False
        return True

    def is_revoked(self, principal) -> bool:
        return (self._held(self._until, getattr(principal, "user_id", ""))
                or self._held(self._tokens, getattr(principal, "token_id", ""))
                or self._issued_too_early(principal))

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._until

    def __len__(self) -> int:
        return len(self._until)


class IdentityEvents:
    """Listens to identity's events: revokes sessions of deactivated users and calls
    ``on_scope_change`` (e.g. ``ScopeResolver.invalidate``) after any scope change."""

    def __init__(self, nc: NatsClient, revocations: RevocationList | None = None,
                 on_scope_change: Iterable[Callable[[], object]] = (),
                 catch_up_seconds: float = DEFAULT_MEMORY_SECONDS,
                 change_prefixes: tuple[str, ...] = SCOPE_SUBJECT_PREFIXES) -> None:
        self.nc = nc
        self.revocations = revocations
        self.on_scope_change = list(on_scope_change)
        # Which subjects call on_scope_change (identity itself also wants tag changes).
        self.change_prefixes = change_prefixes
        self.catch_up_seconds = catch_up_seconds
        self._subscription = None

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(IDENTITY_SUBJECTS, cb=self._on_message)
        if self.revocations is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._catch_up(), timeout=5)

    async def stop(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _catch_up(self) -> None:
        """Replay recent deactivations from identity's stream (if it exists yet)."""
        js = self.nc.jetstream()
        try:
            info = await js.stream_info(stream_name("identity"))
        except Exception:
            return  # identity has not started yet; the live subscription covers what comes
        if not info.state.messages:
            return
        since = datetime.now(UTC) - timedelta(seconds=self.catch_up_seconds)
        for subject in (DEACTIVATED_SUBJECT, SESSION_REVOKED_SUBJECT):
            subscription = await js.subscribe(
                subject, ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                      opt_start_time=since.isoformat().replace("+00:00", "Z")))
            try:
                while True:
                    try:
                        message = await subscription.next_msg(timeout=0.5)
                    except Exception:
                        break
                    self._apply(message.subject, message.data)
                    if message.metadata.num_pending == 0:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    @staticmethod
    def apply_revocation(revocations: RevocationList, payload) -> None:
        """A UserDeactivated or SessionRevoked event, applied to ``revocations``."""
        if isinstance(payload, events_pb2.UserDeactivated):
            revocations.revoke(payload.user.id)
        elif payload.token_id:
            revocations.revoke_token(payload.token_id)
        elif payload.HasField("issued_before"):
            revocations.revoke_issued_before(
                payload.user_id, payload.issued_before.ToNanoseconds() / 1e9)

    async def _on_message(self, message) -> None:
        self._apply(message.subject, message.data)

    def _apply(self, subject: str, data: bytes) -> None:
        if subject in (DEACTIVATED_SUBJECT, SESSION_REVOKED_SUBJECT) and \
                self.revocations is not None:
            try:
                event = decode_envelope(subject, data)
            except UndecodableEvent as exc:
                log.warning("identity_event_undecodable", subject=subject, error=str(exc))
            else:
                self.apply_revocation(self.revocations, event.payload)
        if subject.startswith(self.change_prefixes):
            for callback in self.on_scope_change:
                try:
                    callback()
                except Exception:
                    log.exception("scope_invalidation_failed")
