"""The GVR sandbox's admin routes: faults, the log of accepted operations, reset, kombikas."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.sandboxes.faults import Faults, FaultsChange
from services.sandboxes.gvr.kombika import KombikaPeriod, KombikaState
from services.sandboxes.gvr.state import SandboxState
from shared.identifiers import InvalidIdentifierError, parse_kombika


class LoggedOperationModel(BaseModel):
    op: Literal["create", "correct", "cancel"]
    resource: str = Field(description="besok, inskrivning, utskrivning or tillganglighet.")
    id: str
    kallId: str = Field(description="The kallId of the record as sent.")
    at: str = Field(description="When the sandbox accepted it, ISO 8601 UTC.")


class KombikaModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="inrättning + klinik + avdelning, e.g. 11010046M30.")
    validFrom: date
    validTo: date | None = Field(default=None, description="Last open day; null = still open.")
    hsaId: str | None = Field(default=None, description="The HSA unit that carries it, if any.")

    @classmethod
    def of(cls, period: KombikaPeriod) -> KombikaModel:
        return cls(
            code=period.code,
            validFrom=period.valid_from,
            validTo=period.valid_to,
            hsaId=period.hsa_id,
        )


def add_routes(app: FastAPI, state: SandboxState) -> None:
    @app.post("/admin/faults", tags=["admin"], response_model=Faults)
    async def set_faults(change: FaultsChange) -> Faults:
        """Change the faults given; the others keep their value (null switches one off)."""
        return state.faults.change(change)

    @app.get("/admin/faults", tags=["admin"], response_model=Faults)
    async def get_faults() -> Faults:
        return state.faults.faults

    @app.get("/admin/log", tags=["admin"], response_model=list[LoggedOperationModel])
    async def get_log() -> JSONResponse:
        """Accepted creates, corrections and cancellations, in the order they were accepted."""
        return JSONResponse([asdict(entry) for entry in state.store.log()])

    @app.post("/admin/reset", tags=["admin"], status_code=204)
    async def reset() -> Response:
        """No records, no log, no faults, the kombika registry as built (ids keep counting)."""
        state.reset()
        return Response(status_code=204)

    @app.post("/admin/kombika", tags=["admin"], status_code=201, response_model=KombikaModel)
    async def add_kombika(kombika: KombikaModel) -> JSONResponse:
        """Add a kombika (open validFrom … validTo) to the registry, until the next reset."""
        try:
            code = str(parse_kombika(kombika.code))
        except InvalidIdentifierError as error:
            return JSONResponse({"error": f"code: {error}"}, status_code=400)
        period = state.registry.add(code, kombika.validFrom, kombika.validTo)
        return JSONResponse(KombikaModel.of(period).model_dump(mode="json"), status_code=201)

    @app.get("/admin/kombika", tags=["admin"], response_model=list[KombikaModel])
    async def kombika_examples(
        on: Annotated[date, Query(description="The day asked about.")],
        state_on_day: Annotated[
            Literal["open", "closed"], Query(alias="state", description="Open or closed on `on`.")
        ] = "open",
        limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    ) -> list[KombikaModel]:
        """Kombikas of the registry that are open (or were open and have closed) on a day."""
        periods = state.registry.examples(KombikaState(state_on_day), on, limit)
        return [KombikaModel.of(period) for period in periods]
