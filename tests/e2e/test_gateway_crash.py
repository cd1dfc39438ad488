"""An unexpected exception in a route answers 500 problem+json and keeps the client's
keep-alive connection open (Starlette's own error middleware re-raises to the server,
which then drops the connection)."""

from __future__ import annotations

import asyncio
import http.client

import pytest
import uvicorn
from fastapi import FastAPI

from gateway.middleware import GatewayMiddleware
from gateway.ratelimit import SignInLimit
from tests.harness import free_port


class NoTokens:
    def verify(self, token):  # no request here carries one
        raise AssertionError("unexpected token")


@pytest.mark.asyncio
async def test_a_crash_is_a_500_problem_and_the_connection_stays_open():
    app = FastAPI()
    app.add_middleware(GatewayMiddleware, verifier=NoTokens(), is_revoked=lambda _: False,
                       max_body_bytes=1024, sign_in_limit=SignInLimit(per_minute=100))

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    @app.get("/fine")
    async def fine():
        return {"ok": True}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the test server did not start")
            await asyncio.sleep(0.01)

        def two_requests():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            answers = []
            for path in ("/boom", "/fine"):
                connection.request("GET", path)
                response = connection.getresponse()
                answers.append((response.status, response.getheader("content-type"),
                                response.will_close, response.read()))
            connection.close()
            return answers

        (crash, fine) = await asyncio.to_thread(two_requests)
        assert crash[0] == 500 and crash[1] == "application/problem+json"
        assert not crash[2] and b"a bug" not in crash[3]
        assert fine[0] == 200
    finally:
        server.should_exit = True
        await task
