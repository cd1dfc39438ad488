"""The gateway as an outsider meets it: bodies are refused before they are read (a 400 MB
chunked body sent anonymously costs the gateway nothing), every response carries the
security headers, tokens are never cached, and CORS is off unless configured."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.app import MAX_BODY_BYTES
from tests.harness import ADMIN_PASSWORD

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHUNK = b"x" * (1024 * 1024)


def rss_bytes() -> int:
    """This process's resident memory (the tests' gateway runs in it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def send_chunked(port: int, path: str, total_bytes: int, token: str = "") -> tuple[int, int]:
    """POST ``total_bytes`` as a chunked body, as fast as the gateway takes it, until it
    answers; the status and how many bytes it took before answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    writer.write((head + "\r\n").encode())
    answer = asyncio.ensure_future(reader.readline())
    sent = 0
    try:
        while sent < total_bytes and not answer.done():
            writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            sent += len(CHUNK)
            await asyncio.wait([answer, asyncio.ensure_future(writer.drain())],
                               return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            writer.write(b"0\r\n\r\n")
        status_line = await asyncio.wait_for(answer, 30)
    except (ConnectionError, BrokenPipeError):
        status_line = await asyncio.wait_for(answer, 30)
    finally:
        writer.close()
    return int(status_line.split()[1]), sent


async def test_anonymous_400_mb_chunked_body_is_refused_at_once(shared_suite):
    before = rss_bytes()
    started = time.monotonic()
    status, sent = await send_chunked(shared_suite.gateway_port, "/api/v1/orders",
                                      400 * 1024 * 1024)
    elapsed = time.monotonic() - started
    assert status == 401
    # What the socket buffers took before the answer, not the body (and not the time
    # to send 400 MB; the bound is loose for a shared machine).
    assert sent < 64 * len(CHUNK), f"{sent} bytes taken"
    assert elapsed < 30
    assert rss_bytes() - before < 50 * 1024 * 1024


async def test_anonymous_sign_in_body_is_cut_off_small(shared_suite):
    before = rss_bytes()
    status, sent = await send_chunked(shared_suite.gateway_port, "/api/v1/auth/login",
                                      400 * 1024 * 1024)
    assert status == 413
    assert sent < 64 * len(CHUNK)
    assert rss_bytes() - before < 50 * 1024 * 1024


async def test_signed_in_chunked_body_stops_at_the_limit_with_413(shared_suite):
    token = await shared_suite.login("admin", ADMIN_PASSWORD)
    before = rss_bytes()
    status, sent = await send_chunked(shared_suite.gateway_port, "/api/v1/orders",
                                      400 * 1024 * 1024, token)
    assert status == 413
    assert sent < MAX_BODY_BYTES + 64 * len(CHUNK), f"{sent} bytes taken"
    assert rss_bytes() - before < 100 * 1024 * 1024


async def test_chunked_413_is_problem_json_naming_the_limit(shared_suite):
    token = await shared_suite.login("admin", ADMIN_PASSWORD)

    async def body():
        for _ in range(MAX_BODY_BYTES // len(CHUNK) + 2):
            yield CHUNK

    async with shared_suite.client(token) as client:
        response = await client.post("/api/v1/orders", content=body(),
                                     headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(MAX_BODY_BYTES) in response.json()["detail"]


async def test_anonymous_api_call_is_401_before_the_body_and_unknown_paths_stay_404(
        shared_suite):
    async with shared_suite.client() as client:
        refused = await client.post("/api/v1/orders", content=b"{not even json")
        unknown = await client.post("/api/v1/no-such-thing", json={})
    assert refused.status_code == 401
    assert refused.json()["reason"] == "TOKEN_MISSING"
    assert unknown.status_code == 404


@pytest.mark.parametrize("path", ["/", "/api/v1/orders", "/healthz", "/assets/nope.js",
                                  "/docs"])
async def test_every_response_has_security_headers(shared_suite, path):
    async with shared_suite.client() as client:
        response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_portal_csp_allows_only_own_scripts(shared_suite):
    async with shared_suite.client() as client:
        response = await client.get("/")
    csp = dict(part.strip().split(" ", 1)
               for part in response.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'self'"


async def test_token_responses_are_not_stored_and_https_gets_hsts(shared_suite):
    async with shared_suite.client() as client:
        login = await client.post("/api/v1/auth/login",
                                  json={"username": "admin", "password": ADMIN_PASSWORD},
                                  headers={"X-Forwarded-Proto": "https"})
        refreshed = await client.post("/api/v1/auth/refresh",
                                      json={"refresh_token": login.json()["refresh_token"]})
    assert login.status_code == 200 and refreshed.status_code == 200
    assert login.headers["cache-control"] == "no-store"
    assert refreshed.headers["cache-control"] == "no-store"
    # Behind a TLS-terminating proxy (trusted, X-Forwarded-Proto): HSTS.
    assert login.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_is_off_by_default(shared_suite):
    async with shared_suite.client() as client:
        preflight = await client.options("/api/v1/orders", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        simple = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_only_configured_origins(tmp_path):
    from tests.harness import Suite

    suite = await Suite(tmp_path, services=("identity",), options={
        "QUDAO_GATEWAY_CORS_ALLOW_ORIGINS": "https://portal.example.com"}).start()
    try:
        async with suite.client() as client:
            allowed = await client.options("/api/v1/auth/login", headers={
                "Origin": "https://portal.example.com", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"})
            other = await client.options("/api/v1/auth/login", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert allowed.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in other.headers
    finally:
        await suite.stop()


async def test_cors_setting_refuses_what_is_not_an_origin():
    from shared.settings import ConfigError, GatewaySettings

    with pytest.raises(ConfigError, match="QUDAO_GATEWAY_CORS_ALLOW_ORIGINS"):
        GatewaySettings.from_env({"QUDAO_JWT_PUBLIC_KEY_FILE": "/k.pem",
                                  "QUDAO_GATEWAY_CORS_ALLOW_ORIGINS": "https://ok.example,*"})



async def test_a_head_never_finished_is_dropped_and_others_are_served(shared_suite,
                                                                      monkeypatch):
    """Slow-loris: connections trickling their headers are closed after the head-read
    timeout, while a normal request is served meanwhile."""
    from gateway.server import HeadTimeoutProtocol

    monkeypatch.setattr(HeadTimeoutProtocol, "head_read_timeout", 1.0)
    slow = []
    for _ in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", shared_suite.gateway_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append((reader, writer))
    async with shared_suite.client() as client:
        assert (await client.get("/healthz")).status_code == 200
    started = time.monotonic()
    for reader, writer in slow:
        writer.write(b"a")  # one more byte: the timer runs from the start of the head
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the gateway
        except ConnectionResetError:
            pass  # closed by the gateway, our last byte unread
        writer.close()
    assert time.monotonic() - started < 3


async def test_oversized_head_is_refused(shared_suite):
    async with shared_suite.client() as client:
        response = await client.get("/healthz", headers={"X-Big": "a" * 64 * 1024})
    assert response.status_code in (400, 431)
