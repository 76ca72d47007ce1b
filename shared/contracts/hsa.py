"""HSA unit notifications: a unit in the directory was created, changed or removed."""

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.contracts.envelope import CONTRACT_CONFIG, EventEnvelope
from shared.contracts.types import HsaId, NonEmptyText


class HsaUnitNotification(BaseModel):
    """A change to one HSA unit, telling the catalog sync to refresh it."""

    model_config = CONTRACT_CONFIG

    hsa_id: HsaId = Field(description="HSA-id of the unit that changed, e.g. SE2321000016-14L1.")
    change_kind: Literal["created", "updated", "removed"] = Field(
        description="What happened to the unit: created, updated or removed."
    )
    changed_attributes: tuple[NonEmptyText, ...] | None = Field(
        default=None,
        description="HSA attribute names that changed (e.g. 'publicName'), if the notifier says.",
    )
    notified_at: AwareDatetime = Field(
        description="When HSA (or the notifier) sent the notification, with zone offset."
    )


class HsaUnitNotificationEvent(EventEnvelope):
    """An HSA unit notification for the catalog sync."""

    event_type: Literal["hsa.unit-notification"] = Field(
        description="Always 'hsa.unit-notification' for this event."
    )
    payload: HsaUnitNotification = Field(description="The unit and what changed.")
