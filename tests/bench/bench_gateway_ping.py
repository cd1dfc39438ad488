"""gateway.ping: what the gateway costs per request. ``POST /api/v1/ping`` authenticates the
bearer token, runs the gateway's middleware (request id, metrics, the access log line) and
makes one no-op gRPC call to the order service. Baseline, same run, same generator (wrk
in its own process) and concurrency: a bare FastAPI app on the same uvicorn answering
``{}``. The two take turns, because the machine is shared and its load drifts."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx

from suite.natsserver import free_port
from tests.bench.common import ProcessSuite, Result, seed_dealer_with_catalog
from tests.bench.wrk import LoadResult, post_load

NAME = "gateway.ping"


async def start_bare_app(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (workdir / "bare_app.log").open("ab")
    process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
        [sys.executable, "-m", "uvicorn", "tests.bench.bare_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        stdout=log, stderr=log, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.post(f"{url}/api/v1/ping")).status_code == 200:
                    return process, url
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the bare app did not start; see {workdir}/bare_app.log")
            await asyncio.sleep(0.2)


def merge(runs: list[LoadResult]) -> dict:
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    cpu = {}
    for name in runs[0].server_cpu_ms_per_request:
        cpu[name] = round(sum(r.server_cpu_ms_per_request[name] * r.requests for r in runs)
                          / max(1, requests), 3)
    return {"requests_per_second": round(requests / seconds, 1), "requests": requests,
            "errors": sum(r.errors for r in runs),
            "p50_ms": round(sorted(r.p50_ms for r in runs)[len(runs) // 2], 3),
            "p99_ms": round(max(r.p99_ms for r in runs), 3),
            "server_cpu_ms_per_request": cpu}


async def run(workdir: Path, quick: bool) -> Result:
    connections, seconds, rounds = (16, 3.0, 2) if quick else (16, 10.0, 3)
    suite = await ProcessSuite(workdir, ("identity", "order"), gateway=True, extra_env={
        "QUDAO_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000"}).start()
    bare, bare_url = await start_bare_app(workdir)
    try:
        seed = await seed_dealer_with_catalog(suite)
        token = seed["dealer_token"]
        gateway_pids = {"gateway": suite.processes["gateway"].pid,
                        "order": suite.processes["order"].pid}
        ours_runs: list[LoadResult] = []
        bare_runs: list[LoadResult] = []
        for warmup in (True,) + (False,) * rounds:
            ours = await post_load(suite.base_url, "/api/v1/ping", [{}], token,
                                   connections=connections,
                                   seconds=1.0 if warmup else seconds,
                                   workdir=workdir, measured=gateway_pids)
            base = await post_load(bare_url, "/api/v1/ping", [{}], token,
                                   connections=connections,
                                   seconds=1.0 if warmup else seconds,
                                   workdir=workdir, measured={"bare_app": bare.pid})
            if not warmup:
                ours_runs.append(ours)
                bare_runs.append(base)
    finally:
        bare.terminate()
        await asyncio.to_thread(bare.wait, 10)
        await suite.stop()
    ours_summary, bare_summary = merge(ours_runs), merge(bare_runs)
    ratio = ours_summary["requests_per_second"] / bare_summary["requests_per_second"]
    return Result(
        name=NAME,
        params={"connections": connections, "seconds_per_run": seconds,
                "alternating_rounds": rounds, "generator": "wrk -t1 (own process)",
                "processes": "nats, identity, order, gateway; the bare app alone",
                "server": "uvicorn, uvloop and httptools for both (the gateway's with its "
                          "head limits, gateway/server.py)"},
        value=ours_summary["requests_per_second"], unit="requests/s",
        baseline="bare_fastapi_app", baseline_value=bare_summary["requests_per_second"],
        baseline_unit="requests/s", ratio=round(ratio, 3),
        ratio_meaning="gateway ping requests/s (auth, middleware, one no-op gRPC call) / a "
                      "bare FastAPI app's requests/s on the same uvicorn, same generator and "
                      "connections (higher is better; target at least 0.4)",
        extra={"ours": ours_summary, "baseline": bare_summary},
    )
