"""Every /api/v1 route in the gateway's OpenAPI document is covered by an isolation spec
or exempted with a reason. A new route fails here until its owner adds it to their
``specs_<service>.py`` (SPECS, or EXEMPT with a reason)."""

from __future__ import annotations

from shared.auth import generate_keypair
from shared.settings import GatewaySettings
from tests.isolation.collect import all_exemptions, all_specs

METHODS = {"get", "post", "put", "patch", "delete"}


def api_routes(tmp_path) -> set[tuple[str, str]]:
    from gateway.app import create_app

    _, public_key = generate_keypair(tmp_path / "keys")
    app = create_app(GatewaySettings.from_env({"QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key)}))
    return {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
            if path.startswith("/api/v1/") for method in operations if method in METHODS}


def test_every_api_route_is_covered_or_exempt(tmp_path):
    routes = api_routes(tmp_path)
    covered = {spec.key for spec in all_specs()}
    exempt = all_exemptions()
    missing = sorted(routes - covered - set(exempt))
    assert not missing, (
        "routes with no isolation spec (add them to tests/isolation/specs_<service>.py, "
        "or to its EXEMPT with a reason):\n" + "\n".join(f"  {m} {p}" for m, p in missing))


def test_specs_name_real_routes_once(tmp_path):
    routes = api_routes(tmp_path)
    keys = [spec.key for spec in all_specs()]
    assert len(keys) == len(set(keys)), "a route is specified twice"
    stale = sorted((set(keys) | set(all_exemptions())) - routes)
    assert not stale, f"specs or exemptions for routes that no longer exist: {stale}"
    assert not set(keys) & set(all_exemptions()), "a route is both specified and exempt"
