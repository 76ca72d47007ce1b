"""Liveness, readiness, status and Prometheus metrics over HTTP, one small server per worker."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shared.delivery.runtime import DeliveryRuntime
from shared.delivery.worker import Component


def health_app(
    runtime: DeliveryRuntime, components: Mapping[str, Component] | None = None
) -> Starlette:
    parts = dict(components or {})

    async def live(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def ready(_request: Request) -> Response:
        ok = runtime.status.ready and all(part.ready for part in parts.values())
        return PlainTextResponse("ready" if ok else "not ready", status_code=200 if ok else 503)

    async def status(_request: Request) -> Response:
        return JSONResponse(
            {
                "worker": runtime.worker.name,
                "version": runtime.worker.version,
                "started": runtime.status.started,
                "paused_reason": runtime.status.paused_reason,
                "circuit": runtime.circuit.state.value,
                "alarms": runtime.status.alarms[-20:],
                "components": {name: part.describe() for name, part in parts.items()},
            }
        )

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/status", status),
            Route("/metrics", metrics),
        ]
    )


async def serve_health(
    runtime: DeliveryRuntime,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - probes come from outside the pod
    components: Mapping[str, Component] | None = None,
) -> None:
    """Serve until cancelled (bind to all interfaces: Kubernetes probes come from outside)."""
    config = uvicorn.Config(
        health_app(runtime, components),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    try:
        await server.serve()
    except asyncio.CancelledError:
        server.should_exit = True
        raise
