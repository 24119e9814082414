"""What the HTTP API's handlers receive: the brain's services and narrow store ports.

The composition root (`tawasol.composition.Brain`) satisfies this Protocol; the API never
imports it (imports flow adapters -> services -> domain). Handlers read calls and carrier
events through the `CallStore` and `CarrierRuntimeStore` ports, never through a concrete store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from tawasol.config import Settings
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.billing.lifecycle import SubscriptionLifecycle
from tawasol.services.billing.payments import ManualPayments
from tawasol.services.billing.ports import BillingStore
from tawasol.services.billing.reports import BillingReports
from tawasol.services.billing.run import BillingRun
from tawasol.services.carrier_monitor import CarrierMonitor
from tawasol.services.catalog import CatalogService
from tawasol.services.direct_numbers import DirectNumberService
from tawasol.services.incidents import IncidentService
from tawasol.services.payments.service import PaymentService
from tawasol.services.ports import CallStore, CarrierRuntimeStore
from tawasol.services.record_call_events import CallEventRecorder
from tawasol.services.record_refusals import RefusalRecorder
from tawasol.services.sales_guard import SalesGuard
from tawasol.services.verify_credentials import CredentialVerifier, DecisionGrants


class BillingServices(Protocol):
    """Billing as the admin API uses it: the run, the lifecycle commands, manual payments and
    refunds, the reports, and the store of ledgers and documents."""

    @property
    def run(self) -> BillingRun: ...
    @property
    def store(self) -> BillingStore: ...
    @property
    def lifecycle(self) -> SubscriptionLifecycle: ...
    @property
    def payments(self) -> ManualPayments: ...
    @property
    def reports(self) -> BillingReports: ...


class ApiServices(Protocol):
    """The services behind the decision API, the admin API and the carriers' board."""

    @property
    def settings(self) -> Settings: ...
    @property
    def authorizer(self) -> CallAuthorizer: ...
    @property
    def recorder(self) -> CallEventRecorder: ...
    @property
    def catalog(self) -> CatalogService: ...
    @property
    def monitor(self) -> CarrierMonitor: ...
    @property
    def credentials(self) -> CredentialVerifier: ...
    @property
    def grants(self) -> DecisionGrants: ...
    @property
    def refusals(self) -> RefusalRecorder: ...
    @property
    def calls(self) -> CallStore: ...
    @property
    def carrier_events(self) -> CarrierRuntimeStore: ...
    @property
    def incidents(self) -> IncidentService: ...
    @property
    def sales_guard(self) -> SalesGuard: ...
    @property
    def direct_numbers(self) -> DirectNumberService: ...
    @property
    def billing(self) -> BillingServices:
        """Raises InvalidInput/InvalidConfiguration while billing is not set up."""
        ...

    @property
    def payments(self) -> PaymentService:
        """Raises like `billing` while billing is not set up."""
        ...

    def clock(self) -> datetime:
        """Now, timezone-aware UTC (the brain's one clock)."""
        ...


class BackgroundWork(Protocol):
    """Jobs the app's lifespan starts and stops (`tawasol.runtime.Runtime`)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


Clock = Callable[[], datetime]
