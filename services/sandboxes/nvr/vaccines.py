"""The NVR sandbox's starting vaccine list: `GET /vaccines` answers it (changed via /admin)."""

from __future__ import annotations

from typing import Any

# NPL-ids here are made up (14 digits, as NPL-ids are); names are the products' own. A vaccine
# whose ATC code is in J07BN is a COVID-19 vaccine (its dose number is required).
DEFAULT_VACCINES: list[dict[str, Any]] = [
    {
        "nplId": "20201214100018",
        "name": "Comirnaty",
        "atcCode": "J07BN01",
        "batches": [
            {"number": "FN1234", "expiresOn": "2027-06-30"},
            {"number": "GH5678", "expiresOn": "2025-01-31"},
        ],
    },
    {
        "nplId": "20090917100028",
        "name": "Infanrix hexa",
        "atcCode": "J07CA09",
        "batches": [{"number": "A21CE123A", "expiresOn": "2027-12-31"}],
    },
    {
        "nplId": "20100401100013",
        "name": "Prevenar 13",
        "atcCode": "J07AL02",
        "batches": [{"number": "LR4567", "expiresOn": "2027-03-31"}],
    },
    {
        "nplId": "19750101100019",
        "name": "BCG-vaccin AJVaccines",
        "atcCode": "J07AN01",
        "batches": [{"number": "119039B", "expiresOn": "2027-09-30"}],
    },
]
