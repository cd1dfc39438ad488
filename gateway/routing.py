"""Route lookup whose cost does not grow with the number of routes.

FastAPI tries every route in turn (through each included router), so a request to a
route declared late paid for ~150 regular-expression matches and FastAPI's per-candidate
bookkeeping: a quarter of the gateway's CPU per request. ``PrefixDispatch`` sits where
the app's router dispatches and hands each HTTP request to a small router holding only
the routes that could match its path: those whose static leading segments (up to
``DEPTH``, before any ``{parameter}``) are a prefix of the request's. Inside that router
FastAPI's own matching runs unchanged, on the same route objects in the same order, so
405 versus 404, trailing-slash redirects, path parameters and the portal's fallback
behave as before; OpenAPI generation still reads the app's routes.

Why a smaller list gives the same answer: a route whose path starts with the static
segments S can only match a path whose first segments are S, and a trailing-slash
redirect changes no segment but the empty last one, which the key ignores."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

# /api/v1/<resource>: deep enough to separate every resource of the API.
DEPTH = 3

Key = tuple[str, ...]


def path_key(path: str) -> Key:
    """A request path's first ``DEPTH`` segments, slashes at either end ignored."""
    return tuple(path.strip("/").split("/", DEPTH)[:DEPTH])


def route_key(route: BaseRoute) -> Key:
    """The static leading segments of a route's path; none for a route without one (it
    is then a candidate for every path)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return ()
    key: list[str] = []
    for segment in path.strip("/").split("/")[:DEPTH]:
        if "{" in segment:
            break
        key.append(segment)
    return tuple(key)


def flat_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """The app's routes with each included router replaced by its own routes, in
    FastAPI's matching order."""
    flat: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter) and not isinstance(route, Route):
            context = route.include_context  # type: ignore[attr-defined]
            # The routes keep the prefix and dependencies of their own router; an
            # include adding its own would be lost here, so none may.
            if context.prefix or context.dependencies:
                raise ValueError("PrefixDispatch needs routers included without prefix "
                                 "or dependencies")
            flat.extend(flat_routes(included.routes))
        else:
            flat.append(route)
    return flat


class PrefixDispatch:
    """The app router's dispatch for HTTP requests, by path prefix (see the module's
    docstring); lifespan and websocket scopes go to the app's router as before."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.fallback: ASGIApp = router.middleware_stack
        self._index()

    def _index(self) -> None:
        router = self.router
        self.indexed_routes = len(router.routes)
        routes = flat_routes(router.routes)
        keys = [route_key(route) for route in routes]
        prefixes = {key[:length] for key in keys for length in range(len(key) + 1)}
        self.routers: dict[Key, APIRouter] = {}
        for prefix in prefixes:
            candidates = [route for route, key in zip(routes, keys, strict=True)
                          if prefix[:len(key)] == key]
            self.routers[prefix] = APIRouter(routes=candidates,
                                             redirect_slashes=router.redirect_slashes,
                                             default=self._not_matched)

    async def _not_matched(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Looked up now: the app's default (the portal's fallback) may be set later.
        await self.router.default(scope, receive, send)

    def router_for(self, path: str) -> APIRouter:
        key = path_key(path)
        while key not in self.routers:
            key = key[:-1]
        return self.routers[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        if len(self.router.routes) != self.indexed_routes:
            self._index()  # a route (or router) added since
        scope.setdefault("router", self.router)
        await self.router_for(get_route_path(scope)).app(scope, receive, send)


def index_routes(app: FastAPI) -> None:
    """Dispatch ``app``'s HTTP requests by path prefix. Routes and routers the app adds
    later are indexed at the next request; routes added to a router already included
    are not: add them before."""
    app.router.middleware_stack = PrefixDispatch(app.router)
