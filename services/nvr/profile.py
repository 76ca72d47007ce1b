"""What NVR has not published, as configuration: identifier systems, paths, bundle type.

The identifier systems default to HL7 Sweden's base profiles (basprofiler-r4); the rest are
regbridge's choices (see docs/nvr-api.md). The sandbox and the worker both read them from one
`NvrProfile`, so following the official specification is a settings change.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.vaccination import VaccinationProgramme


class NvrProfile(BaseModel):
    """NVR's unpublished details (``REGBRIDGE_NVR_PROFILE__HSA_ID_SYSTEM`` …)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # identifier systems: HL7 Sweden basprofiler-r4 (input/fsh/aliases.fsh, organization.fsh;
    # NPL-id from its medication work group's aliases); the RIV OIDs are a setting away
    personnummer_system: str = "http://electronichealth.se/identifier/personnummer"
    samordningsnummer_system: str = "http://electronichealth.se/identifier/samordningsnummer"
    hsa_id_system: str = "urn:oid:1.2.752.29.4.19"
    organisation_number_system: str = "urn:oid:2.5.4.97"
    npl_id_system: str = "http://electronichealth.se/identifier/nplid"
    atc_system: str = "http://www.whocc.no/atc"
    # the programme: Immunization.extension(programme_extension_url).valueCoding
    # {system: programme_system, code}; R4's protocolApplied needs a dose number, which NVR
    # forbids outside COVID-19, so the programme cannot travel there
    programme_extension_url: str = "urn:regbridge:nvr:extension:vaccination-programme"
    programme_system: str = "urn:regbridge:nvr:programme"
    # meta.profile of every Immunization sent (none: NVR publishes no canonical URLs we know)
    immunization_profiles: tuple[str, ...] = ()
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
