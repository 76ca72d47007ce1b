"""The public event contract, version 1: pydantic models, `parse_event` and the event registry."""

from shared.contracts.care_contact import (
    Admission,
    Availability,
    CareContact,
    CareContactEvent,
    Discharge,
    OutpatientVisit,
    Procedure,
)
from shared.contracts.care_ersmo import CareEpisode, CareResponsibility
from shared.contracts.care_parts import (
    CarePatient,
    Condition,
    Medication,
    Product,
    ResourceGroup,
)
from shared.contracts.care_wait import (
    CARE_WAITS_TOPIC,
    MAX_EXCEPTIONS,
    CareWait,
    CareWaitEvent,
    WaitException,
)
from shared.contracts.envelope import SCHEMA_VERSION, EventEnvelope, Operation
from shared.contracts.errors import ContractViolationError, Violation
from shared.contracts.hsa import HsaUnitNotification, HsaUnitNotificationEvent
from shared.contracts.parsing import EVENT_TYPES, MAX_EVENT_BYTES, Event, parse_event
from shared.contracts.patient import Patient
from shared.contracts.schema import (
    CARE_CONTACT_EXAMPLES,
    CARE_WAIT_EXAMPLES,
    EXAMPLES,
    export_schemas,
)
from shared.contracts.vaccination import (
    CareProvider,
    VaccinatedPerson,
    Vaccination,
    VaccinationEvent,
    VaccinationProgramme,
)

__all__ = [
    "CARE_CONTACT_EXAMPLES",
    "CARE_WAITS_TOPIC",
    "CARE_WAIT_EXAMPLES",
    "EVENT_TYPES",
    "EXAMPLES",
    "MAX_EVENT_BYTES",
    "MAX_EXCEPTIONS",
    "SCHEMA_VERSION",
    "Admission",
    "Availability",
    "CareContact",
    "CareContactEvent",
    "CareEpisode",
    "CarePatient",
    "CareProvider",
    "CareResponsibility",
    "CareWait",
    "CareWaitEvent",
    "Condition",
    "ContractViolationError",
    "Discharge",
    "Event",
    "EventEnvelope",
    "HsaUnitNotification",
    "HsaUnitNotificationEvent",
    "Medication",
    "Operation",
    "OutpatientVisit",
    "Patient",
    "Procedure",
    "Product",
    "ResourceGroup",
    "VaccinatedPerson",
    "Vaccination",
    "VaccinationEvent",
    "VaccinationProgramme",
    "Violation",
    "WaitException",
    "export_schemas",
    "parse_event",
]
