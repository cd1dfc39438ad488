"""``qudao demo``: fill a running suite with a believable world (../DESIGN.md §7) through
its public doors, then print a login for each role. See ``world`` for what is planned and
``loader`` for how it is sent."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from shared.settings import DEFAULT_GRPC_PORTS
from suite.demo.loader import DemoError, DemoLoader, Gateway, progress_bar
from suite.demo.world import PASSWORD, REGIONS, Scale, plan


def add_arguments(parser) -> None:
    parser.add_argument("--scale", choices=("small", "medium", "full"), default="full",
                        help="small: a few dozen dealers (seconds); full: ~5,000 dealers, "
                             "50,000 hospitals (DESIGN.md §7)")
    parser.add_argument("--small", dest="scale", action="store_const", const="small",
                        help="the same as --scale small")
    parser.add_argument("--gateway", default=os.environ.get(
        "QUDAO_DEMO_GATEWAY", f"http://127.0.0.1:{os.environ.get('QUDAO_GATEWAY_PORT', 8080)}"))
    parser.add_argument("--order-addr", default=os.environ.get(
        "QUDAO_ERP_ORDER_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS['order']}"),
        help="the order service's gRPC address (the ERP's door)")
    parser.add_argument("--admin-password-file", type=Path,
                        default=Path("var/admin-password.txt"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--summary", type=Path, default=None,
                        help="also write the counts and timings as JSON here")


async def run_demo(scale_name: str, gateway_url: str, order_addr: str, admin_password: str,
                   seed: int = 2026, concurrency: int = 8) -> dict:
    world = plan(Scale.named(scale_name), seed=seed)
    gateway = Gateway(gateway_url, concurrency)
    started = time.perf_counter()
    try:
        with progress_bar() as progress:
            loaded = await DemoLoader(world, gateway, order_addr, progress,
                                      concurrency).run(admin_password)
    finally:
        await gateway.close()
    return {"scale": scale_name, "seconds": round(time.perf_counter() - started, 1),
            "seconds_by_step": loaded.seconds, "sent": dict(loaded.sent),
            "world": {"regions": len(REGIONS), "dealers": len(world.dealers),
                      "users": len(world.people), "products": len(world.products),
                      "hospitals": len(world.hospitals),
                      "registrations": len(world.registrations), "orders": len(world.orders),
                      "flow_dealers": len(world.flow_dealers), "leads": len(world.leads),
                      "statement_dealers": len(world.statements)},
            "logins": logins(world)}


def logins(world) -> dict[str, str]:
    # The busiest tier-one dealer of the channel manager's region, so that the first
    # look at a dealer's portal has registrations, tasks and orders in it.
    trades = Counter(plan.dealer for plan in (*world.registrations, *world.orders))
    first = max((n for n, d in enumerate(world.dealers, start=1)
                 if d.tier == "one" and d.region_code == "east"),
                key=lambda n: (trades[world.dealers[n - 1].credit_code], -n))
    platform = next(n for n, d in enumerate(world.dealers, start=1) if d.tier == "platform")
    return {"hq_admin": "admin or demo.hq",
            "finance": "demo.finance", "customer_service": "demo.service",
            "region_manager": "demo.east.rm", "channel_manager": "demo.east.cm",
            "dealer_admin": f"demo.d{first:05d}.admin", "dealer_sales": f"demo.d{first:05d}.sales",
            "platform_dealer_admin": f"demo.d{platform:05d}.admin",
            "service_erp": "demo.erp (gRPC only)", "password": PASSWORD}


def main(args) -> None:
    try:
        password = args.admin_password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SystemExit(f"qudao demo: cannot read the admin password ({exc}); start the "
                         "suite with `make run` first, or pass --admin-password-file") from exc
    try:
        summary = asyncio.run(run_demo(args.scale, args.gateway, args.order_addr, password,
                                       args.seed, args.concurrency))
    except DemoError as exc:
        raise SystemExit(f"qudao demo: {exc}") from exc
    if args.summary:
        args.summary.write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"\nDemo world ready in {summary['seconds']} s: {summary['world']}")
    print(f"sent this run: {summary['sent'] or 'nothing (already there)'}")
    print("Sign in at the portal as:")
    for role, login in summary["logins"].items():
        print(f"  {role:<22} {login}")
    print(f"  (admin's own password is in {args.admin_password_file})")
    sys.stdout.flush()
