"""Run the gateway: ``python -m gateway``."""

from __future__ import annotations

import gc

import uvicorn
from prometheus_client import start_http_server

from gateway.app import create_app
from gateway.server import uvicorn_options
from shared import tracing
from shared.logging import configure_logging
from shared.settings import ConfigError, GatewaySettings


def main() -> None:
    try:
        settings = GatewaySettings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"qudao-gateway: {exc}") from exc
    configure_logging("gateway", settings.log_level, settings.log_format)
    tracing.configure("gateway", settings.tracing)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    app = create_app(settings)
    # The ~100k objects of start-up (modules, the app, its models) live as long as the
    # process: frozen, the collector stops walking them on every full collection (a
    # tenth of the CPU per request under load went to those walks).
    gc.freeze()
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_level="warning", access_log=False, log_config=None, **uvicorn_options())


main()
