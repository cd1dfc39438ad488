"""The gateway's route lookup by path prefix (gateway/routing.py) answers every request as
FastAPI's own linear matching does: the same route, 405 for a known path with another
method, 404 for an unknown one, the same trailing-slash redirects, the portal for other
GETs. Both run on the same app here, with no service behind it (a route reached answers
503), so only routing decides each answer."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Match

from gateway.app import create_app
from gateway.clients import Clients
from gateway.routing import DEPTH, PrefixDispatch, flat_routes, path_key
from shared.auth import TokenIssuer, generate_keypair
from shared.context import Principal
from shared.settings import SERVICES, GatewaySettings

HQ = Principal(subject="user:u1", user_id="u1", username="hq", roles=frozenset({"hq_admin"}))


@pytest.fixture
def app(tmp_path):
    private_key, public_key = generate_keypair(tmp_path / "keys")
    app = create_app(GatewaySettings.from_env({"QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key)}))
    app.state.token = TokenIssuer(private_key.read_bytes()).issue(HQ)[0]
    return app


def paths(app) -> set[str]:
    """Every documented path (parameters filled in) and paths no route has, with and
    without a trailing slash."""
    documented = {re.sub(r"\{[^}]+\}", "x1", path) for path in app.openapi()["paths"]}
    found = documented | {"/", "/api", "/api/v1", "/api/v1/nothing", "/api/v2/orders",
                          "/api/v1/orders/x1/lines/2/nothing", "//api/v1/orders", "/docs",
                          "/redoc", "/openapi.json", "/assets/none.js", "/dealers/x1"}
    return found | {path.rstrip("/") + "/" for path in found}


async def answers(app, requests: list[tuple[str, str]]) -> dict:
    # Nothing listens there: a request that reaches its route gets 503 at once.
    app.state.clients = Clients({service: "127.0.0.1:1" for service in SERVICES})
    results = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway",
                                 headers={"Authorization": f"Bearer {app.state.token}"}) as client:
        for method, path in requests:
            body = {} if method in ("POST", "PUT", "PATCH") else None
            response = await client.request(method, path, json=body)
            results[method, path] = (response.status_code, response.headers.get("location"),
                                     response.headers.get("allow"),
                                     response.headers.get("content-type"))
    await app.state.clients.close()
    return results


def test_every_route_that_could_match_a_path_is_among_its_candidates(app):
    """What makes the answers the same: the routes tried for a path are, in FastAPI's
    order, all those matching it or the path its trailing-slash redirect would name."""
    dispatch = app.router.middleware_stack
    assert isinstance(dispatch, PrefixDispatch)
    routes = flat_routes(app.router.routes)
    for path in paths(app):
        redirect = path.rstrip("/") if path.endswith("/") else path + "/"
        scopes = [{"type": "http", "method": "GET", "path": p, "root_path": ""}
                  for p in (path, redirect)]
        matching = [route for route in routes
                    if any(route.matches(scope)[0] != Match.NONE for scope in scopes)]
        candidates = dispatch.router_for(path).routes
        assert [route for route in candidates if route in matching] == matching, path
        assert [route for route in routes if route in candidates] == candidates, path


async def test_lookup_by_prefix_answers_as_linear_matching_does(app):
    """The same answers end to end: the route reached (503: no service behind it), 405
    for another method, 404, trailing-slash redirects, the docs and the portal."""
    requests = [("POST", "/api/v1/ping"), ("GET", "/api/v1/ping"), ("GET", "/api/v1/ping/"),
                ("GET", "/api/v1/orders"), ("GET", "/api/v1/orders/"),
                ("GET", "/api/v1/orders/o1"), ("PUT", "/api/v1/orders/o1"),
                ("DELETE", "/api/v1/orders/o1/nothing"), ("GET", "/api/v1/nothing"),
                ("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/logout"),
                ("GET", "/healthz"), ("GET", "/healthz/"), ("POST", "/healthz"),
                ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/"),
                ("GET", "/dealers/d1"), ("POST", "/dealers/d1"), ("GET", "/api")]
    indexed = await answers(app, requests)
    app.router.middleware_stack = app.router.middleware_stack.fallback
    linear = await answers(app, requests)
    assert indexed == linear
    assert {status for status, *_ in indexed.values()} >= {200, 307, 404, 405, 503}


def test_a_request_is_matched_against_its_resource_s_routes_only(app):
    dispatch = app.router.middleware_stack
    every_route = len(dispatch.routers[()].routes) + sum(
        len(router.routes) for key, router in dispatch.routers.items() if len(key) == DEPTH)
    ping = dispatch.router_for("/api/v1/ping")
    assert [route.path for route in ping.routes] == ["/api/v1/ping"]
    assert max(len(router.routes) for router in dispatch.routers.values()) < every_route / 5


def test_path_key_ignores_slashes_at_either_end():
    assert path_key("/api/v1/orders/") == path_key("/api/v1/orders") == ("api", "v1", "orders")
    assert path_key("/api/v1/orders/o1/lines") == ("api", "v1", "orders")
    assert path_key("/") == ("",)


async def test_routes_and_fallback_set_after_indexing_are_used(app):
    @app.get("/api/v1/added-later")
    async def added_later() -> dict:
        return {"added": True}

    async def teapot(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app.router.default = teapot
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway",
                                 headers={"Authorization": f"Bearer {app.state.token}"}) as client:
        assert (await client.get("/api/v1/added-later")).json() == {"added": True}
        assert (await client.get("/nothing/here")).status_code == 418
