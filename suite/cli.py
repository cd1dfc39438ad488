"""``qudao``: the suite's command line.

  qudao up                       NATS + six services + gateway, until Ctrl-C
  qudao migrate SERVICE|all      upgrade a service's database to the newest revision
  qudao makemigration SERVICE M  autogenerate a migration from the service's tables
  qudao dlq list | replay        inspect and replay dead-lettered events
  qudao consumer rewind NAME     rebuild a projection: replay its stream from the start
  qudao erp push FILE            push products, shipments, invoices, payments as the ERP
  qudao flow rebuild PROJECTION  rebuild a flow projection by replaying its events
  qudao demo [--small]           fill a running suite with a demo world, print logins
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.settings import SERVICES, default_sqlite_url
from suite import erp as erp_client
from suite.services import bootstrap_of


def _migrations_dir(service: str) -> Path:
    return bootstrap_of(service).MIGRATIONS


def _database_url(service: str) -> str:
    return os.environ.get(f"QUDAO_{service.upper()}_DATABASE_URL") or default_sqlite_url(service)


def cmd_migrate(args) -> None:
    from shared.db import migrate

    targets = SERVICES if args.service == "all" else (args.service,)
    for service in targets:
        migrate(_migrations_dir(service), _database_url(service))
        print(f"{service}: migrated")


def cmd_makemigration(args) -> None:
    import tempfile

    from alembic import command

    from shared.db import alembic_config, migrate

    migrations = _migrations_dir(args.service)
    (migrations / "versions").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        migrate(migrations, url)
        command.revision(alembic_config(migrations, url), message=args.message,
                         autogenerate=True, rev_id=args.rev_id)


def cmd_up(args) -> None:
    from suite.supervisor import AlreadyRunning, Supervisor

    supervisor = Supervisor(Path(args.var_dir).resolve(), nats_port=args.nats_port,
                            gateway_port=args.port)
    try:
        asyncio.run(supervisor.run())
    except KeyboardInterrupt:
        pass
    except AlreadyRunning as refusal:
        print(refusal, file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _ops_nats(args) -> tuple[str, str]:
    """The NATS URL and the operators' password: QUDAO_OPS_NATS_PASSWORD (a Secret in a
    cluster), else the embedded suite's (var/keys/nats-passwords.json)."""
    import json

    url = args.nats_url or os.environ.get("QUDAO_NATS_URL", "nats://127.0.0.1:4322")
    password = os.environ.get("QUDAO_OPS_NATS_PASSWORD", "")
    kept = Path(args.var_dir) / "keys" / "nats-passwords.json"
    if not password and kept.exists():
        password = json.loads(kept.read_text()).get("ops", "")
    return url, password


def cmd_dlq(args) -> None:
    from shared.bus.deadletter import list_dead_letters, replay_dead_letters

    url, password = _ops_nats(args)
    if args.action == "list":
        asyncio.run(list_dead_letters(url, args.consumer, password))
    else:
        asyncio.run(replay_dead_letters(url, args.consumer, password))


def cmd_consumer(args) -> None:
    url, password = _ops_nats(args)
    asyncio.run(rewind_consumer(url, password, args.durable))


async def rewind_consumer(url: str, password: str, durable: str) -> None:
    """Rebuild what a consumer built (a projection): forget the events it handled (its
    inbox rows, in its service's database) and delete its durable consumer; the running
    service re-creates it, from the start of the producer's stream, and handles every
    event again. Only for consumers whose effect is a copy rebuilt by replay (a handler
    that books money must never be rewound: its events would count twice)."""
    from sqlalchemy import text

    from shared.bus.connection import connect
    from shared.bus.envelope import stream_name
    from shared.bus.permissions import OPS
    from shared.db import Database

    service = durable.split("-", 1)[0]
    if service not in SERVICES:
        raise SystemExit(f"{durable}: consumers are named <service>-<handler>")
    nc = await connect(url, "qudao-ops", user=OPS, password=password)
    db = Database(_database_url(service))
    try:
        js = nc.jetstream()
        streams = [stream_name(producer) for producer in SERVICES]
        found = []
        for stream in streams:
            try:
                await js.consumer_info(stream, durable)
                found.append(stream)
            except Exception:
                continue
        if not found:
            raise SystemExit(f"no consumer {durable} on {', '.join(streams)}")
        async with db.write() as session:
            forgotten = (await session.execute(
                text("DELETE FROM inbox WHERE consumer = :durable"),
                {"durable": durable})).rowcount
        for stream in found:
            await js.delete_consumer(stream, durable)
        print(f"{durable}: forgot {forgotten} handled event(s) and deleted the consumer on "
              f"{', '.join(found)}; {service} replays the stream from its first event")
    finally:
        await nc.close()
        await db.dispose()


def cmd_erp(args) -> None:
    erp_client.main(args)


def cmd_flow(args) -> None:
    from suite import flowops

    flowops.main(args)


def cmd_demo(args) -> None:
    from suite import demo

    demo.main(args)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qudao", description="Qudao dealer-channel suite")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run NATS, the six services and the gateway")
    up.add_argument("--var-dir", default="var")
    up.add_argument("--port", type=int, default=int(os.environ.get("QUDAO_GATEWAY_PORT", 8080)))
    up.add_argument("--nats-port", type=int, default=4322)
    up.set_defaults(func=cmd_up)

    migrate = commands.add_parser("migrate", help="upgrade a service's database")
    migrate.add_argument("service", choices=[*SERVICES, "all"])
    migrate.set_defaults(func=cmd_migrate)

    make = commands.add_parser("makemigration", help="autogenerate a migration")
    make.add_argument("service", choices=SERVICES)
    make.add_argument("message")
    make.add_argument("--rev-id", default=None)
    make.set_defaults(func=cmd_makemigration)

    dlq = commands.add_parser("dlq", help="dead-lettered events")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--consumer", default="", help="only this durable consumer")
    dlq.add_argument("--nats-url", default="")
    dlq.add_argument("--var-dir", default="var", help="the embedded suite's (qudao up)")
    dlq.set_defaults(func=cmd_dlq)

    consumer = commands.add_parser("consumer", help="durable consumers (projections)")
    consumer.add_argument("action", choices=["rewind"])
    consumer.add_argument("durable", help="<service>-<handler>, e.g. flow-shipments")
    consumer.add_argument("--nats-url", default="")
    consumer.add_argument("--var-dir", default="var", help="the embedded suite's (qudao up)")
    consumer.set_defaults(func=cmd_consumer)

    erp = commands.add_parser("erp", help="act as the ERP against the order service")
    erp_commands = erp.add_subparsers(dest="erp_command", required=True)
    erp_push = erp_commands.add_parser(
        "push", help="push a JSON file of products, shipments, invoices and payments")
    erp_client.add_arguments(erp_push)
    erp_push.set_defaults(func=cmd_erp)

    flow = commands.add_parser("flow", help="operate the flow service")
    flow_commands = flow.add_subparsers(dest="flow_command", required=True)
    flow_rebuild = flow_commands.add_parser(
        "rebuild", help="rebuild a projection (shipments, products, customers, "
                        "authorizations, dealers) by replaying its producer's events")
    from suite import flowops

    flowops.add_arguments(flow_rebuild)
    flow_rebuild.set_defaults(func=cmd_flow)

    demo_command = commands.add_parser(
        "demo", help="fill a running suite with a demo world through the gateway and ERP")
    from suite import demo

    demo.add_arguments(demo_command)
    demo_command.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
