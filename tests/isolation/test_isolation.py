"""Walks every endpoint spec (from every ``specs_*.py``) for every principal: other
tenants' objects answer 404 and lists never include them."""

from __future__ import annotations

import pytest

from tests.isolation.collect import spec_modules
from tests.isolation.spec import Endpoint, check
from tests.isolation.world import VISIBLE, build_isolation_world

MODULES = list(spec_modules())


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__.rsplit(".", 1)[1] for m in MODULES])
async def test_every_principal_sees_exactly_its_tenants(suite, module):
    world = await build_isolation_world(suite)
    failures = []
    for endpoint in module.SPECS:
        failures += await check(world, endpoint)
    assert not failures, "\n".join(failures)
    if module.__name__.endswith("specs_identity"):
        # The runner itself catches a wrong answer: pretend every dealer were visible.
        leaky = Endpoint("GET", "/api/v1/org-units/{org_unit_id}", "object",
                         module.SPECS[1].setup, ok=(404,))
        assert len(await check(world, leaky)) == sum(len(v) for v in VISIBLE.values())


@pytest.mark.postgres
async def test_identity_isolation_on_postgres(tmp_path):
    """The identity specs once more with every service on PostgreSQL."""
    from tests.conftest import require_postgres
    from tests.harness import Suite
    from tests.isolation import specs_identity

    require_postgres()
    suite = await Suite(tmp_path, backend="postgres").start()
    try:
        world = await build_isolation_world(suite)
        failures = []
        for endpoint in specs_identity.SPECS:
            failures += await check(world, endpoint)
        assert not failures, "\n".join(failures)
    finally:
        await suite.stop()
