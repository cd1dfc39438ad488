"""An open-loop HTTP load generator run as its own process (``python -m
tests.bench.openloop`` with a JSON job on stdin, a JSON summary on stdout): one POST
every 1/rate seconds whatever the earlier ones are doing, so queueing shows in the
latencies (a closed loop would slow down with the server and hide it). wrk has no fixed
rate; at the rates this is used for (half of a path's peak) httpx's CPU per request is
far from this process's limit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx


async def _run(job: dict) -> dict:
    rate, seconds, bodies = job["rate"], job["seconds"], job["bodies"]
    latencies: list[float] = []
    errors = 0
    count = int(rate * seconds)
    async with httpx.AsyncClient(base_url=job["base_url"], timeout=30, headers={
            "Authorization": f"Bearer {job['token']}"},
            limits=httpx.Limits(max_connections=256)) as client:

        async def send(index: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.post(job["path"], json=bodies[index % len(bodies)])
                if response.status_code >= 300:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

        start = time.perf_counter()
        tasks = []
        for index in range(count):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(index)))
        await asyncio.gather(*tasks)
    return {"latencies_ms": latencies, "errors": errors}


async def open_loop(base_url: str, path: str, bodies: list[dict], token: str, rate: float,
                    seconds: float) -> dict:
    """Run the generator in a child process; its latencies (ms) and error count."""
    job = json.dumps({"base_url": base_url, "path": path, "bodies": bodies, "token": token,
                      "rate": rate, "seconds": seconds}).encode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.openloop", stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate(job)
    if process.returncode != 0:
        raise RuntimeError(f"open-loop generator failed: {err.decode(errors='replace')}")
    return json.loads(out)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run(json.load(sys.stdin)))))
