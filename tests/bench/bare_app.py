"""The baseline of gateway.ping: a bare FastAPI app answering ``{}``, served by uvicorn with
the gateway's own server options (uvloop and httptools when installed), so that the ratio
shows what the gateway's authentication, middleware and gRPC call cost on top."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.post("/api/v1/ping")
async def ping() -> dict:
    return {}
