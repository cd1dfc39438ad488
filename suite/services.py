"""The suite's services by name: the one place the application package maps a name to
a service's bootstrap module (its settings class, build function and migrations)."""

from __future__ import annotations

from types import ModuleType

from services.engagement import bootstrap as engagement
from services.flow import bootstrap as flow
from services.identity import bootstrap as identity
from services.incentive import bootstrap as incentive
from services.order import bootstrap as order
from services.registration import bootstrap as registration

BOOTSTRAPS: dict[str, ModuleType] = {
    "identity": identity,
    "registration": registration,
    "order": order,
    "flow": flow,
    "incentive": incentive,
    "engagement": engagement,
}


def bootstrap_of(service: str) -> ModuleType:
    return BOOTSTRAPS[service]
