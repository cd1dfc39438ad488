"""``qudao flow rebuild PROJECTION``: drop one of the flow service's projections and
rebuild it by replaying its producer's stream (RebuildProjection). Signs in as an HQ
admin (``--token``, or ``--username`` with ``--password`` / ``--password-file``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import grpc
from qudao.flow.v1 import flow_pb2, flow_pb2_grpc

from shared.settings import DEFAULT_GRPC_PORTS
from suite.erp import login

PROJECTIONS = {"shipments": flow_pb2.PROJECTION_SHIPMENTS,
               "products": flow_pb2.PROJECTION_PRODUCTS,
               "customers": flow_pb2.PROJECTION_CUSTOMERS,
               "authorizations": flow_pb2.PROJECTION_AUTHORIZATIONS,
               "dealers": flow_pb2.PROJECTION_DEALERS}


def add_arguments(parser) -> None:
    parser.add_argument("projection", choices=sorted(PROJECTIONS))
    parser.add_argument("--addr", default=f"127.0.0.1:{DEFAULT_GRPC_PORTS['flow']}",
                        help="flow service gRPC address")
    parser.add_argument("--identity-addr", default=os.environ.get(
        "QUDAO_IDENTITY_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS['identity']}"))
    parser.add_argument("--token", default="", help="an HQ admin's access token")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="")
    parser.add_argument("--password-file", type=Path, default=Path("var/admin-password.txt"))


async def rebuild(addr: str, token: str, projection: str) -> flow_pb2.RebuildProjectionResponse:
    async with grpc.aio.insecure_channel(addr) as channel:
        return await flow_pb2_grpc.FlowServiceStub(channel).RebuildProjection(
            flow_pb2.RebuildProjectionRequest(projection=PROJECTIONS[projection]),
            metadata=(("authorization", f"Bearer {token}"),), timeout=3600)


def main(args) -> None:
    token = args.token
    if not token:
        password = args.password
        if not password and args.password_file.exists():
            password = args.password_file.read_text().strip()
        if not password:
            print("qudao flow rebuild: give --token, or --password / --password-file",
                  file=sys.stderr)
            sys.exit(2)
        token = asyncio.run(login(args.identity_addr, args.username, password))
    try:
        result = asyncio.run(rebuild(args.addr, token, args.projection))
    except grpc.aio.AioRpcError as exc:
        print(f"qudao flow rebuild: {exc.code().name}: {exc.details()}", file=sys.stderr)
        sys.exit(1)
    seconds = (result.finished_at.ToDatetime() - result.started_at.ToDatetime()).total_seconds()
    print(f"{args.projection}: {result.events_replayed} events replayed, "
          f"{result.rows_written} rows, {seconds:.1f}s")
