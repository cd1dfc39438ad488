"""Isolation specs for import jobs: a job belongs to the user who started it; anyone
else, in the same dealer or above it, is answered as if there were no such job."""

from __future__ import annotations

from tests.isolation.spec import Call, Endpoint
from tests.isolation.world import IsolationWorld


async def _job_of(world: IsolationWorld, tenant: str) -> Call:
    """A job started by the tenant's staff (cached; cancelling an ended job changes
    nothing, so the same job serves every attempt)."""
    key = f"import-job:{tenant}"
    if key not in world.cache:
        async with world.client(world.staff_of[tenant]) as staff:
            response = await staff.post(
                "/api/v1/products/import", content=b"code,name\nX,x\n",
                headers={"content-type": "text/csv", "prefer": "respond-async"},
                params={"dry_run": "true"})
            assert response.status_code == 202, response.text
            world.cache[key] = response.json()["id"]
    return Call(path_params={"job_id": world.cache[key]})


# The owner of each tenant's job: its staff principal (world.staff_of, fixed in world.py).
_STAFF = {"east": "east_admin", "south": "south_sales", "platform": "platform_sales",
          "sub": "sub_sales"}


def _owner(principal: str, tenant: str) -> bool:
    return _STAFF[tenant] == principal

SPECS = [
    Endpoint("GET", "/api/v1/import-jobs/{job_id}", "object", _job_of,
             permitted=_owner, denied=(404,),
             note="only the user who started a job sees it"),
    Endpoint("DELETE", "/api/v1/import-jobs/{job_id}", "object", _job_of,
             permitted=_owner, denied=(404,),
             note="only the user who started a job may cancel it"),
]
