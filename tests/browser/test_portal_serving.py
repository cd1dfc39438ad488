"""How the gateway serves the portal, without a browser: index.html for the app's own
paths (never cached), hashed assets cached for a year, problem+json for unknown API
paths whatever the method, and a clear 503 while the portal is not built."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway import portal
from gateway.app import create_app
from shared.auth import generate_keypair
from shared.settings import GatewaySettings


@pytest.fixture
def dist(tmp_path):
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=app></div>", encoding="utf-8")
    (root / "assets" / "index-3f9a1c.js").write_text("console.log(1)", encoding="utf-8")
    (root / "favicon.svg").write_text("<svg/>", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not for the web", encoding="utf-8")
    return root


def client_for(tmp_path, dist) -> httpx.AsyncClient:
    _, public_key = generate_keypair(tmp_path / "keys")
    app = create_app(GatewaySettings.from_env({"QUDAO_JWT_PUBLIC_KEY_FILE": str(public_key)}))
    # Mounted again on a test dist: it answers first and hands the rest down the chain.
    portal.mount(app, dist)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal")


async def test_app_paths_get_index_and_assets_are_immutable(tmp_path, dist):
    async with client_for(tmp_path, dist) as client:
        for path in ("/", "/m/home", "/console/approvals/orders", "/login?next=/m/orders"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["cache-control"] == "no-cache"
            assert "id=app" in response.text
        asset = await client.get("/assets/index-3f9a1c.js")
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (await client.get("/favicon.svg")).headers["cache-control"] == "public, max-age=3600"
        missing = await client.get("/assets/index-000000.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        # Nothing outside dist/ is reachable.
        escaped = await client.get("/..%2Fsecret.txt")
        assert "not for the web" not in escaped.text


async def test_unknown_api_paths_stay_problems(tmp_path, dist):
    async with client_for(tmp_path, dist) as client:
        for method in ("GET", "POST", "DELETE"):
            response = await client.request(method, "/api/v1/no/such/route")
            assert response.status_code == 404, method
            assert response.headers["content-type"] == "application/problem+json"
        assert (await client.get("/openapi.json")).json()["info"]["title"] == "Qudao API"
        assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_a_portal_not_built_says_so(tmp_path):
    app = FastAPI()
    portal.mount(app, tmp_path / "nothing-here")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://portal") as client:
        response = await client.get("/m/home")
    assert response.status_code == 503
    assert response.json()["reason"] == "PORTAL_NOT_BUILT"
