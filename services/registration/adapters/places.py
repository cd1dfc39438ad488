"""Placing an address in GB/T 2260 with ``cpca``. An address cpca cannot place, or places
only by an ambiguous district name (朝阳区 is in Beijing and in Changchun), is not
guessed: the caller must name the division."""

from __future__ import annotations

import importlib.resources
import sys
import threading
import types
from collections import Counter

from services.registration.domain.customers import Placement

_lock = threading.Lock()
_cpca = None
_ambiguous: frozenset[str] = frozenset()


def _load():
    global _cpca, _ambiguous
    with _lock:
        if _cpca is not None:
            return _cpca
        # cpca 0.5 reads its data with pkg_resources, deprecated and gone from new
        # setuptools; lend it a stand-in for the import only.
        shim = types.ModuleType("pkg_resources")
        shim.resource_stream = (  # type: ignore[attr-defined]
            lambda package, name: importlib.resources.files(package).joinpath(name).open("rb"))
        previous = sys.modules.get("pkg_resources")
        sys.modules["pkg_resources"] = shim
        try:
            import cpca
        finally:
            if previous is not None:
                sys.modules["pkg_resources"] = previous
            else:
                sys.modules.pop("pkg_resources", None)
        names = Counter(info.name for info in cpca.ad_2_addr_dict.values()
                        if info.rank == 2)
        _ambiguous = frozenset(name for name, count in names.items() if count > 1)
        _cpca = cpca
        return cpca


_CODES: frozenset[str] | None = None


def _codes() -> frozenset[str]:
    global _CODES
    if _CODES is None:
        cpca = _load()
        _CODES = frozenset(info.adcode for info in cpca.ad_2_addr_dict.values())
    return _CODES


def is_known(code: str) -> bool:
    return code in _codes()


def name_of(code: str) -> str:
    cpca = _load()
    for key in (code, code + "000000"):
        info = cpca.ad_2_addr_dict.get(key)
        if info is not None:
            return info.name
    return ""


def place(address: str) -> Placement:
    """The most precise division the address names, or why it cannot be placed."""
    address = (address or "").strip()
    if not address:
        return Placement("", "is empty")
    cpca = _load()
    found = cpca._get_one_addr(address, True, {})
    code = found.get("adcode") or ""
    if not code:
        return Placement("", f"cannot place {address!r} in any province, city or district")
    county = found.get("区")
    if (county and county in _ambiguous and found.get("省_pos", -1) == -1
            and found.get("市_pos", -1) == -1):
        return Placement("", f"the district {county} in {address!r} exists in several cities")
    return Placement(code[:6])
