"""The HTTP load generator: Debian's `wrk`, in its own process, so that what a benchmark
reports is the server's cost and not its client's (an httpx client in the benchmark
process costs ~2 ms of CPU per request and saturates near 300 requests/s).

A run's request bodies come from a list the Lua script cycles through; its summary comes
back as one JSON line printed by the script's ``done`` hook. Server CPU is read from
/proc for the processes named by the caller, before and after the run."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = r"""
local bodies = {}
local index = 0
local path = %(path)s
local headers = %(headers)s
%(bodies)s

request = function()
  index = index %% #bodies + 1
  return wrk.format("POST", path, headers, bodies[index])
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "status_errors": %%d, "timeouts": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "p999_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    server_cpu_ms_per_request: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def summary(self) -> dict:
        return {"requests_per_second": round(self.rate, 1), "requests": self.requests,
                "errors": self.errors, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "p999_ms": self.p999_ms,
                "server_cpu_ms_per_request": self.server_cpu_ms_per_request}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `apt-get install wrk` (make bench does it)")
    return found


def _lua_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)  # a JSON string literal is a valid Lua one


def write_script(directory: Path, path: str, bodies: list[dict], token: str) -> Path:
    headers = ("{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in {
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"}.items()) + "}")
    lines = "\n".join(f"bodies[{n}] = {_lua_string(json.dumps(b, ensure_ascii=True))}"
                      for n, b in enumerate(bodies, start=1))
    script = directory / f"wrk-{abs(hash((path, len(bodies))))}.lua"
    script.write_text(_SCRIPT % {"path": _lua_string(path), "headers": headers,
                                 "bodies": lines})
    return script


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (clock ticks → seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def post_load(base_url: str, path: str, bodies: list[dict], token: str, *,
                    connections: int, seconds: float, workdir: Path,
                    measured: dict[str, int] | None = None) -> LoadResult:
    """``connections`` keep-alive connections POSTing ``bodies`` in turn for ``seconds``
    (closed loop: each connection sends its next request when the last is answered)."""
    script = write_script(workdir, path, bodies, token)
    measured = measured or {}
    before = {name: cpu_seconds(pid) for name, pid in measured.items()}
    process = await asyncio.create_subprocess_exec(
        wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
        "-s", str(script), base_url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {err.decode(errors='replace')}")
    after = {name: cpu_seconds(pid) for name, pid in measured.items()}
    line = next(text for text in out.decode().splitlines() if text.startswith("{"))
    report = json.loads(line)
    requests = max(1, report["requests"])
    errors = sum(report[k] for k in ("connect_errors", "read_errors", "write_errors",
                                     "status_errors", "timeouts"))
    return LoadResult(
        requests=report["requests"], seconds=report["duration_us"] / 1e6, errors=errors,
        p50_ms=report["p50_us"] / 1000, p99_ms=report["p99_us"] / 1000,
        p999_ms=report["p999_us"] / 1000,
        server_cpu_ms_per_request={name: round((after[name] - before[name]) * 1000 / requests,
                                               3) for name in measured})
