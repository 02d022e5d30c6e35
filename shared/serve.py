"""Run a service's ASGI app with uvicorn on its configured port."""

from __future__ import annotations

import sys

import uvicorn

from shared.settings import MissingSecret, settings_class

# Longer than clients keep an idle connection (httpx: 5 s): with equal times a client could
# reuse a connection the server was closing that instant, and read nothing (a ReadError seen
# in the replayed day under the four-instant load, from a service and then from a simulator).
KEEP_ALIVE_S = 75


def serve(app_factory, service_name: str, default_port: int) -> None:
    settings = settings_class(service_name)(service_name=service_name)
    settings = settings.model_copy(update={"http_port": settings.http_port or default_port})
    try:
        app = app_factory(settings)
    except MissingSecret as exc:
        print(f"{service_name} refuses to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
