"""Finds every ``tests/isolation/specs_*.py`` module and gathers its SPECS and EXEMPT."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from tests.isolation.spec import Endpoint


def spec_modules():
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if info.name.startswith("specs_"):
            yield importlib.import_module(f"tests.isolation.{info.name}")


def all_specs() -> list[Endpoint]:
    return [spec for module in spec_modules() for spec in getattr(module, "SPECS", [])]


def all_exemptions() -> dict[tuple[str, str], str]:
    exempt: dict[tuple[str, str], str] = {}
    for module in spec_modules():
        for (method, route), reason in getattr(module, "EXEMPT", {}).items():
            assert reason.strip(), f"{module.__name__}: exemption {method} {route} needs a reason"
            exempt[(method.upper(), route)] = reason
    return exempt
