"""A stand-in for NVR's vaccine and batch list until the NVR sandbox exists: `GET /vaccines`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

# NPL-ids here are made up (14 digits, as NPL-ids are); names are the products' own.
DEFAULT_VACCINES: list[dict[str, Any]] = [
    {
        "nplId": "20201214100018",
        "name": "Comirnaty",
        "atcCode": "J07BN01",
        "covid19": True,
        "batches": [
            {"number": "FN1234", "expiresOn": "2027-06-30"},
            {"number": "GH5678", "expiresOn": "2025-01-31"},
        ],
    },
    {
        "nplId": "20090917100028",
        "name": "Infanrix hexa",
        "atcCode": "J07CA09",
        "covid19": False,
        "batches": [{"number": "A21CE123A", "expiresOn": "2027-12-31"}],
    },
    {
        "nplId": "20100401100013",
        "name": "Prevenar 13",
        "atcCode": "J07AL02",
        "covid19": False,
        "batches": [{"number": "LR4567", "expiresOn": "2027-03-31"}],
    },
    {
        "nplId": "19750101100019",
        "name": "BCG-vaccin AJVaccines",
        "atcCode": "J07AN01",
        "covid19": False,
        "batches": [{"number": "119039B", "expiresOn": "2027-09-30"}],
    },
]


def vaccines_app(vaccines: list[dict[str, Any]] | None = None) -> FastAPI:
    """The list can be changed at run time through `app.state.vaccines` (tests, demos)."""
    app = FastAPI(title="NVR vaccine list (stand-in)", version="0.1.0")
    app.state.vaccines = list(DEFAULT_VACCINES if vaccines is None else vaccines)

    @app.get("/vaccines")
    async def list_vaccines() -> dict[str, Any]:
        return {"vaccines": app.state.vaccines}

    return app
