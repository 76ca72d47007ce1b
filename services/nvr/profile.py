"""What NVR has not published, as configuration: identifier systems, paths, bundle type.

The values are regbridge's choices (see docs/nvr-api.md); the sandbox and the worker both read
them from one `NvrProfile`, so following the official specification is a settings change.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.vaccination import VaccinationProgramme


class NvrProfile(BaseModel):
    """NVR's unpublished details (``REGBRIDGE_NVR_PROFILE__HSA_ID_SYSTEM`` …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # identifier systems
    personnummer_system: str = "urn:oid:1.2.752.129.2.1.3.1"
    samordningsnummer_system: str = "urn:oid:1.2.752.129.2.1.3.3"
    hsa_id_system: str = "urn:oid:1.2.752.129.2.1.4.1"
    organisation_number_system: str = "urn:oid:2.5.4.97"
    npl_id_system: str = "urn:oid:1.2.752.129.2.1.5.1"
    programme_system: str = "urn:regbridge:nvr:programme"
    # Immunization.identifier: system = this base + "/" + the event's source_system,
    # value = the event's record_id ("system name + unique reference", the idempotency key)
    report_identifier_base: str = "urn:regbridge:nvr:source"
    # transport
    bundle_type: Literal["batch", "transaction"] = "batch"
    max_bundle_entries: int = Field(default=100, ge=1, le=100)  # NVR's limit
    token_path: str = "/oauth2/token"  # noqa: S105 - a path, not a secret
    fhir_path: str = "/fhir"
    vaccines_path: str = "/vaccines"

    def report_system(self, source_system: str) -> str:
        return f"{self.report_identifier_base}/{source_system}"


# When each reporting obligation began (NVR's public pages; COVID-19: first Swedish dose).
# "other" has no start date.
PROGRAMME_STARTS: dict[VaccinationProgramme, date] = {
    VaccinationProgramme.CHILDHOOD: date(2013, 1, 1),
    VaccinationProgramme.PNEUMOCOCCAL_RISK: date(2022, 12, 1),
    VaccinationProgramme.TUBERCULOSIS_CHILD: date(2025, 5, 1),
    VaccinationProgramme.COVID19: date(2020, 12, 27),
}
