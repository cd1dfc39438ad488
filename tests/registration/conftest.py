"""Registration tests run the whole suite with a fast scheduler; each test may ask for
other registration options with ``@pytest.mark.registration_options(...)``."""

from __future__ import annotations

import pytest_asyncio

from tests.harness import Suite

BASE_OPTIONS = {"QUDAO_REGISTRATION_OPTION_SCHEDULER_INTERVAL_SECONDS": "0.2",
                "QUDAO_REGISTRATION_OPTION_INDEX_REFRESH_SECONDS": "0.5"}


def registration_options(**options: str) -> dict[str, str]:
    result = dict(BASE_OPTIONS)
    result.update({f"QUDAO_REGISTRATION_OPTION_{k.upper()}": v for k, v in options.items()})
    return result


def pytest_configure(config):
    config.addinivalue_line("markers", "registration_options(**options): registration "
                                       "service options for this test's suite")


@pytest_asyncio.fixture
async def suite(tmp_path, request):
    marker = request.node.get_closest_marker("registration_options")
    options = registration_options(**(marker.kwargs if marker else {}))
    running = await Suite(tmp_path, options=options).start()
    try:
        yield running
    finally:
        await running.stop()
