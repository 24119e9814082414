"""Every error the brain raises on purpose, as one tree.

    TawasolError
    ├── InvalidInput            the request or the data given is malformed
    │   ├── InvalidNumber       a dialled string is not a telephone number
    │   ├── InvalidConfiguration  settings or operator data contradict each other
    │   ├── CallNotGranted      call events for a call the brain never allowed
    │   ├── InvalidSignature    a provider event (webhook) whose signature does not verify
    │   └── PaymentDeclined     a payment provider refused the payment method or the charge
    ├── NotFound                a named plan, subscriber, subscription or carrier does not exist
    ├── Conflict                the thing exists already, or the change breaks an invariant
    │   └── DestinationUnavailable  a plan whose destinations are in an outage, not acknowledged
    └── Unavailable             a dependency (database, brain) cannot be reached now

Adapters map this tree through one table each (HTTP status + stable error id, SIP code + reason
phrase, CLI exit code). A stable `error_id` on every class is what clients match on.
"""

from __future__ import annotations

from typing import Any


class TawasolError(Exception):
    """Base of every error raised on purpose by tawasol."""

    error_id = "tawasol_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class InvalidInput(TawasolError):
    """The caller sent something malformed: fix the request and try again."""

    error_id = "invalid_input"


class InvalidNumber(InvalidInput):
    """What was dialled cannot be read as a telephone number."""

    error_id = "invalid_number"


class InvalidConfiguration(InvalidInput):
    """Settings or operator data contradict each other (e.g. a plan with no destination)."""

    error_id = "invalid_configuration"


class CallNotGranted(InvalidInput):
    """Call events name a call the brain did not allow (no valid grant): refused for good."""

    error_id = "call_not_granted"


class InvalidSignature(InvalidInput):
    """A webhook whose signature does not match the provider's secret (or is too old to be
    trusted): refused before its body is read, nothing recorded (HTTP 400)."""

    error_id = "invalid_signature"


class PaymentDeclined(InvalidInput):
    """A payment provider refused what it was given (a declined or expired card when it is
    saved); details: `code` (a `FailureCode`) and the provider's message."""

    error_id = "payment_declined"


class NotFound(TawasolError):
    """The plan, subscriber, subscription, carrier or call named does not exist."""

    error_id = "not_found"


class Conflict(TawasolError):
    """The thing exists already, or the change would break an invariant."""

    error_id = "conflict"


class DestinationUnavailable(Conflict):
    """The plan sells destinations in a customer-facing incident: not sold unless the buyer
    acknowledged that incident (details: `incident_ids`)."""

    error_id = "destination_unavailable"


class Unavailable(TawasolError):
    """A dependency cannot be reached now; the same request may succeed later."""

    error_id = "unavailable"
