"""What every simulator shares: a FastAPI app with /health, and a runner."""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi import FastAPI

from shared.serve import KEEP_ALIVE_S


def make_app(title: str) -> FastAPI:
    app = FastAPI(title=title)

    @app.get("/health")
    async def health() -> dict:
        return {"simulator": title, "status": "ok"}

    return app


def run(app: FastAPI, default_port: int) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s sim %(name)s: %(message)s")
    # the SMTP server logs every envelope, recipients included: a stand-in keeps personal data out of logs too
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # a stand-in keeps idle connections as long as the platform's services do (shared/serve.py)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False, timeout_keep_alive=KEEP_ALIVE_S
    )
