"""Response hardening the gateway adds to every answer (GatewayMiddleware sends them):

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, framing refused
  (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``);
- a Content-Security-Policy the built portal works with: scripts only from the gateway
  itself (Vite emits no inline script); inline styles allowed, since Vue and the charts
  set element styles; fonts also from Vant's icon CDN, which its stylesheet names after
  the embedded copy (the portal loaded it from there before this policy). The API docs
  (/docs, /redoc) load Swagger UI and ReDoc from their CDN with an inline bootstrap
  script, so they get a policy of their own;
- ``Strict-Transport-Security`` when the request came over HTTPS (directly, or through a
  trusted proxy's X-Forwarded-Proto): never over plain HTTP, where it means nothing;
- ``Cache-Control: no-store`` on every API answer that did not choose its own caching:
  they carry tokens (sign-in, refresh) and tenant data no shared cache may keep.

CORS is off by default; ``QUDAO_GATEWAY_CORS_ALLOW_ORIGINS`` names the origins allowed
(see ``cors_middleware``)."""

from __future__ import annotations

import functools

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

VANT_ICON_CDN = "at.alicdn.com"  # scheme-relative in the stylesheet: the page's scheme
PORTAL_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              f"img-src 'self' data: blob:; font-src 'self' data: {VANT_ICON_CDN}; "
              "connect-src 'self'; "
              "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = (f"default-src 'self'; script-src 'self' 'unsafe-inline' {DOCS_CDN}; "
            f"style-src 'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com; "
            "font-src 'self' data: https://fonts.gstatic.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            f"worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")

_COMMON = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer"))
_PORTAL = (*_COMMON, (b"content-security-policy", PORTAL_CSP.encode()))
_DOCS = (*_COMMON, (b"content-security-policy", DOCS_CSP.encode()))


def harden(headers: list[tuple[bytes, bytes]], *, path: str, https: bool,
           also: tuple[bytes, bytes] | None = None) -> None:
    """Add the security headers (and ``also``) to a response's headers (in place),
    keeping any the route set itself."""
    present = {name.lower() for name, _ in headers}
    wanted = _wanted(path.startswith(DOCS_PATHS), https, path.startswith("/api/"))
    if also is not None and also[0] not in present:
        headers.append(also)
    headers.extend(header for header in wanted if header[0] not in present)


@functools.cache
def _wanted(docs: bool, https: bool, api: bool) -> tuple[tuple[bytes, bytes], ...]:
    return (*(_DOCS if docs else _PORTAL), *((HSTS,) if https else ()),
            *((NO_STORE,) if api else ()))


def cors_middleware(allow_origins: tuple[str, ...]) -> list[Middleware]:
    """Browsers on these origins may call the API with a bearer token (no cookies: the
    API uses none, so credentials stay off). None configured: no CORS headers at all, a
    cross-origin page cannot read any answer."""
    if not allow_origins:
        return []
    return [Middleware(CORSMiddleware, allow_origins=list(allow_origins),
                       allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                       allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                       expose_headers=["X-Request-ID", "Retry-After", "Location"],
                       allow_credentials=False, max_age=600)]
