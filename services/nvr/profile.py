"""What NVR has not published, as configuration: identifier systems, paths, bundle type.

The values are regbridge's choices (see docs/nvr-api.md); the sandbox and the worker both read
them from one `NvrProfile`, so following the official specification is a settings change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Literal

from shared.contracts.vaccination import VaccinationProgramme
from shared.settings import NvrSettings


@dataclass(frozen=True)
class NvrProfile:
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
    max_bundle_entries: int = 100
    token_path: str = "/oauth2/token"  # noqa: S105 - a path, not a secret
    fhir_path: str = "/fhir"
    vaccines_path: str = "/vaccines"

    @classmethod
    def from_settings(cls, settings: NvrSettings) -> NvrProfile:
        names = [f.name for f in fields(cls) if f.name != "max_bundle_entries"]
        return cls(**{name: getattr(settings, name) for name in names})

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
