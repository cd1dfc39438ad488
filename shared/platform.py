"""What every service's bootstrap starts from: its database, NATS and its stream, the
outbox and relay, the identity channel with the scope cache, and the revocation list fed
by identity's events. A bootstrap adds its own use cases and servicer on top.

NATS connects in the background (its stream declared once it does): a service started
while the server is away serves what needs no NATS, its outbox holding the events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import grpc
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy import Table

from shared.bus.connection import connect_in_background, stop_connecting
from shared.bus.consumer import ConsumerRunner, Subscription
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.streams import ensure_streams
from shared.db import Database
from shared.host import GrpcService, Wiring
from shared.revocation import IdentityEvents, RevocationList
from shared.scope_client import ScopeResolver
from shared.settings import ServiceSettings


@dataclass
class Platform:
    settings: ServiceSettings
    db: Database
    nc: NatsClient
    js: JetStreamContext
    outbox: Outbox
    identity: grpc.aio.Channel
    scopes: ScopeResolver
    revocations: RevocationList
    identity_events: IdentityEvents
    client_requests: Table | None = None

    def consumers(self, inbox: Table, subscriptions: list[Subscription],
                  deps: object) -> ConsumerRunner:
        """The service's durable consumers, with the retry bound and ack wait from its
        settings."""
        return ConsumerRunner(
            self.db, self.nc, inbox, subscriptions, deps,
            max_deliveries=self.settings.max_deliveries,
            ack_wait=self.settings.ack_wait_seconds,
        )

    def wiring(
        self,
        service: GrpcService,
        *,
        workers: Iterable[Callable[[], Awaitable[None]]] = (),
        public_methods: frozenset[str] = frozenset(),
        on_stop: Iterable[Callable[[], Awaitable[None]]] = (),
    ) -> Wiring:
        """Everything for the host to run: the outbox relay always, the service's own
        workers, and tokens refused once identity revokes them."""
        return Wiring(
            db=self.db,
            nats=self.nc,
            services=[service],
            workers=[OutboxRelay(self.db, self.outbox, self.js).run, *workers],
            public_methods=public_methods,
            is_revoked=self.revocations.is_revoked,
            on_stop=[self.close, *on_stop],
            client_requests=self.client_requests,
        )

    async def close(self) -> None:
        await stop_connecting(self.nc)
        await self.identity_events.stop()
        await self.identity.close()


async def start_platform(settings: ServiceSettings, outbox_table: Table,
                         client_requests: Table | None = None) -> Platform:
    """``client_requests``: the service's table of Idempotency-Key answers
    (``shared.idempotency``), for services with creating calls."""
    service = settings.service
    db = Database(settings.database_url)
    nc = connect_in_background(settings, once_connected=[
        lambda: ensure_streams(nc.jetstream(), [service], settings.nats_stream_replicas)])
    js = nc.jetstream()
    identity = grpc.aio.insecure_channel(settings.identity_addr)
    scopes = ScopeResolver(identity)
    # Deactivated users' tokens fail at once; identity events clear cached scopes.
    revocations = RevocationList()
    identity_events = IdentityEvents(nc, revocations, [scopes.invalidate])
    await identity_events.start()
    return Platform(settings, db, nc, js, Outbox(outbox_table, service), identity, scopes,
                    revocations, identity_events, client_requests)
