"""The error every notice channel (email, SMS, webhook) raises when it cannot take a notice."""

from __future__ import annotations


class DeliveryError(Exception):
    """A channel could not take a notice; `permanent` says whether retrying is useless and
    `reason` is what the outbox records (e.g. "relay answered 550 ...", "SMSC refused the
    bind: ESME_RBINDFAIL")."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
