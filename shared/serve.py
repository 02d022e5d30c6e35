"""Run a service's ASGI app with uvicorn on its configured port."""

from __future__ import annotations

import uvicorn

from shared.settings import Settings


def serve(app_factory, service_name: str, default_port: int) -> None:
    settings = Settings(service_name=service_name)
    settings = settings.model_copy(update={"http_port": settings.http_port or default_port})
    uvicorn.run(app_factory(settings), host=settings.http_host, port=settings.http_port, log_config=None,
                access_log=False, timeout_graceful_shutdown=10)
