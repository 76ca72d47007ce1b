"""The NVR sandbox's admin routes (no token): faults, tokens, vaccine list, records, reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from services.sandboxes.faults import Faults, FaultsChange
from services.sandboxes.nvr.catalog import Vaccine
from services.sandboxes.nvr.state import NvrState


def add_routes(app: FastAPI, state: NvrState) -> None:
    @app.get("/admin/faults", tags=["admin"], response_model=Faults)
    async def get_faults() -> Faults:
        return state.faults.faults

    @app.put("/admin/faults", tags=["admin"], response_model=Faults)
    @app.post("/admin/faults", tags=["admin"], response_model=Faults, include_in_schema=False)
    async def set_faults(change: FaultsChange) -> Faults:
        """Change the faults given; the others keep their value (null switches one off)."""
        return state.faults.change(change)

    @app.post("/admin/tokens/revoke", tags=["admin"])
    async def revoke_tokens() -> dict[str, int]:
        """Revoke every token issued so far (clients must fetch a new one)."""
        return {"revoked": state.tokens.revoke()}

    @app.get("/admin/vaccines", tags=["admin"], response_model=list[Vaccine])
    async def get_vaccines() -> JSONResponse:
        return JSONResponse(state.vaccines.as_json())

    @app.put("/admin/vaccines", tags=["admin"], response_model=list[Vaccine])
    async def set_vaccines(vaccines: list[Vaccine]) -> JSONResponse:
        """Replace the vaccine list (until the next reset)."""
        state.vaccines.replace(vaccines)
        return JSONResponse(state.vaccines.as_json())

    @app.get("/admin/records", tags=["admin"])
    async def records(
        resources: Annotated[
            bool, Query(description="Include each record's Immunization as last sent.")
        ] = False,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int | None, Query(ge=0)] = None,
    ) -> JSONResponse:
        """What the register holds: counts, and per record its id, version and identifier."""
        held = state.store.records()
        live = sum(1 for record in held if not record.deleted)
        page = held[offset:] if limit is None else held[offset : offset + limit]
        listed: list[dict[str, Any]] = []
        for record in page:
            summary = record.summary()
            if resources:
                summary["resource"] = record.resource
            listed.append(summary)
        return JSONResponse(
            {"total": len(held), "live": live, "deleted": len(held) - live, "records": listed}
        )

    @app.post("/admin/reset", tags=["admin"], status_code=204)
    async def reset() -> Response:
        """No records, no tokens, no faults, the vaccine list as configured."""
        state.reset()
        return Response(status_code=204)
