"""The error types that decide an event's fate: retry, dead letter, or pause the worker.

DeliveryError
├── TransientError            → next retry tier (after the last: dead letter, retries_exhausted)
│   ├── RegisterUnavailableError   timeouts, connection errors, 5xx, 503 maintenance
│   ├── ThrottledError             429 (honours Retry-After)
│   ├── NotYetAppliedError         a correction/cancellation before its create
│   └── NotYetKnownError           names what a lagging catalog does not list yet: retried
│                                  for a grace period, then a dead letter of its final class
├── PermanentError            → dead letter at once
│   ├── InvalidEventError          not JSON, wrong schema, invalid identifier
│   └── RegisterRejectedError      the register said no (4xx validation, 404, 409 …)
└── ConfigurationError        → pause the worker and alarm; the event is not at fault
                               (TLS handshake, 401/403 after a token refresh)
NothingToSendError            → skipped with its `reason`: the event asks nothing of the
│                              register now (not a failure, never retried or dead-lettered)
└── NotOursError               `not_ours`: another register's event (a unit of another region)
"""

from __future__ import annotations

from datetime import timedelta


class DeliveryError(Exception):
    """Base: a stable `error_class` name, and what the register said, if anything."""

    error_class = "delivery_error"

    def __init__(
        self,
        message: str,
        *,
        register_status: int | None = None,
        register_response: str | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.register_status = register_status
        self.register_response = register_response
        if error_class is not None:
            self.error_class = error_class


class TransientError(DeliveryError):
    """May succeed later: the event goes to the next retry tier."""

    error_class = "transient"


class RegisterUnavailableError(TransientError):
    """The register did not answer usefully: timeout, connection error, 5xx, maintenance."""

    error_class = "register_unavailable"


class ThrottledError(TransientError):
    """The register asked us to slow down (429); `retry_after` seconds if it said so."""

    error_class = "throttled"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NotYetAppliedError(TransientError):
    """A correction or cancellation arrived before the register has the record's create."""

    error_class = "not_yet_applied"


class NotYetKnownError(TransientError):
    """The event names something a catalog does not list (yet): a source that may lag, such as
    a new unit before the code server's file lists its kombika. Retried through the tiers while
    the event's first failure is younger than `grace`, then dead-lettered as `final_class`
    (zero grace: at once)."""

    error_class = "not_yet_known"

    def __init__(
        self, message: str, *, grace: timedelta, final_class: str, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.grace = grace
        self.final_class = final_class


class HaltedError(TransientError):
    """Not sent: the worker is stopping, or its ledger is unreachable (what is sent now could not
    be settled). The event is handed back — left in Kafka, read again — so that a drain waits
    only for the calls already out, and nothing goes out while the ledger is away."""

    error_class = "halted"


class PermanentError(DeliveryError):
    """Will never succeed as it is: the event goes to the dead-letter topic at once."""

    error_class = "permanent"


class InvalidEventError(PermanentError):
    """The event breaks the contract (not JSON, wrong schema, invalid identifier or code)."""

    error_class = "invalid_event"


class RegisterRejectedError(PermanentError):
    """The register validated the request and refused it."""

    error_class = "register_rejected"


class ConfigurationError(DeliveryError):
    """Not the event's fault: pause consumption and alarm instead of dead-lettering traffic."""

    error_class = "configuration"


class NothingToSendError(Exception):
    """The worker's `map` finds nothing to send for the event (say, a record the register never
    held and that has nothing for it yet): its fate is `skipped` with `reason` (a stable
    snake_case name, in the event's result); the message says why."""

    reason = "nothing_to_send"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class NotOursError(NothingToSendError):
    """The event belongs to another register (its unit is another region's): the worker leaves
    it alone. Its fate is `skipped` with reason `not_ours`; the message says whose it is."""

    reason = "not_ours"
